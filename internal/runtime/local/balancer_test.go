package local

import (
	"bufio"
	"fmt"
	"net"
	"testing"

	"github.com/go-logr/logr"
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
