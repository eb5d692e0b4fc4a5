package local

import (
	"testing"
	"time"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
)

// A port handed to one control plane's balancer process is not handed to
// another before that process has bound it.
func TestPickPortSkipsPortsOfOtherControlPlanes(t *testing.T) {
	a := &plane{namespace: "clusters-a", ports: map[string]int{}}
	b := &plane{namespace: "clusters-b", ports: map[string]int{}}
	r := &Runtime{opts: Options{PublicAddress: "127.0.0.1"}, planes: map[string]*plane{"clusters-a": a, "clusters-b": b}}
	api := controlplane.PublishedService{Service: string(hyperv1.APIServer)}
	first, err := r.pickPort(a, api)
	if err != nil {
		t.Fatal(err)
	}
	a.ports[api.Service] = first
	if !r.portHeld(b, first) || r.portHeld(a, first) {
		t.Fatalf("port %d held by clusters-a: portHeld(b) = %t, portHeld(a) = %t", first, r.portHeld(b, first), r.portHeld(a, first))
	}
	second, err := r.pickPort(b, api)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("both control planes were given port %d", first)
	}
	if again, _ := r.pickPort(a, api); first == DefaultAPIServerPort && again != first {
		t.Errorf("the control plane holding %d was given %d", first, again)
	}
}

func TestHoldFollowers(t *testing.T) {
	kas := controlplane.Component{Name: "kube-apiserver"}
	etcd := controlplane.Component{Name: "etcd", Persistent: true}
	cases := []struct {
		name       string
		c          controlplane.Component
		ready      bool
		sinceFirst time.Duration
		want       bool
	}{
		{"first replica starting", kas, false, time.Second, true},
		{"first replica ready", kas, true, time.Second, false},
		{"first replica never ready", kas, false, followerWait, false},
		{"etcd members start together", etcd, false, 0, false},
	}
	for _, tc := range cases {
		if got := holdFollowers(tc.c, tc.ready, tc.sinceFirst); got != tc.want {
			t.Errorf("%s: holdFollowers = %t, want %t", tc.name, got, tc.want)
		}
	}
}
