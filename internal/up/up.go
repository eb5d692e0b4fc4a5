// Package up runs the embedded management plane on one machine (hcp up): the
// management API (package hub), lab hosts on a network of their own when asked
// for, and the hcp operator with its infrastructure service and web console.
// Start runs its steps in order and prints each as it begins, with the time
// since the start, so a user sees what is being waited for:
//
//	p, err := up.Start(ctx, opts, os.Stdout)
//	...
//	defer p.Stop()
//	return p.Wait(ctx)
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/agent"
	agentctl "github.com/hcp-dev/hcp/internal/controller/agent"
	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/labnet"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/runtime/local"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// DefaultInfraPort is the infrastructure service's port when it is free.
const DefaultInfraPort = 8088

// DefaultConsolePort is the web console's port when it is free.
const DefaultConsolePort = 8443

// fieldOwner owns what hcp up applies itself (the lab hosts' InfraEnv).
const fieldOwner = "hcp-up"

// Options configure a management plane.
type Options struct {
	DataDir      string
	ReleaseDir   string
	ReleaseImage string
	Port         int
	MetricsAddr  string
	HealthAddr   string
	Verbosity    int
	// InfraPort and InfraHost are where the infrastructure service listens and
	// how hosts reach it; InfraHostSet says the user chose InfraHost (else lab
	// hosts reach it on their network's gateway).
	InfraPort    int
	InfraHost    string
	InfraHostSet bool
	// Agent settings of the infrastructure service.
	AgentPollInterval      time.Duration
	AgentDisconnectTimeout time.Duration
	AgentMinCPUCores       int64
	AgentMinMemory         string
	AgentMinDisk           string
	// Agents runs that many lab hosts (discovery agents) on this machine.
	Agents          int
	AgentsNamespace string
	// SimulatedNodes makes lab hosts simulated nodes (no container runtime),
	// for scale tests; by default they run real kubelets and containerd.
	SimulatedNodes bool
	// ManagementNodes joins that many lab hosts to the management plane as
	// real nodes for hosted control planes (zones rack1..rack3).
	ManagementNodes int
	// Operator is where the hcp operator runs: OperatorInProcess (in hcp up)
	// or OperatorNone (none until one is installed with hcp install; the
	// management nodes' images are served all the same).
	Operator string
	// InsecureRegistries are registries (host[:port]) management nodes pull
	// from without verifying them, e.g. where hcp release mirror pushed.
	InsecureRegistries []string
	// ConsolePort and ConsoleHost are where the web console listens (port -1
	// turns it off).
	ConsolePort int
	ConsoleHost string
}

// Where the operator runs.
const (
	OperatorInProcess = "in-process"
	OperatorNone      = "none"
)

// Defaults are the options hcp up runs with when no flag is given.
func Defaults() Options {
	return Options{DataDir: defaultDataDir(), ReleaseDir: release.DefaultDir(), InfraHost: "127.0.0.1", ConsoleHost: "127.0.0.1",
		MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0", AgentsNamespace: "clusters-example", Operator: OperatorInProcess,
		AgentPollInterval: 10 * time.Second, AgentDisconnectTimeout: 3 * time.Minute,
		AgentMinCPUCores: agentctl.DefaultRequirements.CPUCores, AgentMinMemory: "8Gi", AgentMinDisk: "100G"}
}

func defaultDataDir() string {
	if d := os.Getenv("HCP_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".hcp"
	}
	return filepath.Join(home, ".hcp")
}

// Plane is a running management plane.
type Plane struct {
	opts    Options
	out     io.Writer
	log     logr.Logger
	started time.Time

	rel     *release.Release
	logFile *os.File
	hub     *hub.Hub
	lab     *labnet.Net
	hosts   []*supervisor.Process
	// opErr receives the operator's end; stopOperator ends it.
	opErr        chan error
	stopOperator context.CancelFunc
	// stopRegistry ends the image registry served without an operator.
	stopRegistry func()
	// ready: the ready line is printed.
	ready atomic.Bool

	// metricsPicked and healthPicked: hcp up chose those ports (the user
	// asked for port 0), so it may choose others.
	metricsPicked, healthPicked bool

	infraPort   int
	consoleURL  string
	consoleOpts operator.ConsoleOptions
	req         agentctl.Requirements
}

// Start brings the management plane up, step by step, and returns once the
// operator is ready (and lab hosts, if asked for, run). On an error nothing it
// started is left running.
func Start(ctx context.Context, o Options, out io.Writer) (_ *Plane, err error) {
	p := &Plane{opts: o, out: out, started: time.Now()}
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.logFile, err = openLog(p.opts.DataDir); err != nil {
		return nil, err
	}
	p.log = p.logger()
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	fmt.Fprintf(out, "Starting the hcp management plane (release %s) in %s\n", p.rel.Name, p.opts.DataDir)
	operatorStep := p.startOperator
	if o.Operator == OperatorNone {
		operatorStep = p.serveImages
	}
	steps := []func(context.Context) error{p.startHub, p.startLabNetwork, p.choosePorts, operatorStep, p.startManagementNodes}
	if o.ManagementNodes > 0 {
		// The management API listens on the lab network's gateway for its
		// nodes: the network comes first.
		steps[0], steps[1] = p.startLabNetwork, p.startHub
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	p.banner()
	p.ready.Store(true)
	if o.Agents > 0 {
		p.step("lab hosts")
		scheme, err := operator.Scheme()
		if err != nil {
			return nil, err
		}
		c, err := client.New(p.hub.RESTConfig(), client.Options{Scheme: scheme})
		if err != nil {
			return nil, err
		}
		p.hosts, err = startLabHosts(ctx, c, labHosts{agentBinary: agentBinary(), dataDir: p.opts.DataDir, namespace: p.opts.AgentsNamespace,
			n: p.opts.Agents, lab: p.lab, simulated: p.opts.SimulatedNodes, payloadDir: p.rel.Dir}, p.log.WithName("lab"), out)
		if err != nil {
			return nil, fmt.Errorf("lab hosts: %w", err)
		}
	}
	return p, nil
}

// step tells the user which step begins, and when.
func (p *Plane) step(name string) {
	fmt.Fprintf(p.out, "  %-26s %5.1fs\n", name, time.Since(p.started).Seconds())
}

// hubStep is step for the hub's components, which may go on starting after
// the ready line: from then on, the log tells.
func (p *Plane) hubStep(name string) {
	if p.ready.Load() {
		p.log.Info("starting", "component", name, "at", time.Since(p.started).Round(100*time.Millisecond))
		return
	}
	p.step(name)
}

// check validates the options and finds the release payload.
func (p *Plane) check() error {
	o := &p.opts
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--port %d: must be between 1 and 65535, or 0 to choose one", o.Port)
	}
	var err error
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	p.metricsPicked, p.healthPicked = strings.HasSuffix(o.MetricsAddr, ":0"), strings.HasSuffix(o.HealthAddr, ":0")
	if o.MetricsAddr, err = pickPort("--metrics-bind-address", o.MetricsAddr); err != nil {
		return err
	}
	if o.HealthAddr, err = pickPort("--health-probe-bind-address", o.HealthAddr); err != nil {
		return err
	}
	if p.req, err = o.requirements(); err != nil {
		return err
	}
	if o.AgentPollInterval < time.Second || o.AgentDisconnectTimeout <= o.AgentPollInterval {
		return fmt.Errorf("--agent-poll-interval must be at least 1s and shorter than --agent-disconnect-timeout (got %s and %s)", o.AgentPollInterval, o.AgentDisconnectTimeout)
	}
	if o.Agents < 0 || o.Agents > 200 {
		return fmt.Errorf("--agents %d: must be between 0 and 200", o.Agents)
	}
	if o.ManagementNodes < 0 || o.ManagementNodes > maxManagementNodes {
		return fmt.Errorf("--management-nodes %d: must be between 0 and %d", o.ManagementNodes, maxManagementNodes)
	}
	if o.ManagementNodes > 0 && o.SimulatedNodes {
		return fmt.Errorf("--management-nodes runs real nodes; it cannot be combined with --simulated-nodes")
	}
	switch o.Operator {
	case OperatorInProcess:
	case OperatorNone:
		if o.ManagementNodes == 0 {
			return fmt.Errorf("--operator none: an operator installed with hcp install runs as a pod on management nodes; add --management-nodes 1 or more")
		}
		if o.Agents > 0 {
			return fmt.Errorf("--operator none: lab hosts register with the operator's infrastructure service; drop --agents, or run the operator in hcp up")
		}
		// The console is part of the operator.
		o.ConsolePort = -1
	default:
		return fmt.Errorf("--operator %q: must be %q (hcp up runs it) or %q (install it with hcp install)", o.Operator, OperatorInProcess, OperatorNone)
	}
	if len(o.InsecureRegistries) > 0 && o.ManagementNodes == 0 {
		return fmt.Errorf("--insecure-registry: only management nodes pull from it; add --management-nodes")
	}
	for _, r := range o.InsecureRegistries {
		if problem := ignition.CheckInsecureRegistry(r); problem != "" {
			return fmt.Errorf("--insecure-registry %q: %s, e.g. 192.0.2.10:5000", r, problem)
		}
	}
	if o.InfraPort < 0 || o.InfraPort > 65535 {
		return fmt.Errorf("--infra-port %d: must be between 1 and 65535, or 0 to choose one", o.InfraPort)
	}
	if o.ConsolePort < -1 || o.ConsolePort > 65535 {
		return fmt.Errorf("--console-port %d: must be between 1 and 65535, 0 to choose one, or -1 for no console", o.ConsolePort)
	}
	if net.ParseIP(o.ConsoleHost) == nil {
		return fmt.Errorf("--console-address %q: must be an IP address of this machine, e.g. 127.0.0.1 or 0.0.0.0", o.ConsoleHost)
	}
	store := release.Store{Dir: o.ReleaseDir}
	if o.ReleaseImage == "" {
		p.rel, err = store.Default()
	} else {
		p.rel, err = store.Resolve(o.ReleaseImage)
	}
	if err != nil {
		return fmt.Errorf("release payload: %w (set --release-dir or HCP_RELEASE_DIR to a directory built by make release)", err)
	}
	return nil
}

// logger logs to <data-dir>/logs/hcp-up.log, and warnings and errors (with
// -v, everything) to the terminal too.
func (p *Plane) logger() logr.Logger {
	var logOut io.Writer = &severityTee{file: p.logFile, terminal: os.Stderr}
	if p.opts.Verbosity > 0 {
		logOut = io.MultiWriter(p.logFile, os.Stderr)
	}
	log := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(p.opts.Verbosity), textlogger.Output(logOut)))
	klog.SetLogger(log)
	ctrl.SetLogger(log)
	return log
}

// startHub starts etcd, kube-apiserver and kube-controller-manager and puts
// the CRDs in.
func (p *Plane) startHub(ctx context.Context) (err error) {
	nodeAddress := ""
	if p.opts.ManagementNodes > 0 {
		nodeAddress = p.lab.Gateway()
	}
	p.hub, err = hub.Start(ctx, hub.Options{
		NodeAddress: nodeAddress,
		DataDir:     p.opts.DataDir,
		Release:     p.rel,
		Port:        p.opts.Port,
		Log:         p.log.WithName("hub"),
		Progress:    p.hubStep,
		Notice:      func(msg string) { fmt.Fprintln(p.out, "  "+msg) },
	})
	return err
}

// startLabNetwork gives lab hosts a network of their own, when there are any
// and this machine allows it.
func (p *Plane) startLabNetwork(context.Context) error {
	if p.opts.Agents == 0 && p.opts.ManagementNodes == 0 {
		return nil
	}
	if !labnet.Available() {
		if p.opts.ManagementNodes > 0 {
			return fmt.Errorf("--management-nodes runs real nodes, which need network namespaces of their own (run as root with ip installed)")
		}
		if !p.opts.SimulatedNodes {
			return fmt.Errorf("lab hosts run real nodes, which need network namespaces of their own (run as root with ip installed), or pass --simulated-nodes")
		}
		fmt.Fprintln(p.out, "  network namespaces are not available (root and ip are needed): lab hosts share this machine's network")
		return nil
	}
	if p.hub == nil && hub.Running(p.opts.DataDir) {
		// The network comes before the hub takes the data directory's lock
		// (management nodes): it must not be another hcp up's.
		return fmt.Errorf("data directory %s is in use by another hcp up; stop it first or choose another --data-dir", p.opts.DataDir)
	}
	p.step("lab network")
	for _, gone := range labnet.Reclaim() {
		// Its nodes' containers ran on in their namespaces, which are gone
		// now: end them.
		killed := agent.StopNodesUnder(gone.DataDir)
		fmt.Fprintf(p.out, "  removed the lab network %s (%s) of an hcp up that is gone, and %d processes of its nodes\n", gone.Bridge, gone.DataDir, killed)
	}
	lab := labnet.New(p.opts.DataDir)
	if err := lab.Up(); err != nil {
		return fmt.Errorf("lab network: %w", err)
	}
	p.lab = lab
	if !p.opts.InfraHostSet {
		p.opts.InfraHost = lab.Gateway()
	}
	return nil
}

// choosePorts picks the infrastructure service's and the console's ports and
// warns of what would keep hosted control planes from starting.
func (p *Plane) choosePorts(context.Context) error {
	var err error
	p.infraPort = p.opts.InfraPort
	if p.infraPort == 0 {
		if p.infraPort, err = p.hub.Port("infra", "infrastructure service", DefaultInfraPort); err != nil {
			return err
		}
	}
	p.consoleURL = "off (--console-port -1)"
	if p.opts.ConsolePort >= 0 {
		port := p.opts.ConsolePort
		if port == 0 {
			if port, err = p.hub.Port("console", "web console", DefaultConsolePort); err != nil {
				return err
			}
		}
		apiAddress := p.HostAddress()
		host := p.opts.ConsoleHost
		p.consoleOpts = operator.ConsoleOptions{Addr: net.JoinHostPort(host, strconv.Itoa(port)), CertDir: p.opts.DataDir,
			Hosts: []string{host}, APIServerAddress: apiAddress}
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		ca := filepath.Join(p.opts.DataDir, "console-ca.crt")
		p.consoleURL = "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "   (log in with the kubeconfig below or a token)\n" +
			"               its CA is " + ca + "; to trust it in Chromium and Chrome on Linux once:\n" +
			"               certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n hcp-console -i " + ca + "   (package libnss3-tools)"
	}
	if busy := local.WildcardBusyPorts(); len(busy) > 0 {
		fmt.Fprintf(p.out, "  warning: another program listens on every address on port %v; hosted control planes need those ports on their loopback addresses and cannot start until it stops\n", busy)
	}
	if p.req != agentctl.DefaultRequirements {
		fmt.Fprintf(p.out, "  worker host requirements lowered/changed for this lab: %d CPU cores, %s memory, %s disk\n", p.req.CPUCores, p.opts.AgentMinMemory, p.opts.AgentMinDisk)
	}
	return nil
}

func (p *Plane) infraURL() string {
	return "https://" + net.JoinHostPort(p.opts.InfraHost, strconv.Itoa(p.infraPort))
}

// startOperator runs the operator in this process and waits until it leads
// and is ready.
func (p *Plane) startOperator(ctx context.Context) error {
	p.step("operator")
	mc, err := client.New(p.hub.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := p.runOperator(ctx, mc)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") || !(p.metricsPicked || p.healthPicked) {
			if err != nil {
				return err
			}
			break
		}
		// A port chosen for the operator's metrics or health endpoint was
		// taken before it could listen: choose again.
		p.stopOperator()
		<-p.opErr
		p.stopOperator = nil
		for _, a := range []struct {
			picked bool
			flag   string
			addr   *string
		}{{p.metricsPicked, "--metrics-bind-address", &p.opts.MetricsAddr}, {p.healthPicked, "--health-probe-bind-address", &p.opts.HealthAddr}} {
			if a.picked {
				host, _, _ := net.SplitHostPort(*a.addr)
				if *a.addr, err = pickPort(a.flag, net.JoinHostPort(host, "0")); err != nil {
					return err
				}
			}
		}
	}
	return p.waitHub(ctx)
}

// waitHub waits for what the management plane's first users need of the
// hub: the API server ready (its post-start hooks have been running all
// along) and, with management nodes, the controller manager and the
// scheduler their pods need. Control planes of the local runtime need
// neither: kube-controller-manager finishes starting after the ready line,
// and Wait returns if it fails to.
func (p *Plane) waitHub(ctx context.Context) error {
	if p.opts.ManagementNodes > 0 {
		return p.hub.WaitReady(ctx)
	}
	return p.hub.WaitAPIReady(ctx)
}

// runOperator starts the operator in this process and waits until it is ready.
func (p *Plane) runOperator(ctx context.Context, mc client.Client) error {
	// Only this process can run an operator on this data directory (it holds the
	// directory's lock), so a leader Lease left by a crashed run is stale: drop
	// it rather than wait for it to expire.
	// An operator installed with hcp install is no crashed run: both would
	// reconcile the same clusters.
	installed := &appsv1.Deployment{}
	if err := mc.Get(ctx, client.ObjectKey{Namespace: operator.DefaultNamespace, Name: "hcp-operator"}, installed); err == nil {
		return fmt.Errorf("an operator installed with hcp install runs on this management plane (Deployment %s/hcp-operator); start hcp up with --operator none, or remove it first: kubectl -n %s delete deployment hcp-operator",
			operator.DefaultNamespace, operator.DefaultNamespace)
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("looking for an installed operator: %w", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: hub.Namespace, Name: operator.LeaderElectionID}}
	if err := mc.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the stale operator lease: %w", err)
	}
	p.opErr = make(chan error, 1)
	opCtx, stopOperator := context.WithCancel(ctx)
	p.stopOperator = stopOperator
	runtime, repository := operator.RuntimeLocal, ""
	if p.opts.ManagementNodes > 0 {
		// Control planes run as pods on the management nodes, which pull
		// hcp's images from the lab registry.
		runtime, repository = operator.RuntimeKubernetes, images.DefaultRepository
	}
	go func() {
		p.opErr <- operator.Run(opCtx, operator.Options{
			Config:                  p.hub.RESTConfig(),
			Runtime:                 runtime,
			ImageRepository:         repository,
			OutsideCluster:          p.opts.ManagementNodes > 0,
			MetricsAddr:             p.opts.MetricsAddr,
			HealthAddr:              p.opts.HealthAddr,
			LeaderElection:          true,
			LeaderElectionNamespace: hub.Namespace,
			Log:                     p.log.WithName("operator"),
			DataDir:                 p.opts.DataDir,
			ReleaseDir:              p.opts.ReleaseDir,
			StopControlPlanesOnExit: true,
			Infra: operator.InfraOptions{
				Addr:            net.JoinHostPort("0.0.0.0", strconv.Itoa(p.infraPort)),
				URL:             p.infraURL(),
				AgentBinary:     agentBinary(),
				PollInterval:    p.opts.AgentPollInterval,
				DisconnectAfter: p.opts.AgentDisconnectTimeout,
				Requirements:    p.req,
				// Management nodes pull hcp's images from the same registry.
				ManagementImages: p.opts.ManagementNodes > 0,
			},
			Console: p.consoleOpts,
		})
	}()
	return p.waitOperatorReady(ctx, mc)
}

// waitOperatorReady waits until the operator is ready and leads: it has
// published the releases it serves, which hcp create checks.
func (p *Plane) waitOperatorReady(ctx context.Context, c client.Reader) error {
	check := probe.New(nil, nil)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return probe.Until(ctx, 50*time.Millisecond, "the operator to be ready", func(ctx context.Context) error {
		select {
		case err := <-p.opErr:
			p.opErr <- err
			return probe.Final(fmt.Errorf("operator stopped: %v", err))
		default:
		}
		if err := check.Check(ctx, "http://"+p.opts.HealthAddr+"/readyz"); err != nil {
			return err
		}
		_, err := release.Served(ctx, c)
		return err
	})
}

func (p *Plane) banner() {
	operatorLine := fmt.Sprintf("http://%s/readyz   metrics: http://%s/metrics\n  infrastructure service: %s", p.opts.HealthAddr, p.opts.MetricsAddr, p.infraURL())
	if p.opts.Operator == OperatorNone {
		operatorLine = "none (--operator none); install one: hcp release mirror --to <registry>/<repository>, then hcp install\n" +
			"  image registry: " + p.infraURL() + " (management nodes pull hcp's images here)"
		p.consoleURL = "off (the installed operator serves it: Service hcp-console)"
	}
	fmt.Fprintf(p.out, `
The management plane is ready (%.1fs).
  API server:  %s
  operator:    %s
  web console: %s
  logs:        %s   (hcp up's own: hcp-up.log; -v 1 shows it here too)

Use it with kubectl and hcp (in another terminal):
%s  export KUBECONFIG=%s
  kubectl get crd

Press Ctrl-C to stop; state stays in %s and comes back with the next hcp up.
`, time.Since(p.started).Seconds(), p.hub.Server(), operatorLine, p.consoleURL,
		p.hub.LogDir(), PathHint(p.rel), p.hub.KubeconfigPath(), p.opts.DataDir)
}

// Wait runs until ctx ends (nil), the operator stops (its error), or a
// component of the hub fails to start (its error).
func (p *Plane) Wait(ctx context.Context) error {
	hubReady := p.hub.Ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-p.opErr:
			p.opErr <- err
			if err != nil {
				return fmt.Errorf("operator stopped: %w", err)
			}
			return errors.New("operator stopped")
		case <-hubReady:
			if err := p.hub.WaitReady(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			hubReady = nil
		}
	}
}

// Stop ends everything Start started, in reverse order; the state stays in
// the data directory.
func (p *Plane) Stop() {
	fmt.Fprintln(p.out, "Stopping the management plane...")
	p.stop()
	fmt.Fprintln(p.out, "Stopped. State is kept in", p.opts.DataDir)
}

func (p *Plane) stop() {
	for _, h := range p.hosts {
		h.Stop(5 * time.Second)
	}
	// Their network goes with the lab network: the nodes' containers stop
	// too, and run again with the next hcp up.
	if len(p.hosts) > 0 && !p.opts.SimulatedNodes {
		for i := range p.opts.Agents {
			if err := agent.StopNode(labHostRoot(p.opts.DataDir, i), labHostName(i)); err != nil {
				p.log.Error(err, "stopping a lab host's node", "host", labHostName(i))
			}
		}
	}
	p.hosts = nil
	if p.lab != nil {
		p.stopManagementNodes()
	}
	if p.stopOperator != nil {
		p.stopOperator()
		<-p.opErr
		p.stopOperator = nil
	}
	if p.stopRegistry != nil {
		p.stopRegistry()
		p.stopRegistry = nil
	}
	if p.lab != nil {
		p.lab.Down(p.opts.Agents + p.opts.ManagementNodes)
		p.lab = nil
	}
	if p.hub != nil {
		p.hub.Stop()
		p.hub = nil
	}
	if p.logFile != nil {
		_ = p.logFile.Close()
		p.logFile = nil
	}
}

// KubeconfigPath is the management plane's admin kubeconfig.
func (p *Plane) KubeconfigPath() string { return filepath.Join(p.opts.DataDir, hub.KubeconfigFile) }

// Release is the release payload the management plane runs.
func (p *Plane) Release() *release.Release { return p.rel }

// DataDir is the management plane's data directory.
func (p *Plane) DataDir() string { return p.opts.DataDir }

// HostAddress is where lab hosts reach hosted API servers' published
// services: the first management node's address when control planes run on
// management nodes (their NodePorts are served there), else the lab
// network's gateway, or 127.0.0.1 without one.
func (p *Plane) HostAddress() string {
	if p.lab != nil && p.opts.ManagementNodes > 0 {
		return p.lab.Address(p.managementLabIndex(0))
	}
	if p.lab != nil {
		return p.lab.Gateway()
	}
	return "127.0.0.1"
}

// pickPort turns a host:0 address into one with a free port, so it can be printed.
func pickPort(flag, addr string) (string, error) {
	if addr == "0" {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: must be host:port, e.g. 127.0.0.1:8080, or 0 to turn it off", flag, addr)
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	defer l.Close()
	return net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)), nil
}

// requirements are the worker host requirements the options set.
func (o Options) requirements() (agentctl.Requirements, error) {
	mem, err := resource.ParseQuantity(o.AgentMinMemory)
	if err != nil {
		return agentctl.Requirements{}, fmt.Errorf("--agent-min-memory %q: not a size (e.g. 8Gi)", o.AgentMinMemory)
	}
	disk, err := resource.ParseQuantity(o.AgentMinDisk)
	if err != nil {
		return agentctl.Requirements{}, fmt.Errorf("--agent-min-disk %q: not a size (e.g. 100G)", o.AgentMinDisk)
	}
	if o.AgentMinCPUCores < 0 || mem.Sign() < 0 || disk.Sign() < 0 {
		return agentctl.Requirements{}, fmt.Errorf("--agent-min-*: requirements must not be negative")
	}
	return agentctl.Requirements{CPUCores: o.AgentMinCPUCores, MemoryBytes: mem.Value(), DiskBytes: disk.Value()}, nil
}

// agentBinary is hcp-agent beside the running executable.
func agentBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "hcp-agent"
	}
	return filepath.Join(filepath.Dir(exe), "hcp-agent")
}

// PathHint is the export PATH line that puts this hcp and the release's
// kubectl first on PATH, when the hints would otherwise not run as printed.
func PathHint(rel *release.Release) string {
	var dirs []string
	exe, err := os.Executable()
	if err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		onPath, err := exec.LookPath("hcp")
		if err == nil {
			onPath, err = filepath.EvalSymlinks(onPath)
		}
		if err != nil || onPath != exe {
			dirs = append(dirs, filepath.Dir(exe))
		}
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		dirs = append(dirs, rel.Dir)
	}
	if len(dirs) == 0 {
		return ""
	}
	return "  export PATH=" + strings.Join(dirs, ":") + ":$PATH\n"
}
