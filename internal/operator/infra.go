package operator

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/controller/agent"
	"github.com/hcp-dev/hcp/internal/controller/agentmachine"
	"github.com/hcp-dev/hcp/internal/controller/infraenv"
	"github.com/hcp-dev/hcp/internal/controller/nodepool"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/release"
)

// addInfra registers the infrastructure service and the InfraEnv, Agent,
// AgentMachine and NodePool controllers. Without an address the service is
// off, and only the NodePool controller runs. ctx bounds the build of the
// release images.
func addInfra(ctx context.Context, mgr manager.Manager, opts Options) error {
	o := opts.Infra
	if o.Addr == "" {
		// NodePools still get a status that says why they cannot have nodes.
		return (&nodepool.Reconciler{Client: mgr.GetClient(), Releases: release.Store{Dir: opts.ReleaseDir}}).SetupWithManager(mgr)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Second
	}
	if o.DisconnectAfter == 0 {
		o.DisconnectAfter = 3 * time.Minute
	}
	if o.Requirements == (agent.Requirements{}) {
		o.Requirements = agent.DefaultRequirements
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 30 * 24 * time.Hour
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	creds, err := infra.EnsureCredentials(context.Background(), direct, opts.LeaderElectionNamespace, o.URL)
	if err != nil {
		return fmt.Errorf("infrastructure service credentials: %w", err)
	}
	signer, err := infra.NewSigner(creds.TokenKey, nil)
	if err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &agentv1.InfraEnv{}, infra.UIDIndex, func(o client.Object) []string {
		return []string{string(o.GetUID())}
	}); err != nil {
		return err
	}
	artifacts := &infra.Artifacts{ServiceURL: o.URL, CA: creds.CA, Signer: signer, TokenTTL: o.TokenTTL, AgentBinary: o.AgentBinary,
		Releases: release.Store{Dir: opts.ReleaseDir}}
	if rel, err := artifacts.Releases.Default(); err == nil {
		artifacts.KonnectivityAgentBinary = rel.Binary(release.KonnectivityAgent)
		artifacts.NodeBinaries = infra.NodeBinaries(rel)
	}
	checkIns := &infra.CheckIns{}
	changes := make(chan client.ObjectKey, 4096)
	server := &infra.Server{Client: mgr.GetClient(), Signer: signer, CheckIns: checkIns, Artifacts: artifacts,
		PollInterval: o.PollInterval, Log: opts.Log.WithName("infra"), Install: infra.MachineUserData(mgr.GetClient()),
		Ignition: &ignition.Server{Client: mgr.GetClient(), Grace: time.Hour, Now: time.Now, Log: opts.Log.WithName("ignition"),
			Registry: o.URL, RegistryCA: creds.CA, Releases: release.Store{Dir: opts.ReleaseDir}},
		Changed: func(k client.ObjectKey) {
			select {
			case changes <- k:
			default:
			}
		}}
	// Nodes pull the release images (pause, CoreDNS, ...) from here. They
	// are built when a host first comes or an image is first pulled, not while
	// the management plane starts.
	regDir := ""
	if opts.DataDir != "" {
		regDir = filepath.Join(opts.DataDir, "registry")
	}
	reg := images.NewRegistry(regDir)
	if o.ManagementImages {
		reg.WithManagementImages()
	}
	server.Registry, server.HostCame = reg, reg.Warm
	reg.LoadOnFirstUse(ctx, release.Store{Dir: opts.ReleaseDir}.List, opts.Log)
	if o.ManagementImages {
		// Management nodes pull control plane images as soon as a cluster
		// is created: start now.
		reg.Warm()
	}
	srv := &http.Server{Addr: o.Addr, Handler: server.Handler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{creds.Certificate}, MinVersion: tls.VersionTLS12}}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return infra.Serve(ctx, srv) })); err != nil {
		return err
	}
	if err := (&infraenv.Reconciler{Client: mgr.GetClient(), Artifacts: artifacts}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&nodepool.Reconciler{Client: mgr.GetClient(), IgnitionURL: o.URL + ignition.Path, IgnitionCA: creds.CA,
		Releases: release.Store{Dir: opts.ReleaseDir}}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&agentmachine.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&agent.Reconciler{Client: mgr.GetClient(), CheckIns: checkIns, DisconnectAfter: o.DisconnectAfter,
		Requirements: o.Requirements, Changes: changes}).SetupWithManager(mgr)
}
