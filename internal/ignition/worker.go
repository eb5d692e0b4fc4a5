// Package ignition builds the Ignition configs of nodes: the worker config the
// ignition server hands a NodePool's hosts (kubelet bootstrap kubeconfig, CA,
// pull secret, registries.conf mirrors, kubelet unit, ssh key) and the pointer
// config that tells a host where to fetch it.
package ignition

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/images"
)

// Paths on the node.
const (
	BootstrapKubeconfigPath = "/etc/kubernetes/kubeconfig-bootstrap"
	CAPath                  = "/etc/kubernetes/ca.crt"
	PullSecretPath          = "/var/lib/kubelet/config.json"
	RegistriesConfPath      = "/etc/containers/registries.conf"
	KubeletConfigPath       = "/etc/kubernetes/kubelet-config.yaml"
	// KubeletConfigDir holds drop-in kubelet configs: the host's own (its
	// cgroup root and driver, its provider ID) is written there at start.
	KubeletConfigDir    = "/etc/kubernetes/kubelet.conf.d"
	KonnectivityEnvPath = "/etc/kubernetes/konnectivity-agent.env"
	// ReleasePath names the release (e.g. 1.37.2) whose node binaries the
	// host runs: its NodePool's.
	ReleasePath = "/etc/kubernetes/hcp-release"
	// NodeEnvPath is written by the host at start: NODE_NAME and NODE_IP,
	// which the units pass to kubelet, kube-proxy and the konnectivity agent.
	NodeEnvPath          = "/etc/kubernetes/node.env"
	KubeProxyConfigPath  = "/etc/kubernetes/kube-proxy-config.yaml"
	ContainerdConfigPath = "/etc/containerd/config.toml"
	// ContainerdCertsDir holds a hosts.toml per registry name: where the
	// node's container runtime really pulls from.
	ContainerdCertsDir = "/etc/containerd/certs.d"
	// NetworkPolicyKubeconfigPath, when the Ignition has it, is the identity
	// with which the node's agent reads pods, namespaces and NetworkPolicies
	// to enforce the policies on the node's pods.
	NetworkPolicyKubeconfigPath = "/etc/kubernetes/network-policy.kubeconfig"
	// NodeKubeconfigPath is the kubelet's own kubeconfig, written by its TLS
	// bootstrap; kube-proxy uses it too.
	NodeKubeconfigPath = "/var/lib/kubelet/kubeconfig"
	// BinDir holds the node's binaries: kubelet, kube-proxy, containerd and
	// its shim, runc, crictl, the konnectivity agent.
	BinDir = "/usr/local/bin"
	// CNIBinDir holds the CNI plugins.
	CNIBinDir = "/opt/cni/bin"
)

// NodeBinaries are the release binaries a node runs, in BinDir.
var NodeBinaries = []string{"kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "crictl", "konnectivity-agent"}

// CNIPlugins are the CNI plugins a node uses, in CNIBinDir.
var CNIPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// Worker describes a NodePool's worker config.
type Worker struct {
	// BootstrapKubeconfig joins the node with its NodePool's bootstrap token.
	BootstrapKubeconfig []byte
	CA                  []byte
	PullSecret          []byte
	SSHKey              string
	ImageContentSources []hyperv1.ImageContentSource
	NodeLabels          map[string]string
	Taints              []hyperv1.Taint
	ClusterDNS          string
	// ClusterCIDR is the pod network (kube-proxy tells in-cluster traffic by it).
	ClusterCIDR string
	// Registry is the URL of hcp's image registry as nodes reach it (the
	// infrastructure service, https://host:port) and RegistryCA its CA; the
	// node's runtime maps registry.hcp.test there.
	Registry   string
	RegistryCA []byte
	// PauseImage is the pods' sandbox image.
	PauseImage string
	// Konnectivity is host:port of the control plane's konnectivity server,
	// which the node's konnectivity agent opens its reverse tunnel to.
	Konnectivity string
	// NetworkPolicyKubeconfig, when set, makes the node enforce
	// NetworkPolicies with that identity.
	NetworkPolicyKubeconfig []byte
	// InsecureRegistries are registries (host[:port]) the node pulls from
	// without verifying their certificate, or over plain HTTP.
	InsecureRegistries []string
	// Release is the name of the release whose node binaries the host runs.
	Release string
}

// Config returns the worker Ignition config, validated.
func (w Worker) Config() ([]byte, error) {
	yes := true
	cfg := igntypes.Config{
		Ignition: igntypes.Ignition{Version: "3.4.0"},
		Storage: igntypes.Storage{Files: []igntypes.File{
			file(BootstrapKubeconfigPath, w.BootstrapKubeconfig, 0o600),
			file(CAPath, w.CA, 0o644),
			file(PullSecretPath, w.PullSecret, 0o600),
			file(KubeletConfigPath, []byte(w.kubeletConfig()), 0o644),
			file(KubeProxyConfigPath, []byte(w.kubeProxyConfig()), 0o644),
			file(ContainerdConfigPath, []byte(w.containerdConfig()), 0o644),
		}},
		Systemd: igntypes.Systemd{Units: []igntypes.Unit{
			{Name: "containerd.service", Enabled: &yes, Contents: ptr.To(containerdUnit)},
			{Name: "kubelet.service", Enabled: &yes, Contents: ptr.To(w.kubeletUnit())},
			{Name: "kube-proxy.service", Enabled: &yes, Contents: ptr.To(kubeProxyUnit)},
		}},
	}
	if w.Release != "" {
		cfg.Storage.Files = append(cfg.Storage.Files, file(ReleasePath, []byte(w.Release+"\n"), 0o644))
	}
	if w.Registry != "" {
		cfg.Storage.Files = append(cfg.Storage.Files,
			file(ContainerdCertsDir+"/"+images.RegistryHost+"/hosts.toml", []byte(RegistryHosts(w.Registry, "ca.crt")), 0o644),
			file(ContainerdCertsDir+"/"+images.RegistryHost+"/ca.crt", w.RegistryCA, 0o644))
	}
	for _, host := range w.InsecureRegistries {
		cfg.Storage.Files = append(cfg.Storage.Files, file(ContainerdCertsDir+"/"+host+"/hosts.toml", []byte(InsecureRegistryHosts(host)), 0o644))
	}
	if len(w.NetworkPolicyKubeconfig) > 0 {
		cfg.Storage.Files = append(cfg.Storage.Files, file(NetworkPolicyKubeconfigPath, w.NetworkPolicyKubeconfig, 0o600))
	}
	if len(w.ImageContentSources) > 0 {
		cfg.Storage.Files = append(cfg.Storage.Files, file(RegistriesConfPath, []byte(RegistriesConf(w.ImageContentSources)), 0o644))
		for host, toml := range w.mirrorHosts() {
			cfg.Storage.Files = append(cfg.Storage.Files, file(ContainerdCertsDir+"/"+host+"/hosts.toml", []byte(toml), 0o644))
		}
	}
	if key := strings.TrimSpace(w.SSHKey); key != "" {
		cfg.Passwd.Users = []igntypes.PasswdUser{{Name: "core", SSHAuthorizedKeys: []igntypes.SSHAuthorizedKey{igntypes.SSHAuthorizedKey(key)}}}
	}
	if host, port, err := net.SplitHostPort(w.Konnectivity); err == nil {
		env := "PROXY_SERVER_HOST=" + host + "\nPROXY_SERVER_PORT=" + port + "\n"
		cfg.Storage.Files = append(cfg.Storage.Files, file(KonnectivityEnvPath, []byte(env), 0o644))
		cfg.Systemd.Units = append(cfg.Systemd.Units, igntypes.Unit{Name: "konnectivity-agent.service", Enabled: &yes, Contents: ptr.To(konnectivityUnit)})
	}
	return marshalValid(cfg)
}

// Pointer is the config a host boots with: it merges the worker config from
// the ignition server, authenticated with the NodePool's bearer token.
func Pointer(url, token, nodePool string, ca []byte) ([]byte, error) {
	cfg := igntypes.Config{Ignition: igntypes.Ignition{
		Version: "3.4.0",
		Config: igntypes.IgnitionConfig{Merge: []igntypes.Resource{{
			Source: ptr.To(url),
			HTTPHeaders: igntypes.HTTPHeaders{
				{Name: "Authorization", Value: ptr.To("Bearer " + token)},
				{Name: "NodePool", Value: ptr.To(nodePool)},
			},
		}}},
		Security: igntypes.Security{TLS: igntypes.TLS{CertificateAuthorities: []igntypes.Resource{{Source: ptr.To(dataurl.EncodeBytes(ca))}}}},
	}}
	return marshalValid(cfg)
}

// RegistriesConf is /etc/containers/registries.conf (v2) with the mirrors of
// an ImageContentSourcePolicy.
func RegistriesConf(sources []hyperv1.ImageContentSource) string {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = [\"registry.access.redhat.com\", \"docker.io\"]\nshort-name-mode = \"\"\n")
	sorted := append([]hyperv1.ImageContentSource(nil), sources...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Source < sorted[j].Source })
	for _, s := range sorted {
		fmt.Fprintf(&b, "\n[[registry]]\n  prefix = \"\"\n  location = %q\n  mirror-by-digest-only = true\n", s.Source)
		for _, m := range s.Mirrors {
			fmt.Fprintf(&b, "\n  [[registry.mirror]]\n    location = %q\n", m)
		}
	}
	return b.String()
}

func (w Worker) kubeletConfig() string {
	dns := w.ClusterDNS
	if dns == "" {
		dns = "172.31.0.10"
	}
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  x509:
    clientCAFile: %s
  webhook:
    enabled: true
authorization:
  mode: Webhook
clusterDNS: [%s]
clusterDomain: cluster.local
rotateCertificates: true
serverTLSBootstrap: true
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
# Hosts that still run cgroup v1 are served too.
failCgroupV1: false
# A pull that waits on a registry the node cannot reach does not hold up the
# other pods' pulls.
serializeImagePulls: false
maxParallelImagePulls: 5
`, CAPath, dns)
}

// RegistryHosts is the containerd hosts.toml of hcp's registry name: its
// images come from url only (the name resolves nowhere), trusting the CA
// file next to it.
func RegistryHosts(url, caFile string) string {
	return fmt.Sprintf("server = %q\nca = %q\n", url, caFile)
}

// InsecureRegistryHosts is the containerd hosts.toml of a registry trusted
// without verification: HTTPS without checking its certificate, then plain
// HTTP (as Docker's insecure-registries).
func InsecureRegistryHosts(host string) string {
	return fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"https://"+host, "https://"+host, "http://"+host)
}

// CheckInsecureRegistry says what is wrong with an insecure registry's
// name ("" when nothing): a host or host:port, without scheme or path.
func CheckInsecureRegistry(host string) string {
	if host == "" || strings.ContainsAny(host, "/ \t\n") {
		return "must be a registry host or host:port, without a scheme or path"
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || h == "" {
			return "must be a registry host or host:port with a port between 1 and 65535"
		}
		host = h
	}
	if net.ParseIP(strings.Trim(host, "[]")) == nil && len(validation.IsDNS1123Subdomain(host)) > 0 {
		return "must be a registry host or host:port (an IP address or a DNS name)"
	}
	return ""
}

// mirrorHosts are the containerd hosts.toml files of the image content
// sources, by source registry: a pull from the source registry goes to its
// mirrors in order, then to the source. containerd maps registries, not
// repositories, so a mirror is used only where its repository path is the
// source's (registry.example.com/library for docker.io/library); a mirror of
// registry.hcp.test is hcp's registry.
func (w Worker) mirrorHosts() map[string]string {
	out := map[string]string{}
	sorted := append([]hyperv1.ImageContentSource(nil), w.ImageContentSources...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Source < sorted[j].Source })
	for _, s := range sorted {
		srcHost, srcPath, _ := strings.Cut(s.Source, "/")
		var b strings.Builder
		if prev, ok := out[srcHost]; ok {
			b.WriteString(prev)
		} else {
			upstream := srcHost
			if upstream == "docker.io" {
				upstream = "registry-1.docker.io"
			}
			fmt.Fprintf(&b, "server = %q\n", "https://"+upstream)
		}
		for _, m := range s.Mirrors {
			host, path, _ := strings.Cut(m, "/")
			if path != srcPath {
				fmt.Fprintf(&b, "\n# %s is not used for %s: its repository path differs\n", m, s.Source)
				continue
			}
			url, ca := "https://"+host, ""
			if host == images.RegistryHost && w.Registry != "" {
				url, ca = w.Registry, ContainerdCertsDir+"/"+images.RegistryHost+"/ca.crt"
			}
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", url)
			if ca != "" {
				fmt.Fprintf(&b, "  ca = %q\n", ca)
			}
		}
		out[srcHost] = b.String()
	}
	return out
}

func (w Worker) containerdConfig() string {
	return fmt.Sprintf(`version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q

[plugins.'io.containerd.cri.v1.runtime']
  # Hosts without CAP_SYS_RESOURCE cannot lower a container's OOM score
  # below containerd's own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = "/etc/cni/net.d"
`, w.PauseImage, ContainerdCertsDir, CNIBinDir)
}

func (w Worker) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
clusterCIDR: %s
conntrack:
  # The conntrack table is the machine's: a node does not size it.
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
metricsBindAddress: 127.0.0.1:10249
`, NodeKubeconfigPath, w.ClusterCIDR)
}

const containerdUnit = `[Unit]
Description=containerd container runtime

[Service]
ExecStart=` + BinDir + `/containerd --config ` + ContainerdConfigPath + `
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`

const kubeProxyUnit = `[Unit]
Description=Kubernetes Service proxy
After=kubelet.service

[Service]
EnvironmentFile=` + NodeEnvPath + `
ExecStart=` + BinDir + `/kube-proxy --config=` + KubeProxyConfigPath + ` --hostname-override=${NODE_NAME}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`

func (w Worker) kubeletUnit() string {
	var labels []string
	for k, v := range w.NodeLabels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	var taints []string
	for _, t := range w.Taints {
		taints = append(taints, t.Key+"="+t.Value+":"+string(t.Effect))
	}
	extra := ""
	if len(labels) > 0 {
		extra += " --node-labels=" + strings.Join(labels, ",")
	}
	if len(taints) > 0 {
		extra += " --register-with-taints=" + strings.Join(taints, ",")
	}
	return `[Unit]
Description=Kubernetes node agent
Wants=network-online.target
After=network-online.target containerd.service

[Service]
EnvironmentFile=` + NodeEnvPath + `
ExecStart=` + BinDir + `/kubelet --bootstrap-kubeconfig=` + BootstrapKubeconfigPath + ` --kubeconfig=` + NodeKubeconfigPath + ` --config=` + KubeletConfigPath +
		` --config-dir=` + KubeletConfigDir + ` --hostname-override=${NODE_NAME} --node-ip=${NODE_IP}` + extra + `
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`
}

// konnectivityUnit runs the konnectivity agent with the node's own client
// certificate (signed by the cluster CA, which the server trusts for agents).
const konnectivityUnit = `[Unit]
Description=Konnectivity agent: the control plane's tunnel to this node
After=kubelet.service

[Service]
EnvironmentFile=` + KonnectivityEnvPath + `
EnvironmentFile=` + NodeEnvPath + `
ExecStart=` + BinDir + `/konnectivity-agent --ca-cert=` + CAPath + ` --agent-cert=/var/lib/kubelet/pki/kubelet-client-current.pem --agent-key=/var/lib/kubelet/pki/kubelet-client-current.pem --proxy-server-host=${PROXY_SERVER_HOST} --proxy-server-port=${PROXY_SERVER_PORT} --agent-id=${NODE_NAME} --agent-identifiers=ipv4=${NODE_IP}&host=${NODE_NAME} --health-server-host=127.0.0.1 --admin-bind-address=127.0.0.1 --sync-forever
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`

func file(path string, content []byte, mode int) igntypes.File {
	return igntypes.File{Node: igntypes.Node{Path: path, Overwrite: ptr.To(true)}, FileEmbedded1: igntypes.FileEmbedded1{
		Contents: igntypes.Resource{Source: ptr.To(dataurl.EncodeBytes(content))}, Mode: &mode}}
}

func marshalValid(cfg igntypes.Config) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if _, rpt, err := ignition.Parse(b); err != nil || rpt.IsFatal() {
		return nil, fmt.Errorf("invalid Ignition config: %v %s", err, rpt.String())
	}
	return b, nil
}
