package controlplane

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Services of a control plane in a Kubernetes management cluster.
const (
	// ServiceEtcdDiscovery is etcd's headless Service: member i is
	// etcd-<i>.etcd-discovery.
	ServiceEtcdDiscovery = "etcd-discovery"
	// ServiceEtcdClient serves etcd's client port.
	ServiceEtcdClient = "etcd-client"
	// ServiceKubeAPIServer is the API server inside the management cluster and,
	// published, outside it.
	ServiceKubeAPIServer = "kube-apiserver"
	// ServiceKonnectivityLocal is the konnectivity servers' port for the API servers.
	ServiceKonnectivityLocal = "konnectivity-server-local"
	// ServiceKonnectivity is the konnectivity servers' port for the nodes' agents.
	ServiceKonnectivity = "konnectivity-server"

	// KubeAPIServerPodPort is the API server's port in a pod (the seed's 6443).
	KubeAPIServerPodPort = 6443
)

// Placement variables: a component's arguments and files are templates in
// which $(NAME) stands for where one replica is. A runtime fills them in for
// each replica (see Network.Vars and Expand); a Kubernetes runtime leaves
// $(POD_NAME) and $(POD_IP) for the kubelet, which expands them from the pod's
// environment.
const (
	// VarName is a name unique to the replica: its pod's name, or
	// <component>-<replica>. It is etcd's member name and a konnectivity
	// server's ID.
	VarName = "POD_NAME"
	// VarIP is the address the replica announces to others.
	VarIP = "POD_IP"
	// VarBind is the address the replica listens on.
	VarBind = "HCP_BIND"
	// VarEtcdSelf is the name an etcd member announces its URLs with.
	VarEtcdSelf = "HCP_ETCD_SELF"
	// VarAPIServer is the API server host the replica talks to.
	VarAPIServer = "HCP_API_SERVER"
	// VarKonnectivity is the konnectivity server host an API server replica
	// sends traffic for the nodes to.
	VarKonnectivity = "HCP_KONNECTIVITY"
)

// Var is the reference to a placement variable in a template: $(name).
func Var(name string) string { return "$(" + name + ")" }

// Network places a control plane's replicas: where each listens and how the
// components reach one another. Each runtime implements it: the local runtime
// gives each replica index an address of its own, shared by that replica of
// every component; the Kubernetes runtime runs replicas as pods that listen on
// all their addresses and reach one another through Services.
type Network interface {
	// Vars are the values of the placement variables for replica i of a
	// component.
	Vars(component string, i int) map[string]string
	// EtcdPeer is the host etcd member i is reached at, by other members
	// and by clients.
	EtcdPeer(i int) string
	// APIServerPort is the API server's port on its replicas.
	APIServerPort() int
	// SANs are the names the components' serving certificates must cover.
	SANs() []string
	// Fits returns an error when the network has no room for replicas
	// replicas of a component.
	Fits(replicas int) error
	// ShutdownDelay is how long an API server replica asked to stop keeps
	// serving while whatever balances requests over the replicas stops
	// sending it any (0: it stops once the requests in flight are done).
	ShutdownDelay(replicas int) time.Duration
	// EtcdFirst reports whether the API server waits for a ready etcd
	// replica before it starts: it gives up when etcd does not answer within
	// its storage deadline, and an etcd that waits for its volume first may
	// take longer.
	EtcdFirst() bool
}

// Expand fills the placement variables vars into a template.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	for k, v := range vars {
		s = strings.ReplaceAll(s, Var(k), v)
	}
	return s
}

// Instance is replica i of c with the placement variables vars filled in.
func (c Component) Instance(vars map[string]string) Replica {
	r := Replica{Host: vars[VarBind], Args: make([]string, len(c.Args))}
	for j, a := range c.Args {
		r.Args[j] = Expand(a, vars)
	}
	if len(c.Files) > 0 {
		r.Files = make(map[string]string, len(c.Files))
		for k, v := range c.Files {
			r.Files[k] = Expand(v, vars)
		}
	}
	return r
}

// Instances are c's replicas placed by n.
func (c Component) Instances(n Network) []Replica {
	out := make([]Replica, c.Replicas)
	for i := range out {
		out[i] = c.Instance(n.Vars(c.Name, i))
	}
	return out
}

// EtcdClientURLs are where the etcd members of a control plane with
// replicas members serve clients.
func EtcdClientURLs(n Network, replicas int) []string {
	var out []string
	for i := range replicas {
		out = append(out, url(n.EtcdPeer(i), EtcdClientPort))
	}
	return out
}

// APIServerURL is the API server as the components and the operator reach it:
// the one replica 0 of the other components talks to.
func APIServerURL(n Network) string {
	return url(n.Vars(KubeControllerManager, 0)[VarAPIServer], n.APIServerPort())
}

func url(host string, port int) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}
