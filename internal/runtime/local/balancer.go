package local

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// balancer forwards TCP connections from a public port to a component's
// replicas, as a node port or load balancer does in a real cluster: each new
// connection goes to the next replica that accepts it. With a health path, a
// replica gets connections only once it answers HTTPS GET <path> with 200 (as a
// load balancer's health check does), so a starting API server that accepts
// connections but does not serve yet gets none; when no replica is healthy,
// every one that accepts is tried.
type balancer struct {
	listener   net.Listener
	log        logr.Logger
	next       atomic.Uint64
	healthPath string
	probe      *http.Client
	stop       chan struct{}

	mu       sync.Mutex
	backends []string
	healthy  map[string]bool
	conns    map[net.Conn]struct{}
	closed   bool
}

// Health check intervals: often while a backend is not healthy, seldom once
// all are (an idle control plane should cost little).
const (
	healthFast = 500 * time.Millisecond
	healthSlow = 5 * time.Second
)

func newBalancer(addr string, backends []string, healthPath string, log logr.Logger) (*balancer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &balancer{listener: l, log: log, backends: backends, healthPath: healthPath, stop: make(chan struct{}),
		healthy: map[string]bool{}, conns: map[net.Conn]struct{}{},
		// Probes keep their connections: a probe every few seconds costs a
		// request, not a TLS handshake. They are loopback health probes of
		// replicas whose addresses are not in their certificates: the answer
		// matters, not the identity.
		probe: &http.Client{Timeout: time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
			MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * healthSlow}}}
	if healthPath != "" {
		b.checkHealth()
		go b.watchHealth()
	}
	go b.serve()
	return b, nil
}

// checkHealth probes every backend once and records which are healthy; it
// reports whether all are.
func (b *balancer) checkHealth() bool {
	b.mu.Lock()
	backends := append([]string(nil), b.backends...)
	b.mu.Unlock()
	healthy := map[string]bool{}
	for _, addr := range backends {
		resp, err := b.probe.Get("https://" + addr + b.healthPath)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			healthy[addr] = resp.StatusCode == http.StatusOK
		}
	}
	b.mu.Lock()
	b.healthy = healthy
	b.mu.Unlock()
	for _, addr := range backends {
		if !healthy[addr] {
			return false
		}
	}
	return true
}

func (b *balancer) watchHealth() {
	for {
		wait := healthFast
		if b.checkHealth() {
			wait = healthSlow
		}
		select {
		case <-b.stop:
			return
		case <-time.After(wait):
		}
	}
}

// candidates are the backends to try for a new connection, healthy ones
// first when health is checked.
func (b *balancer) candidates() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.healthPath == "" {
		return append([]string(nil), b.backends...)
	}
	var healthy []string
	for _, addr := range b.backends {
		if b.healthy[addr] {
			healthy = append(healthy, addr)
		}
	}
	if len(healthy) == 0 {
		return append([]string(nil), b.backends...)
	}
	return healthy
}

func (b *balancer) port() int { return b.listener.Addr().(*net.TCPAddr).Port }

func (b *balancer) close() {
	b.mu.Lock()
	if !b.closed {
		close(b.stop)
	}
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.listener.Close()
	if b.probe != nil {
		b.probe.CloseIdleConnections()
	}
}

func (b *balancer) serve() {
	for {
		c, err := b.listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go b.forward(c)
	}
}

func (b *balancer) track(c net.Conn, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		if b.closed {
			return false
		}
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
	return true
}

func (b *balancer) forward(client net.Conn) {
	defer client.Close()
	if !b.track(client, true) {
		return
	}
	defer b.track(client, false)
	backends := b.candidates()
	if len(backends) == 0 {
		return
	}
	start := int(b.next.Add(1))
	var upstream net.Conn
	for i := range backends {
		addr := backends[(start+i)%len(backends)]
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			upstream = c
			break
		}
	}
	if upstream == nil {
		return
	}
	defer upstream.Close()
	if !b.track(upstream, true) {
		return
	}
	defer b.track(upstream, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); closeWrite(client); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// Balance runs a balancer from listen to backends until ctx ends: the body of
// the balancer processes that publish services ("hcp balance", "hcp-operator
// balance").
// With planeDir it also watches over that control plane (see watchPlane) and
// ends when the plane is gone.
func Balance(ctx context.Context, listen string, backends []string, healthPath, planeDir string, log logr.Logger) error {
	if len(backends) == 0 {
		return errors.New("no backends")
	}
	b, err := newBalancer(listen, backends, healthPath, log)
	if err != nil {
		return err
	}
	if planeDir != "" {
		watched, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			watchPlane(watched, planeDir, log)
			cancel()
		}()
		ctx = watched
	}
	<-ctx.Done()
	b.close()
	return nil
}
