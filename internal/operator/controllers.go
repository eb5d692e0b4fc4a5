package operator

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controller/etcdbackup"
	"github.com/hcp-dev/hcp/internal/controller/hostedcluster"
	"github.com/hcp-dev/hcp/internal/controller/hostedcontrolplane"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/release"
	k8sruntime "github.com/hcp-dev/hcp/internal/runtime/kubernetes"
	"github.com/hcp-dev/hcp/internal/runtime/local"
)

// addControllers registers every controller and the control-plane runtime.
// closeRuntime is set to the runtime's Close, which Run calls once the manager
// has stopped, whether or not this operator ever led.
func addControllers(ctx context.Context, mgr manager.Manager, opts Options, closeRuntime *func()) error {
	releases := release.Store{Dir: opts.ReleaseDir}
	var (
		rt         hostedcontrolplane.Runtime
		backups    backup.Taker
		changes    chan string
		publishing = map[hyperv1.PublishingStrategyType]bool{hyperv1.NodePort: true}
	)
	switch opts.Runtime {
	case RuntimeKubernetes:
		k8s := k8sruntime.New(k8sruntime.Options{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Log: opts.Log.WithName("runtime"),
			ImageRepository: opts.ImageRepository})
		rt = k8s
		// Only the control plane namespace's own pods reach etcd: backups
		// run as Jobs there.
		backups = k8sruntime.Backups{Runtime: k8s, Client: mgr.GetClient(), Releases: releases}
		publishing[hyperv1.LoadBalancer] = true
		publishing[hyperv1.Route] = true // checked against the served APIs when applied
	case RuntimeLocal, "":
		local, err := newLocalRuntime(mgr, opts)
		if err != nil {
			return err
		}
		changes = local.changes
		rt = local.Runtime
		*closeRuntime = local.Close
	default:
		return fmt.Errorf("runtime %q: use %s or %s", opts.Runtime, RuntimeLocal, RuntimeKubernetes)
	}
	if err := addClusterAPI(ctx, mgr, opts.Log.WithName("cluster-api")); err != nil {
		return fmt.Errorf("cluster API: %w", err)
	}
	if err := addInfra(ctx, mgr, opts); err != nil {
		return err
	}
	if err := addConsole(mgr, opts); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	ignitionEndpoint := ""
	if u, err := url.Parse(opts.Infra.URL); err == nil && opts.Infra.Addr != "" {
		ignitionEndpoint = u.Host
	}
	var ignitionCheck func(context.Context) error
	if ignitionEndpoint != "" {
		ignitionCheck = ignitionProbe(opts.Infra.Addr)
	}
	backupDir := opts.DataDir
	if backupDir == "" {
		// In a pod: Local backups are on the operator's own disk.
		backupDir = filepath.Join(os.TempDir(), "hcp")
	}
	if backups == nil {
		backups = backup.Local{Client: mgr.GetClient(), Releases: releases, Network: rt.Network, DataDir: backupDir}
	}
	if err := (&hostedcluster.Reconciler{
		Backups:             backups,
		DataDir:             backupDir,
		RemoteRestore:       opts.Runtime == RuntimeKubernetes,
		IgnitionEndpoint:    ignitionEndpoint,
		IgnitionCheck:       ignitionCheck,
		Client:              mgr.GetClient(),
		Releases:            releases,
		SupportedPublishing: publishing,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&etcdbackup.Reconciler{
		Client:  mgr.GetClient(),
		Backups: backups,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&hostedcontrolplane.Reconciler{
		Client:          mgr.GetClient(),
		Runtime:         rt,
		Releases:        releases,
		Changes:         changes,
		WatchWorkloads:  opts.Runtime == RuntimeKubernetes,
		OperatorOutside: opts.OutsideCluster,
		DataDir:         backupDir,
	}).SetupWithManager(mgr)
}

type localRuntime struct {
	*local.Runtime
	changes chan string
}

func newLocalRuntime(mgr manager.Manager, opts Options) (localRuntime, error) {
	if opts.DataDir == "" {
		return localRuntime{}, fmt.Errorf("the operator needs a data directory for control planes")
	}
	exe, err := os.Executable()
	if err != nil {
		return localRuntime{}, err
	}
	changes := make(chan string, 256)
	rt, err := local.New(local.Options{
		BalancerCommand: []string{exe, "balance"},
		Dir:             filepath.Join(opts.DataDir, "controlplanes"),
		Client:          mgr.GetAPIReader(),
		Log:             opts.Log.WithName("runtime"),
		StopOnClose:     opts.StopControlPlanesOnExit,
		Notify: func(ns string) {
			select {
			case changes <- ns:
			default:
			}
		},
	})
	return localRuntime{Runtime: rt, changes: changes}, err
}

// ignitionProbe checks that the ignition server behind addr (the
// infrastructure service's listen address) answers: a request without a token
// is refused with 401. A result is kept for ten seconds.
func ignitionProbe(addr string) func(context.Context) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return func(context.Context) error { return fmt.Errorf("infrastructure service address %q: %w", addr, err) }
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	target := "https://" + net.JoinHostPort(host, port) + ignition.Path
	// A loopback probe of this operator's own listener: that it answers
	// matters, not its certificate's names.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	var mu sync.Mutex
	var checked time.Time
	var last error
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) < 10*time.Second {
			return last
		}
		checked, last = time.Now(), nil
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			last = err
			return last
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = fmt.Errorf("the ignition server does not answer at %s: %w", target, err)
			return last
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			last = fmt.Errorf("the ignition server at %s answers %s to a request without a token, not 401", target, resp.Status)
		}
		return last
	}
}
