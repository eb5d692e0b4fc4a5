// Package hubtest runs a package's tests against a real management plane: the
// etcd, kube-apiserver and kube-controller-manager of the release payload that
// make build leaves in bin/release, started with hub.Start.
//
//	var env *hubtest.Env
//
//	func TestMain(m *testing.M) { hubtest.Main(m, &env) }
//
//	func TestSomething(t *testing.T) {
//		ns := env.Namespace(t)
//		env.Run(t, func(mgr ctrl.Manager) error { return (&Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr) })
//		...
//		env.Eventually(t, "the status to say so", func(ctx context.Context) error { ... })
//	}
package hubtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	configv1 "github.com/hcp-dev/hcp/api/config/v1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
)

// Timeout bounds each Eventually.
const Timeout = 30 * time.Second

// Env is a running management plane.
type Env struct {
	// Config reaches its API as the admin.
	Config *rest.Config
	// Client is an uncached client with every hcp type.
	Client client.Client
	// Scheme has every type hcp reads or writes.
	Scheme *k8sruntime.Scheme
	// DataDir is the management plane's data directory.
	DataDir string
	// Release is the release payload it runs, one of Releases.
	Release  *release.Release
	Releases release.Store
	// Bin is the directory of the hcp binaries make build made.
	Bin string
}

// Main starts a management plane, sets *env, runs the tests and stops it. A
// missing release payload fails the tests: make build makes it.
func Main(m *testing.M, env **Env) {
	os.Exit(run(m, env))
}

func run(m *testing.M, env **Env) int {
	// Caches started by managers log through controller-runtime's global
	// logger: errors only, to the test's output.
	ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: -1}))
	releases, err := Releases()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rel, err := releases.Default()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "hubtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := hub.Start(ctx, hub.Options{DataDir: dir, Release: rel, Log: logr.Discard()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the management plane:", err)
		return 1
	}
	defer h.Stop()
	if err := h.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting the management plane:", err)
		return 1
	}
	scheme, err := Scheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := h.RESTConfig()
	cfg.QPS, cfg.Burst = 200, 400
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*env = &Env{Config: cfg, Client: c, Scheme: scheme, DataDir: dir, Release: rel, Releases: releases, Bin: Bin()}
	return m.Run()
}

// Releases is the release payload store make build made: $HCP_BIN/release,
// or bin/release of this module.
func Releases() (release.Store, error) {
	store := release.Store{Dir: filepath.Join(Bin(), "release")}
	if _, err := store.Default(); err != nil {
		return store, fmt.Errorf("the release payload is missing (%v); run make build first", err)
	}
	return store, nil
}

// Bin is the directory of the binaries make build made: $HCP_BIN, or bin of
// this module.
func Bin() string {
	if bin := os.Getenv("HCP_BIN"); bin != "" {
		return bin
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "bin")
}

// Scheme has every type hcp reads or writes.
func Scheme() (*k8sruntime.Scheme, error) {
	s := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{
		clientgoscheme.AddToScheme, clusterv1.AddToScheme, hyperv1.AddToScheme,
		agentv1.AddToScheme, capiproviderv1.AddToScheme, configv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Namespace creates a namespace for one test, deleted when it ends.
func (e *Env) Namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + utilrand.String(4)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return name
}

// Run starts a controller manager with what setup registers, until the test
// ends, and returns it.
func (e *Env) Run(t *testing.T, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme: e.Scheme,
		// Only errors are logged: the managers' start and stop lines say nothing
		// about the outcome.
		Logger:                 funcr.New(func(prefix, args string) { t.Log(prefix, args) }, funcr.Options{Verbosity: -1}),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each test registers its controllers anew under the same names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the controller manager's caches did not sync")
	}
	return mgr
}

// Eventually waits until check passes, failing the test after Timeout with
// check's last error.
func (e *Env) Eventually(t *testing.T, what string, check func(context.Context) error) {
	t.Helper()
	e.EventuallyWithin(t, Timeout, what, check)
}

// EventuallyWithin is Eventually with another timeout.
func (e *Env) EventuallyWithin(t *testing.T, timeout time.Duration, what string, check func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := probe.Until(ctx, 100*time.Millisecond, what, check); err != nil {
		t.Fatal(err)
	}
}

// Create creates objects, failing the test on an error.
func (e *Env) Create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// WaitCondition waits until the object named key has condition typ with
// status, and reason unless it is "", and returns the object as read then.
// conditions gives an object's conditions.
func WaitCondition[T client.Object](t *testing.T, e *Env, timeout time.Duration, key client.ObjectKey, conditions func(T) []metav1.Condition,
	typ string, status metav1.ConditionStatus, reason string) T {
	t.Helper()
	var got T
	e.EventuallyWithin(t, timeout, typ+" "+string(status)+"/"+reason, func(ctx context.Context) error {
		obj := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
		if err := e.Client.Get(ctx, key, obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(conditions(obj), typ)
		switch {
		case c == nil:
			return fmt.Errorf("no %s condition yet", typ)
		case c.Status != status || (reason != "" && c.Reason != reason):
			return fmt.Errorf("%s is %s/%s: %s", typ, c.Status, c.Reason, c.Message)
		}
		got = obj
		return nil
	})
	return got
}
