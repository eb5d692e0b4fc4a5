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
	"strings"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"
	"k8s.io/utils/ptr"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

// Paths on the node.
const (
	BootstrapKubeconfigPath = "/etc/kubernetes/kubeconfig-bootstrap"
	CAPath                  = "/etc/kubernetes/ca.crt"
	PullSecretPath          = "/var/lib/kubelet/config.json"
	RegistriesConfPath      = "/etc/containers/registries.conf"
	KubeletConfigPath       = "/etc/kubernetes/kubelet-config.yaml"
	KonnectivityEnvPath     = "/etc/kubernetes/konnectivity-agent.env"
)

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
	// Konnectivity is host:port of the control plane's konnectivity server,
	// which the node's konnectivity agent opens its reverse tunnel to.
	Konnectivity string
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
		}},
		Systemd: igntypes.Systemd{Units: []igntypes.Unit{{Name: "kubelet.service", Enabled: &yes, Contents: ptr.To(w.kubeletUnit())}}},
	}
	if len(w.ImageContentSources) > 0 {
		cfg.Storage.Files = append(cfg.Storage.Files, file(RegistriesConfPath, []byte(RegistriesConf(w.ImageContentSources)), 0o644))
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
`, CAPath, dns)
}

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
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet --bootstrap-kubeconfig=` + BootstrapKubeconfigPath + ` --kubeconfig=/var/lib/kubelet/kubeconfig --config=` + KubeletConfigPath + extra + `
Restart=always
RestartSec=5

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
ExecStart=/usr/local/bin/konnectivity-agent --ca-cert=` + CAPath + ` --agent-cert=/var/lib/kubelet/pki/kubelet-client-current.pem --agent-key=/var/lib/kubelet/pki/kubelet-client-current.pem --proxy-server-host=${PROXY_SERVER_HOST} --proxy-server-port=${PROXY_SERVER_PORT}
Restart=always
RestartSec=5

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
