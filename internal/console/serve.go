package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hcp-dev/hcp/internal/pki"
)

// Certificate is the console's serving certificate. With a directory, the
// certificate and the CA that signed it are kept there (console-ca.crt is the
// one to trust) and reused while they cover hosts; without, they live in
// memory for this run only.
func Certificate(dir string, hosts []string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	if dir != "" {
		if kp, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && kp.Leaf != nil && covers(kp, hosts) && time.Until(kp.Leaf.NotAfter) > 24*time.Hour {
			return kp, nil
		}
	}
	ca, err := pki.NewCA("hcp-console-ca")
	if err != nil {
		return tls.Certificate{}, err
	}
	spec := pki.CertSpec{CommonName: "hcp-console", Usage: pki.ServerAuth, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			spec.IPs = append(spec.IPs, ip)
		} else if h != "" {
			spec.DNSNames = append(spec.DNSNames, h)
		}
	}
	leaf, err := ca.Issue(spec)
	if err != nil {
		return tls.Certificate{}, err
	}
	if dir != "" {
		for path, b := range map[string][]byte{filepath.Join(dir, "console-ca.crt"): ca.CertPEM, certPath: leaf.CertPEM, keyPath: leaf.KeyPEM} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return tls.Certificate{}, fmt.Errorf("writing the console certificate: %w", err)
			}
		}
	}
	return tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
}

func covers(kp tls.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if h != "" && kp.Leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// Serve serves the console on addr with cert until ctx ends.
func (s *Server) Serve(ctx context.Context, addr string, cert tls.Certificate) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	// Event streams never end by themselves: shutting down ends them.
	srv.RegisterOnShutdown(func() { close(s.shutdown) })
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return srv.Close()
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
