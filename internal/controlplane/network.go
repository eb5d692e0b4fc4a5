package controlplane

import "fmt"

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

// Network says where replicas listen and how components reach one another.
// The local runtime gives each replica index its own address (Hosts) shared by
// that replica of every component; in a Kubernetes management cluster
// (Domain set) replicas listen on all addresses of their pod and are reached
// through Services.
type Network struct {
	// Hosts are the replica addresses of the local runtime.
	Hosts []string
	// Domain is the control plane namespace's service domain, <namespace>.svc,
	// for the Kubernetes runtime.
	Domain string
}

func (n Network) pods() bool { return n.Domain != "" }

func (n Network) service(name string) string { return name + "." + n.Domain }

// bind is the address replica i listens on.
func (n Network) bind(i int) string {
	if n.pods() {
		return "0.0.0.0"
	}
	return n.Hosts[i]
}

// advertise is replica i's own IP address, as it announces it.
func (n Network) advertise(i int) string {
	if n.pods() {
		return "$(POD_IP)"
	}
	return n.Hosts[i]
}

// member is etcd replica i's member name.
func (n Network) member(i int) string {
	if n.pods() {
		return "$(POD_NAME)"
	}
	return fmt.Sprintf("etcd-%d", i)
}

// replicaName is a name unique to replica i of a component: its pod's name,
// or <component>-<i>. Agents of konnectivity tell servers apart by it.
func (n Network) replicaName(component string, i int) string {
	if n.pods() {
		return "$(POD_NAME)"
	}
	return fmt.Sprintf("%s-%d", component, i)
}

// etcdSelf is the name etcd replica i advertises for itself.
func (n Network) etcdSelf(i int) string {
	if n.pods() {
		return "$(POD_NAME)." + n.service(ServiceEtcdDiscovery)
	}
	return n.Hosts[i]
}

// etcdPeer is how others reach etcd member i.
func (n Network) etcdPeer(i int) string {
	if n.pods() {
		return fmt.Sprintf("etcd-%d.%s", i, n.service(ServiceEtcdDiscovery))
	}
	return n.Hosts[i]
}

// apiServer is the API server that replica i of another component talks to.
func (n Network) apiServer(i int) string {
	if n.pods() {
		return n.service(ServiceKubeAPIServer)
	}
	return n.Hosts[i]
}

// konnectivity is the konnectivity server that API server replica i talks to.
func (n Network) konnectivity(i int) string {
	if n.pods() {
		return n.service(ServiceKonnectivityLocal)
	}
	return n.Hosts[i]
}

// APIServerPort is the API server's port on its replicas.
func (n Network) APIServerPort() int {
	if n.pods() {
		return KubeAPIServerPodPort
	}
	return KubeAPIServerPort
}

// EtcdClientURLs are where the etcd members of a control plane with
// replicas members serve clients.
func (n Network) EtcdClientURLs(replicas int) []string {
	var out []string
	for i := range replicas {
		out = append(out, url(n.etcdPeer(i), EtcdClientPort))
	}
	return out
}

// APIServerURL is the API server as the components and the operator reach it.
func (n Network) APIServerURL() string { return url(n.apiServer(0), n.APIServerPort()) }

// SANs are the names the components' serving certificates must cover.
func (n Network) SANs() []string {
	if !n.pods() {
		return n.Hosts
	}
	out := []string{"*." + n.service(ServiceEtcdDiscovery)}
	for _, s := range []string{ServiceEtcdClient, ServiceKubeAPIServer, ServiceKonnectivityLocal, ServiceKonnectivity} {
		out = append(out, s, n.service(s), n.service(s)+".cluster.local")
	}
	for i := range 3 {
		out = append(out, n.etcdPeer(i))
	}
	return out
}

// replicas checks that the network has room for n replicas.
func (n Network) replicas(count int) error {
	if !n.pods() && len(n.Hosts) < count {
		return fmt.Errorf("%d hosts for %d replicas", len(n.Hosts), count)
	}
	return nil
}
