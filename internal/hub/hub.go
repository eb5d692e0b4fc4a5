// Package hub is the embedded management plane that hcp up runs on one machine:
// etcd, kube-apiserver and kube-controller-manager from the release payload, on
// loopback with TLS and RBAC, with hcp's and Cluster API's CRDs installed and a
// default StorageClass. Its state lives in a data directory and survives
// restarts, including a crash.
//
// A test or program starts one with Start and ends it with Stop:
//
//	h, err := hub.Start(ctx, hub.Options{DataDir: dir, Release: rel})
//	...
//	defer h.Stop()
//	c, err := client.New(h.RESTConfig(), client.Options{})
//
// Start returns once the API serves the CRDs; WaitReady waits for the rest
// (the API server's readiness, kube-controller-manager).
package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/hcp-dev/hcp/internal/kubeconfig"
	"github.com/hcp-dev/hcp/internal/pki"
	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

const (
	// ServiceCIDR is the management plane's service network.
	ServiceCIDR = "10.96.0.0/16"
	serviceCIDR = ServiceCIDR
	serviceIP   = "10.96.0.1"
	// KubeletClientUser is the API server's user towards management nodes'
	// kubelets.
	KubeletClientUser = "kube-apiserver-kubelet-client"

	// KubeconfigFile is the admin kubeconfig's name in the data directory.
	KubeconfigFile = "kubeconfig"

	startTimeout = 2 * time.Minute
)

// Options configure a management plane.
type Options struct {
	// DataDir holds all state: etcd data, certificates, logs, kubeconfig.
	DataDir string
	// Release provides the etcd, kube-apiserver and kube-controller-manager binaries.
	Release *release.Release
	// Port is the management API port; 0 means the one used last time, else
	// DefaultPort when free, else any free port.
	Port int
	// Log receives the management plane's own log lines.
	Log logr.Logger
	// Progress, when set, is told each step as it starts.
	Progress func(step string)
	// Notice, when set, is told what a user should know, such as a default
	// port that was busy and the one chosen instead.
	Notice func(msg string)
	// NodeAddress, when set, is the address of this machine that management
	// nodes reach the API at (the lab network's gateway). Then the API
	// server listens on every address and advertises this one, authorizes
	// kubelets as nodes and accepts bootstrap tokens, the controller manager
	// gives nodes pod ranges of ClusterCIDR, and a scheduler runs.
	NodeAddress string
}

// Management nodes' networks.
const (
	// ClusterCIDR is the management nodes' pod network.
	ClusterCIDR = "10.244.0.0/16"
	// ClusterDNS is the management cluster's DNS Service address.
	ClusterDNS = "10.96.0.10"
)

// Hub is a running management plane.
type Hub struct {
	opts   Options
	state  state
	certs  *certs
	lock   *os.File
	cancel context.CancelFunc
	rest   *rest.Config

	mu    sync.Mutex
	procs []*supervisor.Process

	// The wait for readiness, which outlives Start: apiReady closes once the
	// API server is ready (apiErr says if not), ready once the controllers
	// run too (readyErr).
	cancelReady context.CancelFunc
	apiReady    chan struct{}
	apiErr      error
	ready       chan struct{}
	readyErr    error
}

// Start brings the management plane up and returns once its API serves hcp's
// CRDs; the API server may still run its post-start hooks and
// kube-controller-manager may not run yet (WaitReady waits for both). On
// error nothing it started is left running.
func Start(ctx context.Context, opts Options) (_ *Hub, err error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("data directory is empty")
	}
	if opts.Release == nil {
		return nil, fmt.Errorf("no release payload given")
	}
	if opts.NodeAddress != "" && net.ParseIP(opts.NodeAddress) == nil {
		return nil, fmt.Errorf("node address %q is not an IP address", opts.NodeAddress)
	}
	if opts.Notice == nil {
		opts.Notice = func(string) {}
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	for _, dir := range []string{opts.DataDir, filepath.Join(opts.DataDir, "logs"), filepath.Join(opts.DataDir, "volumes")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	lock, err := lockDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	procCtx, cancel := context.WithCancel(context.Background())
	h := &Hub{opts: opts, lock: lock, cancel: cancel}
	defer func() {
		if err != nil {
			h.Stop()
		}
	}()

	statePath := filepath.Join(opts.DataDir, "hub.json")
	if h.state, err = loadState(statePath); err != nil {
		return nil, err
	}
	if err = h.state.choosePorts(opts.Port, opts.NodeAddress != ""); err != nil {
		return nil, err
	}
	for _, msg := range h.state.busy {
		opts.Notice(msg)
	}
	if err = h.state.save(statePath); err != nil {
		return nil, err
	}
	opts.Progress("certificates")
	if h.certs, err = ensureCerts(filepath.Join(opts.DataDir, "pki"), net.ParseIP(opts.NodeAddress)); err != nil {
		return nil, err
	}
	if err = h.writeKubeconfigs(); err != nil {
		return nil, err
	}
	ctx, cancelWait := context.WithTimeout(ctx, startTimeout)
	defer cancelWait()

	check, err := h.prober()
	if err != nil {
		return nil, err
	}
	etcd := &component{name: release.Etcd, args: h.etcdArgs, url: h.etcdHealthURL}
	// The CRDs go in as soon as the API server serves them, while it still
	// runs its post-start hooks.
	api := &component{name: release.KubeAPIServer, args: h.apiserverArgs, url: h.crdsURL, repick: h.repickAPI}
	kcm := &component{name: release.KubeControllerManager, args: h.kcmArgs, url: h.kcmHealthURL, repick: h.repickKCM}
	// etcd moved: the API server, started with its old address, starts again.
	etcd.repick = func() error {
		if err := h.repickEtcd(); err != nil {
			return err
		}
		h.stop(api.name)
		return h.start(procCtx, api)
	}
	// kube-apiserver starts right after etcd, not once etcd is healthy: it
	// connects as soon as etcd listens, and starting both at once is what the
	// bare pair does.
	opts.Progress("etcd")
	if err = h.start(procCtx, etcd); err != nil {
		return nil, err
	}
	opts.Progress("kube-apiserver")
	if err = h.start(procCtx, api); err != nil {
		return nil, err
	}
	if err = h.await(ctx, procCtx, check, etcd); err != nil {
		return nil, err
	}
	if err = h.await(ctx, procCtx, check, api); err != nil {
		return nil, err
	}
	opts.Progress("CRDs and defaults")
	if err = bootstrap(ctx, h.RESTConfig(), check, h.volumeDir()); err != nil {
		return nil, err
	}
	// The rest goes on after Start returns (WaitReady waits for it): the API
	// server finishes its post-start hooks, then kube-controller-manager
	// starts, so it does not compete for the CPU with the API server and the
	// CRDs. Nothing a client of the API does at once needs it.
	readyCtx, cancelReady := context.WithTimeout(procCtx, startTimeout)
	h.cancelReady, h.apiReady, h.ready = cancelReady, make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.ready)
		h.apiErr = h.waitReady(readyCtx, check, api.name, h.readyzURL, api.from)
		close(h.apiReady)
		if h.readyErr = h.apiErr; h.readyErr != nil {
			return
		}
		opts.Progress("kube-controller-manager")
		if h.readyErr = h.start(procCtx, kcm); h.readyErr != nil {
			return
		}
		if h.readyErr = h.await(readyCtx, procCtx, check, kcm); h.readyErr != nil || opts.NodeAddress == "" {
			return
		}
		// Pods on management nodes need a scheduler.
		sched := &component{name: release.KubeScheduler, args: h.schedulerArgs, url: h.schedulerHealthURL, repick: h.repickScheduler}
		opts.Progress("kube-scheduler")
		if h.readyErr = h.start(procCtx, sched); h.readyErr != nil {
			return
		}
		h.readyErr = h.await(readyCtx, procCtx, check, sched)
	}()
	return h, nil
}

// WaitReady waits for what Start leaves starting: the API server's readiness
// (/readyz) and kube-controller-manager.
func (h *Hub) WaitReady(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.ready:
		return h.readyErr
	}
}

// WaitAPIReady waits for the API server's readiness (/readyz: its post-start
// hooks have run, the bootstrap RBAC policy is in), not for the controllers
// WaitReady also waits for.
func (h *Hub) WaitAPIReady(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.apiReady:
		return h.apiErr
	}
}

// Ready is closed once what Start left starting runs, or failed to start
// (WaitReady says which).
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// errPortInUse is a component failing to listen on a port hcp chose for it.
var errPortInUse = errors.New("a port it was given is in use by another program")

// component is a process of the management plane: how to run it, where it
// answers when ready, and how to choose new ports for it when one it was given
// is taken.
type component struct {
	name   string
	args   func() []string
	url    func() string
	repick func() error
	// from is the size of its log when it last started.
	from int64
}

// start runs a component.
func (h *Hub) start(procCtx context.Context, c *component) error {
	c.from = logSize(filepath.Join(h.LogDir(), c.name+".log"))
	return h.run(procCtx, c.name, c.args())
}

// await waits until a started component answers ready. One that finds a port
// hcp chose for it taken gets new ports from its repick and starts again.
func (h *Hub) await(ctx, procCtx context.Context, check *probe.Client, c *component) error {
	for attempt := 1; ; attempt++ {
		err := h.waitReady(ctx, check, c.name, c.url, c.from)
		if !errors.Is(err, errPortInUse) {
			return err
		}
		h.stop(c.name)
		if attempt == 3 {
			return h.withLog(c.name, fmt.Errorf("%s could not listen: %w", c.name, err))
		}
		h.opts.Log.Info("a port was taken before the component could listen on it; choosing another", "component", c.name)
		if err := c.repick(); err != nil {
			return err
		}
		if err := h.start(procCtx, c); err != nil {
			return err
		}
	}
}

// waitReady waits for url to be ready, or for the component's log (after
// offset from) to say that its port is taken.
func (h *Hub) waitReady(ctx context.Context, check *probe.Client, component string, url func() string, from int64) error {
	logPath := filepath.Join(h.LogDir(), component+".log")
	err := probe.Until(ctx, 100*time.Millisecond, component, func(ctx context.Context) error {
		if portTaken(logPath, from) {
			return probe.Final(errPortInUse)
		}
		return check.Check(ctx, url())
	})
	if err != nil && !errors.Is(err, errPortInUse) {
		return h.withLog(component, err)
	}
	return err
}

// stop stops a component's process.
func (h *Hub) stop(name string) {
	h.mu.Lock()
	var p *supervisor.Process
	for i, q := range h.procs {
		if q.Name() == name {
			p = q
			h.procs = append(h.procs[:i:i], h.procs[i+1:]...)
			break
		}
	}
	h.mu.Unlock()
	if p != nil {
		p.Stop(15 * time.Second)
	}
}

func (h *Hub) repickEtcd() (err error) {
	if h.state.EtcdClientPort, err = ports.Free("127.0.0.1"); err != nil {
		return err
	}
	if h.state.EtcdPeerPort, err = ports.Free("127.0.0.1"); err != nil {
		return err
	}
	return h.saveState()
}

func (h *Hub) repickAPI() (err error) {
	if h.opts.Port != 0 {
		return fmt.Errorf("port %d for the management API is in use by another program; choose another with --port", h.opts.Port)
	}
	if h.state.APIPort, err = ports.Free("127.0.0.1"); err != nil {
		return err
	}
	if err = h.saveState(); err != nil {
		return err
	}
	return h.writeKubeconfigs()
}

func (h *Hub) repickKCM() (err error) {
	if h.state.KCMPort, err = ports.Free("127.0.0.1"); err != nil {
		return err
	}
	return h.saveState()
}

func (h *Hub) repickScheduler() (err error) {
	if h.state.SchedulerPort, err = ports.Free("127.0.0.1"); err != nil {
		return err
	}
	return h.saveState()
}

func (h *Hub) saveState() error { return h.state.save(filepath.Join(h.opts.DataDir, "hub.json")) }

// portTaken says whether the log, after offset from, reports a failed listen.
func portTaken(logPath string, from int64) bool {
	f, err := os.Open(logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, from, 1<<24))
	return err == nil && bytes.Contains(b, []byte("address already in use"))
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Stop ends every process, last started first, and releases the data directory.
func (h *Hub) Stop() {
	if h.cancelReady != nil {
		h.cancelReady()
		<-h.ready
	}
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(15 * time.Second)
	}
	h.cancel()
	if h.lock != nil {
		_ = h.lock.Close()
		h.lock = nil
	}
}

// Port returns a port for a named service of this machine that listens on
// all addresses: the one used last time while it is free, else preferred when
// free, else any free port. It is remembered for the next start.
// what names the service in the notice given when preferred is busy.
func (h *Hub) Port(name, what string, preferred int) (int, error) {
	port := 0
	for _, p := range []int{h.state.Ports[name], preferred} {
		if p != 0 && ports.Listenable("0.0.0.0", p) {
			port = p
			break
		}
	}
	if port == 0 {
		var err error
		if port, err = ports.Free("0.0.0.0"); err != nil {
			return 0, err
		}
		if preferred != 0 {
			h.opts.Notice(fmt.Sprintf("port %d (the %s's default) is busy: using %d", preferred, what, port))
		}
	}
	if h.state.Ports == nil {
		h.state.Ports = map[string]int{}
	}
	h.state.Ports[name] = port
	return port, h.saveState()
}

// Server is the management API's URL.
func (h *Hub) Server() string { return "https://127.0.0.1:" + strconv.Itoa(h.state.APIPort) }

// NodeServer is the management API's URL as management nodes reach it
// (Options.NodeAddress); empty without one.
func (h *Hub) NodeServer() string {
	if h.opts.NodeAddress == "" {
		return ""
	}
	return "https://" + net.JoinHostPort(h.opts.NodeAddress, strconv.Itoa(h.state.APIPort))
}

// CA is the management plane's CA certificate (PEM).
func (h *Hub) CA() []byte { return h.certs.ca.CertPEM }

// KubeconfigPath is the admin kubeconfig file.
func (h *Hub) KubeconfigPath() string { return filepath.Join(h.opts.DataDir, KubeconfigFile) }

// RESTConfig is an admin client configuration.
func (h *Hub) RESTConfig() *rest.Config { return rest.CopyConfig(h.rest) }

// Processes are the running components.
func (h *Hub) Processes() []*supervisor.Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*supervisor.Process(nil), h.procs...)
}

// LogDir holds one log file per component.
func (h *Hub) LogDir() string { return filepath.Join(h.opts.DataDir, "logs") }

func (h *Hub) volumeDir() string { return filepath.Join(h.opts.DataDir, "volumes") }

func (h *Hub) etcdURL() string { return "https://127.0.0.1:" + strconv.Itoa(h.state.EtcdClientPort) }

func (h *Hub) etcdHealthURL() string { return h.etcdURL() + "/health" }

func (h *Hub) readyzURL() string { return h.Server() + "/readyz" }

func (h *Hub) crdsURL() string {
	return h.Server() + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?limit=1"
}

func (h *Hub) schedulerHealthURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(h.state.SchedulerPort) + "/healthz"
}

func (h *Hub) kcmHealthURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(h.state.KCMPort) + "/healthz"
}

func (h *Hub) run(ctx context.Context, component string, args []string) error {
	p, err := supervisor.Start(ctx, supervisor.Spec{
		Name:    component,
		Path:    h.opts.Release.Binary(component),
		Args:    args,
		LogPath: filepath.Join(h.LogDir(), component+".log"),
	}, h.opts.Log)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return nil
}

func (h *Hub) withLog(component string, err error) error {
	return fmt.Errorf("%w; see %s", err, filepath.Join(h.LogDir(), component+".log"))
}

func (h *Hub) prober() (*probe.Client, error) {
	roots, err := pki.CertPool(h.certs.ca.CertPEM)
	if err != nil {
		return nil, err
	}
	admin, err := tls.X509KeyPair(h.certs.admin.CertPEM, h.certs.admin.KeyPEM)
	if err != nil {
		return nil, err
	}
	return probe.New(roots, &admin), nil
}

func (h *Hub) writeKubeconfigs() error {
	admin := kubeconfig.Config{Server: h.Server(), CA: h.certs.ca.CertPEM,
		ClientCert: h.certs.admin.CertPEM, ClientKey: h.certs.admin.KeyPEM, Context: "hcp"}
	h.rest = admin.REST()
	h.rest.QPS, h.rest.Burst = 200, 400
	b, err := admin.Bytes()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(h.KubeconfigPath(), b, 0o600); err != nil {
		return err
	}
	kcm := kubeconfig.Config{Server: h.Server(), CA: h.certs.ca.CertPEM,
		ClientCert: h.certs.kcm.CertPEM, ClientKey: h.certs.kcm.KeyPEM, Context: "kube-controller-manager"}
	if b, err = kcm.Bytes(); err != nil {
		return err
	}
	if err := writeFileAtomic(h.certs.path("kube-controller-manager.kubeconfig"), b, 0o600); err != nil {
		return err
	}
	sched := kubeconfig.Config{Server: h.Server(), CA: h.certs.ca.CertPEM,
		ClientCert: h.certs.scheduler.CertPEM, ClientKey: h.certs.scheduler.KeyPEM, Context: "kube-scheduler"}
	if b, err = sched.Bytes(); err != nil {
		return err
	}
	return writeFileAtomic(h.certs.path("kube-scheduler.kubeconfig"), b, 0o600)
}

func (h *Hub) etcdArgs() []string {
	c := h.certs
	peer := "https://127.0.0.1:" + strconv.Itoa(h.state.EtcdPeerPort)
	return []string{
		"--name=hub",
		"--data-dir=" + filepath.Join(h.opts.DataDir, "etcd"),
		"--listen-client-urls=" + h.etcdURL(),
		"--advertise-client-urls=" + h.etcdURL(),
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=hub=" + peer,
		"--initial-cluster-state=new",
		"--cert-file=" + c.path("etcd.crt"), "--key-file=" + c.path("etcd.key"),
		"--trusted-ca-file=" + c.path("ca.crt"), "--client-cert-auth=true",
		"--peer-cert-file=" + c.path("etcd.crt"), "--peer-key-file=" + c.path("etcd.key"),
		"--peer-trusted-ca-file=" + c.path("ca.crt"), "--peer-client-cert-auth=true",
		"--snapshot-count=10000",
		"--quota-backend-bytes=2147483648",
		"--log-level=warn",
	}
}

func (h *Hub) apiserverArgs() []string {
	c := h.certs
	bind, advertise, reconciler, authz := "127.0.0.1", "127.0.0.1", "none", "RBAC"
	if h.opts.NodeAddress != "" {
		// Management nodes come from the lab network and reach the API (and
		// the kubernetes Service) at the node address.
		bind, advertise, reconciler, authz = "0.0.0.0", h.opts.NodeAddress, "lease", "Node,RBAC"
	}
	args := []string{
		"--bind-address=" + bind,
		"--secure-port=" + strconv.Itoa(h.state.APIPort),
		"--advertise-address=" + advertise,
		"--endpoint-reconciler-type=" + reconciler,
		"--authorization-mode=" + authz,
		"--etcd-servers=" + h.etcdURL(),
		"--etcd-cafile=" + c.path("ca.crt"),
		"--etcd-certfile=" + c.path("apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + c.path("apiserver-etcd-client.key"),
		"--tls-cert-file=" + c.path("apiserver.crt"),
		"--tls-private-key-file=" + c.path("apiserver.key"),
		"--client-ca-file=" + c.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + c.path("sa.pub"),
		"--service-account-signing-key-file=" + c.path("sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(h.opts.DataDir, "kube-apiserver"),
	}
	if h.opts.NodeAddress != "" {
		// Kubelets join with bootstrap tokens, may change only their own
		// Node and pods, and are reached with a client certificate, their
		// serving certificates checked against the CA.
		args = append(args,
			"--enable-admission-plugins=NodeRestriction",
			"--enable-bootstrap-token-auth=true",
			"--kubelet-client-certificate="+c.path("apiserver-kubelet-client.crt"),
			"--kubelet-client-key="+c.path("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority="+c.path("ca.crt"),
			"--kubelet-preferred-address-types=InternalIP,Hostname")
	}
	return args
}

// controllerArgs are what the controller manager and the scheduler share:
// their kubeconfig (<name>.kubeconfig), a loopback port serving with
// <name>-serving's certificate, no leader election, no profiling.
func (h *Hub) controllerArgs(name string, port int) []string {
	c := h.certs
	kc := c.path(name + ".kubeconfig")
	return []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + c.path(name+"-serving.crt"),
		"--tls-private-key-file=" + c.path(name+"-serving.key"),
		"--leader-elect=false",
		"--profiling=false",
	}
}

func (h *Hub) schedulerArgs() []string {
	return h.controllerArgs(release.KubeScheduler, h.state.SchedulerPort)
}

func (h *Hub) kcmArgs() []string {
	c := h.certs
	args := append(h.controllerArgs(release.KubeControllerManager, h.state.KCMPort),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.path("sa.key"),
		"--root-ca-file="+c.path("ca.crt"),
		"--cluster-signing-cert-file="+c.path("ca.crt"),
		"--cluster-signing-key-file="+c.path("ca.key"),
		"--cluster-name=hcp-management")
	if h.opts.NodeAddress == "" {
		return append(args, "--controllers=*")
	}
	// Management nodes get pod ranges; their bootstrap tokens are signed
	// and cleaned up.
	return append(args, "--controllers=*,bootstrapsigner,tokencleaner",
		"--allocate-node-cidrs=true", "--cluster-cidr="+ClusterCIDR, "--service-cluster-ip-range="+serviceCIDR)
}
