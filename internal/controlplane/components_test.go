package controlplane

import (
	"reflect"
	"testing"
)

// A component's template is filled in per replica; a variable the runtime
// leaves out ($(POD_NAME) for a pod) stays for the pod to fill in.
func TestInstanceFillsPlacementVariables(t *testing.T) {
	c := Component{Name: Etcd, Replicas: 2, Args: []string{"--name=" + Var(VarName), "--listen-client-urls=" + url(Var(VarBind), EtcdClientPort), "--log-level=warn"},
		Files: map[string]string{"egress.yaml": "url: " + url(Var(VarKonnectivity), KonnServerPort)}}
	got := c.Instance(map[string]string{VarName: "etcd-1", VarBind: "127.1.0.2", VarKonnectivity: "127.1.0.2"})
	want := Replica{Host: "127.1.0.2", Args: []string{"--name=etcd-1", "--listen-client-urls=https://127.1.0.2:2379", "--log-level=warn"},
		Files: map[string]string{"egress.yaml": "url: https://127.1.0.2:8090"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instance %+v, want %+v", got, want)
	}
	pod := c.Instance(map[string]string{VarBind: "0.0.0.0", VarKonnectivity: "konnectivity-server-local.ns.svc"})
	if pod.Args[0] != "--name=$(POD_NAME)" || pod.Args[1] != "--listen-client-urls=https://0.0.0.0:2379" {
		t.Errorf("pod template args %q", pod.Args)
	}
	if c.Args[0] != "--name=$(POD_NAME)" {
		t.Errorf("the template changed: %q", c.Args)
	}
}

func TestFirstServiceIP(t *testing.T) {
	for in, want := range map[string]string{"172.31.0.0/16": "172.31.0.1", "10.96.0.0/12": "10.96.0.1", "fd02::/112": "fd02::1"} {
		if got, err := FirstServiceIP(in); err != nil || got != want {
			t.Errorf("FirstServiceIP(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := FirstServiceIP("nonsense"); err == nil {
		t.Error("nonsense accepted")
	}
}
