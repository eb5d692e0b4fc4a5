package operator

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
	"sigs.k8s.io/cluster-api/core/reconcilers/cluster"
	"sigs.k8s.io/cluster-api/core/reconcilers/machine"
	"sigs.k8s.io/cluster-api/core/reconcilers/machinedeployment"
	"sigs.k8s.io/cluster-api/core/reconcilers/machinehealthcheck"
	"sigs.k8s.io/cluster-api/core/reconcilers/machineset"
	"sigs.k8s.io/cluster-api/core/setup"
	"sigs.k8s.io/cluster-api/util/index"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// addClusterAPI runs the Cluster API core reconcilers (Cluster,
// MachineDeployment, MachineSet, Machine, MachineHealthCheck) in the
// operator's manager. They reach each hosted cluster through its
// <infraID>-kubeconfig Secret, which the hostedcontrolplane controller writes.
// ctx bounds the cluster cache's connections to hosted clusters.
func addClusterAPI(ctx context.Context, mgr manager.Manager, log logr.Logger) error {
	ctx = ctrl.LoggerInto(ctx, log)
	if err := index.AddDefaultIndexes(ctx, mgr); err != nil {
		return err
	}
	secrets, err := setup.CreateSecretCachingClient(mgr)
	if err != nil {
		return err
	}
	cache, err := clustercache.SetupWithManager(ctx, mgr, clustercache.Options{
		SecretClient: secrets,
		Cache:        setup.ClusterCacheCacheOptions(),
		Client:       setup.ClusterCacheClientOptions("hcp-operator", 20, 30),
	}, controller.Options{MaxConcurrentReconciles: 10})
	if err != nil {
		return err
	}
	c, reader := mgr.GetClient(), mgr.GetAPIReader()
	opts := func(n int) controller.Options { return controller.Options{MaxConcurrentReconciles: n} }
	// Grace periods as Cluster API's own defaults: a hosted cluster unreachable
	// for 50s is reported so; node conditions older than 5m become unknown.
	if err := (&cluster.Reconciler{Client: c, APIReader: reader, ClusterCache: cache, RemoteConnectionGracePeriod: 50 * time.Second}).SetupWithManager(ctx, mgr, opts(4)); err != nil {
		return err
	}
	if err := (&machine.Reconciler{Client: c, APIReader: reader, ClusterCache: cache, RemoteConditionsGracePeriod: 5 * time.Minute}).SetupWithManager(ctx, mgr, opts(10)); err != nil {
		return err
	}
	if err := (&machineset.Reconciler{Client: c, APIReader: reader, ClusterCache: cache}).SetupWithManager(ctx, mgr, opts(4)); err != nil {
		return err
	}
	if err := (&machinedeployment.Reconciler{Client: c, APIReader: reader}).SetupWithManager(ctx, mgr, opts(4)); err != nil {
		return err
	}
	return (&machinehealthcheck.Reconciler{Client: c, ClusterCache: cache}).SetupWithManager(ctx, mgr, opts(4))
}
