package operator

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/hcp-dev/hcp/internal/console"
	"github.com/hcp-dev/hcp/internal/release"
)

// addConsole serves the web console on every replica (it needs no lead: it
// only acts with its users' credentials).
func addConsole(mgr manager.Manager, opts Options) error {
	o := opts.Console
	if o.Addr == "" {
		return nil
	}
	cert, err := console.Certificate(o.CertDir, o.Hosts)
	if err != nil {
		return err
	}
	srv := &console.Server{Config: mgr.GetConfig(), Scheme: mgr.GetScheme(), Releases: release.Store{Dir: opts.ReleaseDir},
		APIServerAddress: o.APIServerAddress, Log: opts.Log.WithName("console")}
	return mgr.Add(everyReplica(func(ctx context.Context) error { return srv.Serve(ctx, o.Addr, cert) }))
}

// everyReplica is a runnable that runs whether or not this replica leads.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }

func (everyReplica) NeedLeaderElection() bool { return false }
