package local

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// balancer forwards TCP connections from a public port to a component's
// replicas, as a node port or load balancer does in a real cluster: each new
// connection goes to the next replica that accepts it.
type balancer struct {
	listener net.Listener
	log      logr.Logger
	next     atomic.Uint64

	mu       sync.Mutex
	backends []string
	conns    map[net.Conn]struct{}
	closed   bool
}

func newBalancer(addr string, backends []string, log logr.Logger) (*balancer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &balancer{listener: l, log: log, backends: backends, conns: map[net.Conn]struct{}{}}
	go b.serve()
	return b, nil
}

func (b *balancer) port() int { return b.listener.Addr().(*net.TCPAddr).Port }

func (b *balancer) setBackends(backends []string) {
	b.mu.Lock()
	b.backends = backends
	b.mu.Unlock()
}

func (b *balancer) close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.listener.Close()
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
	b.mu.Lock()
	backends := append([]string(nil), b.backends...)
	b.mu.Unlock()
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
func Balance(ctx context.Context, listen string, backends []string, log logr.Logger) error {
	if len(backends) == 0 {
		return errors.New("no backends")
	}
	b, err := newBalancer(listen, backends, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	b.close()
	return nil
}
