package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeIsOutsideTheEphemeralRangeAndListenable(t *testing.T) {
	lo, hi := ephemeral()
	seen := map[int]bool{}
	for range 50 {
		port, err := Free("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if port >= lo && port <= hi {
			t.Fatalf("port %d is inside the ephemeral range %d-%d", port, lo, hi)
		}
		if port < lowest {
			t.Fatalf("port %d is below %d", port, lowest)
		}
		seen[port] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is not listenable: %v", port, err)
		}
		l.Close()
	}
	if len(seen) < 40 {
		t.Fatalf("50 picks gave only %d different ports", len(seen))
	}
}

func TestListenableSeesAHeldPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if Listenable("127.0.0.1", l.Addr().(*net.TCPAddr).Port) {
		t.Fatal("a held port was reported listenable")
	}
}
