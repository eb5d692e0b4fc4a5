package local

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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

	lb, err := newBalancer("127.0.0.1:0", []string{a.Addr().String(), deadAddr, b.Addr().String()}, "", logr.Discard())
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
	// A replica that dies is skipped as well.
	b.Close()
	for range 5 {
		if got := ask(t, addr); got != "a\n" {
			t.Fatalf("with one live replica got %q", got)
		}
	}
}

// TestBalancerSendsNothingToAReplicaThatIsNotReady: a replica that accepts
// connections but answers its health path with 503 (an API server still
// starting) gets no connections until it answers 200.
func TestBalancerSendsNothingToAReplicaThatIsNotReady(t *testing.T) {
	var startingReady atomic.Bool
	server := func(name string, ready func() bool) *httptest.Server {
		return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" && !ready() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, name)
		}))
	}
	serving := server("serving", func() bool { return true })
	defer serving.Close()
	starting := server("starting", startingReady.Load)
	defer starting.Close()

	lb, err := newBalancer("127.0.0.1:0", []string{serving.Listener.Addr().String(), starting.Listener.Addr().String()}, "/readyz", logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec
	get := func() string {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/api", lb.port()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for range 10 {
		if got := get(); got != "serving" {
			t.Fatalf("a replica that is not ready answered: %q", got)
		}
	}
	startingReady.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for get() != "starting" {
		if time.Now().After(deadline) {
			t.Fatal("the replica got no connections after it became ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
