package local

import (
	"fmt"
	"time"

	"github.com/hcp-dev/hcp/internal/controlplane"
)

// hosts places a control plane's replicas on the local runtime: replica i of
// every component listens on the loopback address hosts[i] (each component
// on its own port), and talks to the other components' replica i there.
type hosts []string

var _ controlplane.Network = hosts(nil)

func (h hosts) Vars(component string, i int) map[string]string {
	return map[string]string{
		controlplane.VarName:         fmt.Sprintf("%s-%d", component, i),
		controlplane.VarIP:           h[i],
		controlplane.VarBind:         h[i],
		controlplane.VarEtcdSelf:     h[i],
		controlplane.VarAPIServer:    h[i],
		controlplane.VarKonnectivity: h[i],
	}
}

func (h hosts) EtcdPeer(i int) string { return h[i] }

func (h hosts) APIServerPort() int { return controlplane.KubeAPIServerPort }

func (h hosts) SANs() []string { return h }

func (h hosts) Fits(replicas int) error {
	if len(h) < replicas {
		return fmt.Errorf("%d hosts for %d replicas", len(h), replicas)
	}
	return nil
}

// ShutdownDelay: the published service's balancer checks each API server's
// /readyz every 5 s, so a replica of several keeps serving 7 s after it is
// asked to stop; a lone one has nowhere to steer requests to.
func (h hosts) ShutdownDelay(replicas int) time.Duration {
	if replicas > 1 {
		return 7 * time.Second
	}
	return 0
}

// EtcdFirst: etcd's data is a local directory, there at once; the API server
// starts with it, which makes a control plane ready sooner.
func (h hosts) EtcdFirst() bool { return false }
