package kubernetes

import (
	"fmt"
	"time"

	"github.com/hcp-dev/hcp/internal/controlplane"
)

// Pods places a control plane's replicas as pods of the control plane
// namespace (its service domain <namespace>.svc): they listen on all their
// addresses, name themselves by their pod's name and address (the kubelet
// fills in $(POD_NAME) and $(POD_IP)), and reach one another through
// Services.
type Pods struct {
	// Domain is the namespace's service domain, <namespace>.svc.
	Domain string
}

// PodsIn is the Network of the control plane in namespace.
func PodsIn(namespace string) Pods { return Pods{Domain: namespace + ".svc"} }

var _ controlplane.Network = Pods{}

func (p Pods) service(name string) string { return name + "." + p.Domain }

// Vars are the same for every replica: what tells replicas apart is left
// to the pod.
func (p Pods) Vars(string, int) map[string]string {
	return map[string]string{
		controlplane.VarBind:         "0.0.0.0",
		controlplane.VarEtcdSelf:     controlplane.Var(controlplane.VarName) + "." + p.service(controlplane.ServiceEtcdDiscovery),
		controlplane.VarAPIServer:    p.service(controlplane.ServiceKubeAPIServer),
		controlplane.VarKonnectivity: p.service(controlplane.ServiceKonnectivityLocal),
	}
}

func (p Pods) EtcdPeer(i int) string {
	return fmt.Sprintf("etcd-%d.%s", i, p.service(controlplane.ServiceEtcdDiscovery))
}

func (p Pods) APIServerPort() int { return controlplane.KubeAPIServerPodPort }

func (p Pods) SANs() []string {
	out := []string{"*." + p.service(controlplane.ServiceEtcdDiscovery)}
	for _, s := range []string{controlplane.ServiceEtcdClient, controlplane.ServiceKubeAPIServer, controlplane.ServiceKonnectivityLocal, controlplane.ServiceKonnectivity} {
		out = append(out, s, p.service(s), p.service(s)+".cluster.local")
	}
	for i := range 3 {
		out = append(out, p.EtcdPeer(i))
	}
	return out
}

func (p Pods) Fits(int) error { return nil }

// ShutdownDelay: a pod being deleted keeps serving while Services and load
// balancers stop sending it requests.
func (p Pods) ShutdownDelay(int) time.Duration { return 10 * time.Second }

// EtcdFirst: an etcd pod may wait for its volume to be attached.
func (p Pods) EtcdFirst() bool { return true }
