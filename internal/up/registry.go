package up

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/release"
)

// serveImages serves the management nodes' images when no operator runs in
// hcp up (its infrastructure service serves them otherwise): the same
// registry, on the same address, with the same certificate.
func (p *Plane) serveImages(ctx context.Context) error {
	p.step("image registry")
	c, err := client.New(p.hub.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	creds, err := infra.EnsureCredentials(ctx, c, operator.DefaultNamespace, p.infraURL())
	if err != nil {
		return fmt.Errorf("image registry credentials: %w", err)
	}
	reg := images.NewRegistry(filepath.Join(p.opts.DataDir, "registry")).WithManagementImages()
	addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(p.infraPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("image registry: %w (choose another --infra-port)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{creds.Certificate}, MinVersion: tls.VersionTLS12}}
	// The management nodes pull from it as soon as they start.
	loadCtx, cancel := context.WithCancel(context.Background())
	reg.LoadOnFirstUse(loadCtx, release.Store{Dir: p.opts.ReleaseDir}.List, p.log)
	reg.Warm()
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error(err, "image registry stopped")
		}
	}()
	p.stopRegistry = func() {
		cancel()
		_ = srv.Close()
	}
	return p.hub.WaitReady(ctx)
}
