// Package operator is the hcp operator: one controller-runtime manager with every
// hcp controller, its health endpoints, metrics and leader election. The hcp-operator
// command runs it against a management cluster; hcp up runs it in-process.
package operator

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	configv1 "github.com/hcp-dev/hcp/api/config/v1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/controller/agent"
	"github.com/hcp-dev/hcp/internal/release"
	k8sruntime "github.com/hcp-dev/hcp/internal/runtime/kubernetes"
	"github.com/hcp-dev/hcp/internal/version"
)

// LeaderElectionID names the Lease the operator replicas compete for.
const LeaderElectionID = "hcp-operator"

// DefaultNamespace is the operator's namespace.
const DefaultNamespace = "hcp-system"

// VersionConfigMap is the ConfigMap (in the leader election namespace) where the
// leading operator publishes its version and the release images it serves.
const VersionConfigMap = release.ServedConfigMap

// Options configure the operator.
// Runtimes.
const (
	RuntimeLocal      = "local"
	RuntimeKubernetes = "kubernetes"
)

var managedWorkloads = labels.SelectorFromSet(labels.Set{k8sruntime.ManagedByLabel: "hcp"})

type Options struct {
	// Config reaches the management API.
	Config *rest.Config
	// MetricsAddr is where Prometheus metrics are served; "0" turns them off.
	MetricsAddr string
	// HealthAddr is where /healthz and /readyz are served; "0" turns them off.
	HealthAddr string
	// LeaderElection makes only one replica active at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the leader Lease.
	LeaderElectionNamespace string
	// Log is the operator's logger.
	Log logr.Logger
	// Runtime runs the control planes: RuntimeLocal (processes of this
	// operator) or RuntimeKubernetes (workloads of the management cluster).
	Runtime string
	// DataDir holds the local runtime's control planes (files, logs, processes).
	DataDir string
	// ReleaseDir is the release payload store.
	ReleaseDir string
	// ImageRepository is where control plane pods pull hcp's images from
	// (kubernetes runtime): <repository>/control-plane@<digest>.
	ImageRepository string
	// OutsideCluster says the operator runs outside the management cluster's
	// pod network (hcp up with management nodes, Kubernetes runtime): it
	// reaches hosted API servers on their published endpoints.
	OutsideCluster bool
	// StopControlPlanesOnExit stops every control plane process when the
	// operator stops (hcp up); otherwise they keep serving and the next operator
	// adopts them.
	StopControlPlanesOnExit bool
	// Infra configures the infrastructure service that discovery agents use.
	Infra InfraOptions
	// Console configures the web console.
	Console ConsoleOptions
}

// ConsoleOptions configure the web console.
type ConsoleOptions struct {
	// Addr is where the console listens, e.g. 127.0.0.1:8443; empty turns it off.
	Addr string
	// CertDir keeps the console's certificate and its CA (console-ca.crt);
	// empty makes a new one each start.
	CertDir string
	// Hosts are the names or addresses users reach the console at, for its
	// certificate (localhost and 127.0.0.1 are always included).
	Hosts []string
	// APIServerAddress is what the create wizard proposes as a new cluster's
	// API server address.
	APIServerAddress string
}

// InfraOptions configure the infrastructure service and the Agent controllers.
type InfraOptions struct {
	// Addr is where the service listens, e.g. 0.0.0.0:8090.
	Addr string
	// URL is the service's address as hosts reach it, e.g. https://192.0.2.10:8090.
	URL string
	// AgentBinary is the hcp-agent executable served to hosts.
	AgentBinary string
	// PollInterval is how often agents ask for steps.
	PollInterval time.Duration
	// DisconnectAfter is how long without a check-in makes a host disconnected.
	DisconnectAfter time.Duration
	// Requirements are the least a worker host must have.
	Requirements agent.Requirements
	// TokenTTL is how long the tokens in discovery artifacts are valid.
	TokenTTL time.Duration
	// ManagementImages makes the registry also serve what management nodes
	// run (control plane images, storage and NetworkPolicy programs).
	ManagementImages bool
}

// Scheme has every type the operator reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		clusterv1.AddToScheme,
		hyperv1.AddToScheme,
		agentv1.AddToScheme,
		capiproviderv1.AddToScheme,
		configv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// New builds the operator's manager with all its controllers (ctx bounds their
// connections to hosted clusters), and the function that releases (or, with StopControlPlanesOnExit, stops) the control plane
// processes once the manager has stopped.
func New(ctx context.Context, opts Options) (manager.Manager, func(), error) {
	closeRuntime := func() {}
	mgr, err := newManager(ctx, opts, &closeRuntime)
	return mgr, func() { closeRuntime() }, err
}

func newManager(ctx context.Context, opts Options, closeRuntime *func()) (manager.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        quietCleanStop(opts.Log),
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:        opts.HealthAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Only the control planes' own workloads are watched, not every
		// Deployment of the management cluster.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:  {Label: managedWorkloads},
			&appsv1.StatefulSet{}: {Label: managedWorkloads},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the operator manager: %w", err)
	}
	if err := addControllers(ctx, mgr, opts, closeRuntime); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: opts.LeaderElectionNamespace, Name: VersionConfigMap},
			Data: map[string]string{"version": version.Version,
				release.ServedKey: release.Store{Dir: opts.ReleaseDir}.ServedData()}}
		if err := apply.Object(ctx, mgr.GetClient(), cm, "hcp-operator"); err != nil {
			opts.Log.Error(err, "publishing the operator version")
		}
		return nil
	})); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("informer caches are not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// quietCleanStop drops the one error controller-runtime logs on every clean
// stop with leader election: releasing the lease on purpose reports "leader
// election lost" once the stop has begun (kubernetes-sigs/controller-runtime
// issue 3535). A lease lost while running still stops the manager with that
// error.
func quietCleanStop(log logr.Logger) logr.Logger {
	if log.GetSink() == nil {
		return log
	}
	return logr.New(cleanStopSink{log.GetSink()})
}

type cleanStopSink struct{ logr.LogSink }

// Init counts this sink's own frame, so log lines name their real callers.
func (s cleanStopSink) Init(info logr.RuntimeInfo) {
	info.CallDepth++
	s.LogSink.Init(info)
}

func (s cleanStopSink) Error(err error, msg string, kv ...any) {
	if msg == "error received after stop sequence was engaged" && err != nil && err.Error() == "leader election lost" {
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s cleanStopSink) WithValues(kv ...any) logr.LogSink {
	return cleanStopSink{s.LogSink.WithValues(kv...)}
}

func (s cleanStopSink) WithName(name string) logr.LogSink {
	return cleanStopSink{s.LogSink.WithName(name)}
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, opts Options) error {
	mgr, closeRuntime, err := New(ctx, opts)
	if err != nil {
		return err
	}
	defer closeRuntime()
	// The namespace type is read by every controller; starting its informer
	// now makes readiness mean "caches are warm".
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("watching namespaces: %w", err)
	}
	return mgr.Start(ctx)
}
