package local

import (
	"bufio"
	"fmt"
	"net"
	"testing"

	"github.com/go-logr/logr"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
)

// echoServer answers each connection with its name.
func echoServer(t *testing.T, name string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
	return l
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

func TestBalancerSpreadsAndSkipsDeadReplicas(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	defer a.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	lb, err := newBalancer("127.0.0.1:0", []string{a.Addr().String(), deadAddr, b.Addr().String()}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close()
	addr := fmt.Sprintf("127.0.0.1:%d", lb.port())
	seen := map[string]int{}
	for range 12 {
		seen[ask(t, addr)]++
	}
	if seen["a\n"] == 0 || seen["b\n"] == 0 || seen[""] != 0 {
		t.Fatalf("answers %v: want both live replicas and no failures", seen)
	}
	b.Close()
	lb.setBackends([]string{deadAddr, a.Addr().String()})
	for range 5 {
		if got := ask(t, addr); got != "a\n" {
			t.Fatalf("with one live replica got %q", got)
		}
	}
}

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
