package controlplane

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

// Ports on each replica's host.
const (
	EtcdClientPort      = 2379
	EtcdPeerPort        = 2380
	KubeAPIServerPort   = 8443
	KCMPort             = 10257
	SchedulerPort       = 10259
	KonnServerPort      = 8090
	KonnAgentPort       = 8091
	KonnAdminPort       = 8092
	KonnHealthPort      = 8093
	defaultEtcdSize     = "8Gi"
	egressSelectorFile  = "egress-selector.yaml"
	defaultIssuerURL    = "https://kubernetes.default.svc"
	kubeconfigVolume    = "kubeconfig"
	localhostKubeconfig = "localhost-kubeconfig"
)

// Input is what a control plane is built from.
type Input struct {
	HCP *hyperv1.HostedControlPlane
	// Release is the release the control plane runs.
	Release *release.Release
	// Releases, during a change of release, names the release a component
	// runs when it is not Release (see Rollout).
	Releases map[string]*release.Release
	// Network places the replicas (see Network).
	Network Network
	// StorageClass is etcd's resolved StorageClass.
	StorageClass string
	// Encryption is the digest of the API server's encryption configuration
	// (SecretEncryptionConfig); empty: Secrets are not encrypted.
	Encryption string
	// RestoreSnapshot is an etcd snapshot a new control plane's etcd starts
	// from (see Component.Restore).
	RestoreSnapshot string
}

// ServiceCIDR is the cluster's service network.
func ServiceCIDR(hcp *hyperv1.HostedControlPlane) string {
	return hosted.ServiceCIDR(hcp.Spec.Networking)
}

// ClusterCIDR is the cluster's pod network.
func ClusterCIDR(hcp *hyperv1.HostedControlPlane) string {
	return hosted.ClusterCIDR(hcp.Spec.Networking)
}

// FirstServiceIP is the kubernetes Service's address: the first of the service network.
func FirstServiceIP(cidr string) (string, error) { return hosted.ServiceIP(cidr, 1) }

// Build returns the control plane's components in start order.
func Build(in Input) (*ControlPlane, error) {
	quorum, others := hosted.Replicas(in.HCP.Spec.ControllerAvailabilityPolicy)
	if err := in.Network.Fits(quorum); err != nil {
		return nil, err
	}
	cp := &ControlPlane{Namespace: in.HCP.Namespace, Placement: Placement{
		HighlyAvailable: in.HCP.Spec.ControllerAvailabilityPolicy == hyperv1.HighlyAvailable,
		NodeSelector:    in.HCP.Spec.NodeSelector,
		Tolerations:     in.HCP.Spec.Tolerations,
		Topology:        in.HCP.Annotations[hyperv1.TopologyAnnotation],
	}, Image: in.HCP.Annotations[hyperv1.ControlPlaneImageAnnotation]}
	cp.Components = []Component{
		etcd(in, quorum),
		konnectivityServer(in, quorum),
		kubeAPIServer(in, quorum),
		kubeControllerManager(in, others),
		kubeScheduler(in, others),
	}
	for i := range cp.Components {
		c := &cp.Components[i]
		c.Release = in.Release
		if r := in.Releases[c.Name]; r != nil {
			c.Release = r
		}
		c.Version = c.Release.Components[c.Binary]
	}
	cp.Published = []PublishedService{
		{Service: string(hyperv1.APIServer), Component: KubeAPIServer, TargetPort: in.Network.APIServerPort(),
			Port: publishedPort(in.HCP, hyperv1.APIServer), Strategy: Publishing(in.HCP, hyperv1.APIServer)},
		{Service: string(hyperv1.Konnectivity), Component: KonnectivityServer, TargetPort: KonnAgentPort,
			Port: publishedPort(in.HCP, hyperv1.Konnectivity), Strategy: Publishing(in.HCP, hyperv1.Konnectivity)},
	}
	return cp, nil
}

// Publishing is how the HostedControlPlane publishes a service: its own entry
// in spec.services, else the API server's.
func Publishing(hcp *hyperv1.HostedControlPlane, svc hyperv1.ServiceType) hyperv1.ServicePublishingStrategy {
	var api hyperv1.ServicePublishingStrategy
	for _, s := range hcp.Spec.Services {
		if s.Service == svc {
			return s.ServicePublishingStrategy
		}
		if s.Service == hyperv1.APIServer {
			api = s.ServicePublishingStrategy
		}
	}
	return api
}

func publishedPort(hcp *hyperv1.HostedControlPlane, svc hyperv1.ServiceType) int {
	for _, s := range hcp.Spec.Services {
		if s.Service == svc && s.Type == hyperv1.NodePort && s.NodePort != nil {
			return int(s.NodePort.Port)
		}
	}
	return 0
}

func file(volume, key string) string { return MountRoot + "/" + volume + "/" + key }

func etcd(in Input, replicas int) Component {
	var members []string
	for i := range replicas {
		members = append(members, fmt.Sprintf("etcd-%d=%s", i, url(in.Network.EtcdPeer(i), EtcdPeerPort)))
	}
	c := Component{
		Name:         Etcd,
		Binary:       release.Etcd,
		Volumes:      []Volume{{Name: "server", Secret: SecretEtcdServer}},
		Persistent:   true,
		StorageClass: in.StorageClass,
		StorageSize:  defaultEtcdSize,
		// A member whose NOSPACE alarm is raised still serves reads: it is
		// ready, and must not be restarted for it.
		Probe:         Probe{Port: EtcdClientPort, Path: "/health?exclude=NOSPACE", Secret: SecretEtcdClient},
		PriorityClass: PriorityEtcd,
		Resources:     Resources{CPU: "100m", Memory: "64Mi"},
		Env:           []string{"GOMEMLIMIT=64MiB"},
	}
	c.Restore = in.RestoreSnapshot
	if replicas == 1 {
		// A lone member has no leadership to hand over, and its graceful
		// stop waits out its request timeout (7 s) for clients' watches
		// while it already refuses new requests: it is as safe (etcd
		// syncs its log before it acknowledges) and sooner back to stop it.
		c.StopGrace = time.Second
	}
	if pv := in.HCP.Spec.Etcd.Managed; pv != nil && pv.Storage.PersistentVolume != nil && pv.Storage.PersistentVolume.Size != nil {
		c.StorageSize = pv.Storage.PersistentVolume.Size.String()
	}
	bind, self := Var(VarBind), Var(VarEtcdSelf)
	c.Replicas = replicas
	c.Args = []string{
		"--name=" + Var(VarName),
		"--data-dir=" + DataRoot + "/" + Etcd,
		"--listen-client-urls=" + url(bind, EtcdClientPort),
		"--advertise-client-urls=" + url(self, EtcdClientPort),
		"--listen-peer-urls=" + url(bind, EtcdPeerPort),
		"--initial-advertise-peer-urls=" + url(self, EtcdPeerPort),
		"--initial-cluster=" + strings.Join(members, ","),
		"--initial-cluster-state=new",
		"--initial-cluster-token=" + in.HCP.Namespace,
		"--cert-file=" + file("server", KeyCert), "--key-file=" + file("server", KeyKey),
		"--trusted-ca-file=" + file("server", KeyCA), "--client-cert-auth=true",
		"--peer-cert-file=" + file("server", KeyCert), "--peer-key-file=" + file("server", KeyKey),
		"--peer-trusted-ca-file=" + file("server", KeyCA), "--peer-client-cert-auth=true",
		"--quota-backend-bytes=4294967296",
		"--snapshot-count=10000",
		"--log-level=warn",
	}
	return c
}

func konnectivityServer(in Input, replicas int) Component {
	c := Component{
		Name:           KonnectivityServer,
		Binary:         release.KonnectivityServer,
		Volumes:        []Volume{{Name: "server", Secret: SecretKonnServer}, {Name: "cluster", Secret: SecretKonnCluster}},
		PriorityClass:  PriorityAPICritical,
		RequestServing: true,
		Resources:      Resources{CPU: "10m", Memory: "32Mi"},
		Env:            []string{"GOMEMLIMIT=24MiB"},
		Probe:          Probe{Scheme: "http", Port: KonnHealthPort, Path: "/healthz"},
	}
	h := Var(VarBind)
	c.Replicas = replicas
	c.Args = []string{
		"--mode=http-connect",
		"--server-bind-address=" + h,
		"--server-port=" + strconv.Itoa(KonnServerPort),
		"--server-cert=" + file("server", KeyCert), "--server-key=" + file("server", KeyKey),
		"--server-ca-cert=" + file("server", KeyCA),
		"--agent-bind-address=" + h,
		"--agent-port=" + strconv.Itoa(KonnAgentPort),
		"--cluster-cert=" + file("cluster", KeyCert), "--cluster-key=" + file("cluster", KeyKey),
		"--cluster-ca-cert=" + file("cluster", KeyCA),
		"--admin-bind-address=" + h,
		"--admin-port=" + strconv.Itoa(KonnAdminPort),
		"--health-bind-address=" + h,
		"--health-port=" + strconv.Itoa(KonnHealthPort),
		"--server-count=" + strconv.Itoa(replicas),
		// Each node's agent names its address, so traffic to a node goes
		// through that node's own tunnel.
		"--proxy-strategies=destHost,default",
		"--server-id=" + Var(VarName),
		"--v=1",
	}
	return c
}

func kubeAPIServer(in Input, replicas int) Component {
	var etcdServers []string
	quorum, _ := hosted.Replicas(in.HCP.Spec.ControllerAvailabilityPolicy)
	for i := range quorum {
		etcdServers = append(etcdServers, url(in.Network.EtcdPeer(i), EtcdClientPort))
	}
	issuer := in.HCP.Spec.IssuerURL
	if issuer == "" {
		issuer = defaultIssuerURL
	}
	c := Component{
		Name:   KubeAPIServer,
		Binary: release.KubeAPIServer,
		Volumes: []Volume{
			{Name: "server", Secret: SecretKASServing},
			{Name: "etcd-client", Secret: SecretEtcdClient},
			{Name: "sa", Secret: SecretServiceAccount},
			{Name: "konnectivity-client", Secret: SecretKonnClient},
			{Name: "front-proxy", Secret: SecretFrontProxyClient},
			{Name: "kubelet-client", Secret: SecretKASKubeletClient},
		},
		Probe:          Probe{Port: in.Network.APIServerPort(), Path: "/readyz", Secret: SecretAdminClient},
		PriorityClass:  PriorityAPICritical,
		RequestServing: true,
		Resources:      Resources{CPU: "200m", Memory: "256Mi"},
		Env:            []string{"GOMEMLIMIT=175MiB"},
	}
	if in.Encryption != "" {
		c.Volumes = append(c.Volumes, Volume{Name: "encryption", Secret: SecretEncryptionConfig})
		c.ConfigDigest = in.Encryption
	}
	if in.Network.EtcdFirst() {
		c.StartAfter = Etcd
	}
	h := Var(VarBind)
	c.Replicas = replicas
	c.Files = map[string]string{egressSelectorFile: EgressSelectorConfig(Var(VarKonnectivity))}
	c.Args = []string{
		"--bind-address=" + h,
		"--secure-port=" + strconv.Itoa(in.Network.APIServerPort()),
		"--advertise-address=" + Var(VarIP),
		"--endpoint-reconciler-type=none",
		"--etcd-servers=" + strings.Join(etcdServers, ","),
		"--etcd-cafile=" + file("etcd-client", KeyCA),
		"--etcd-certfile=" + file("etcd-client", KeyCert),
		"--etcd-keyfile=" + file("etcd-client", KeyKey),
		"--tls-cert-file=" + file("server", KeyCert),
		"--tls-private-key-file=" + file("server", KeyKey),
		"--client-ca-file=" + file("server", KeyCA),
		"--service-account-issuer=" + issuer,
		// The keys are published under the issuer (in the cluster,
		// https://kubernetes.default.svc), not at this replica's own
		// address, which is not one pods or others reach.
		"--service-account-jwks-uri=" + strings.TrimSuffix(issuer, "/") + "/openid/v1/jwks",
		"--service-account-key-file=" + file("sa", KeySAPublic),
		"--service-account-signing-key-file=" + file("sa", KeySAPrivate),
		"--service-cluster-ip-range=" + ServiceCIDR(in.HCP),
		"--authorization-mode=Node,RBAC",
		"--enable-bootstrap-token-auth=true",
		"--requestheader-client-ca-file=" + file("front-proxy", KeyCA),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + file("front-proxy", KeyCert),
		"--proxy-client-key-file=" + file("front-proxy", KeyKey),
		"--allow-privileged=true",
		"--egress-selector-config-file=" + file(ReplicaVolume, egressSelectorFile),
		// Nodes are reached by address through their tunnels, not by name.
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--kubelet-client-certificate=" + file("kubelet-client", KeyCert),
		"--kubelet-client-key=" + file("kubelet-client", KeyKey),
		"--profiling=false",
		"--cert-dir=" + DataRoot + "/" + KubeAPIServer,
		"--event-ttl=1h",
	}
	if in.Encryption != "" {
		c.Args = append(c.Args, "--encryption-provider-config="+file("encryption", KeyEncryptionConfig))
	}
	if d := in.Network.ShutdownDelay(replicas); d > 0 {
		// A replica asked to stop keeps serving while requests are steered
		// away from it, then tells clients to retry elsewhere: a drain or a
		// rollout fails no request.
		c.Args = append(c.Args, "--shutdown-delay-duration="+d.String())
	}
	// Once the requests in flight are done the server stops at once, not
	// after the 60 s its watches would otherwise hold it for.
	c.Args = append(c.Args, "--shutdown-send-retry-after=true")
	return c
}

func leaderElected(in Input, name, binary, kubeconfigSecret, clientSecret string, port, replicas int, memLimit string, extra []string) Component {
	c := Component{
		Name:          name,
		Binary:        binary,
		Volumes:       []Volume{{Name: kubeconfigVolume, Secret: kubeconfigSecret}, {Name: "serving", Secret: clientSecret}},
		Probe:         Probe{Port: port, Path: "/healthz"},
		PriorityClass: PriorityControlPlane,
		StartAfter:    KubeAPIServer,
		Resources:     Resources{CPU: "50m", Memory: "64Mi"},
		Env:           []string{"GOMEMLIMIT=" + memLimit},
	}
	kc := file(kubeconfigVolume, KeyKubeconfig)
	c.Replicas = replicas
	c.Args = append([]string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		// Each replica talks to the API server the network names for it
		// (locally: the one on its own host).
		"--master=" + url(Var(VarAPIServer), in.Network.APIServerPort()),
		"--bind-address=" + Var(VarBind),
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + file("serving", KeyCert),
		"--tls-private-key-file=" + file("serving", KeyKey),
		fmt.Sprintf("--leader-elect=%t", replicas > 1),
		"--profiling=false",
	}, extra...)
	return c
}

func kubeControllerManager(in Input, replicas int) Component {
	c := leaderElected(in, KubeControllerManager, release.KubeControllerManager, SecretKCMKubeconfig, SecretKCMClient, KCMPort, replicas, "48MiB", []string{
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + file("sa", KeySAPrivate),
		"--root-ca-file=" + file("ca", KeyCA),
		"--cluster-signing-cert-file=" + file("ca", KeyCA),
		"--cluster-signing-key-file=" + file("ca", KeyCAKey),
		"--cluster-name=" + in.HCP.Spec.InfraID,
		"--cluster-cidr=" + ClusterCIDR(in.HCP),
		// Each node gets its pod range from here; the node's CNI bridge uses it.
		"--allocate-node-cidrs=true",
		"--service-cluster-ip-range=" + ServiceCIDR(in.HCP),
		"--controllers=*,bootstrapsigner,tokencleaner",
	})
	c.Volumes = append(c.Volumes, Volume{Name: "sa", Secret: SecretServiceAccount}, Volume{Name: "ca", Secret: SecretRootCA})
	return c
}

func kubeScheduler(in Input, replicas int) Component {
	return leaderElected(in, KubeScheduler, release.KubeScheduler, SecretSchedKubeconfig, SecretSchedulerClient, SchedulerPort, replicas, "32MiB", nil)
}

// EgressSelectorConfig routes the API server's traffic to the cluster's nodes
// through the konnectivity server on host (a placement variable in a template) (the reverse tunnel that agents open).
func EgressSelectorConfig(host string) string {
	return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      tcp:
        url: ` + url(host, KonnServerPort) + `
        tlsConfig:
          caBundle: ` + file("konnectivity-client", KeyCA) + `
          clientCert: ` + file("konnectivity-client", KeyCert) + `
          clientKey: ` + file("konnectivity-client", KeyKey) + `
- name: controlplane
  connection:
    proxyProtocol: Direct
- name: etcd
  connection:
    proxyProtocol: Direct
`
}
