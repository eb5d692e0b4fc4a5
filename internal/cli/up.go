package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	agentctl "github.com/hcp-dev/hcp/internal/controller/agent"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/labnet"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/runtime/local"
)

// DefaultInfraPort is the infrastructure service's port when it is free.
const DefaultInfraPort = 8088

// DefaultConsolePort is the web console's port when it is free.
const DefaultConsolePort = 8443

// UpOptions configure hcp up.
type UpOptions struct {
	DataDir      string
	ReleaseDir   string
	ReleaseImage string
	Port         int
	MetricsAddr  string
	HealthAddr   string
	Verbosity    int
	// Example creates the example HostedCluster once the management plane is up.
	Example bool
	// InfraPort and InfraHost are where the infrastructure service listens and
	// how hosts reach it.
	InfraPort int
	InfraHost string
	// Agent settings of the infrastructure service.
	AgentPollInterval      time.Duration
	AgentDisconnectTimeout time.Duration
	AgentMinCPUCores       int64
	AgentMinMemory         string
	AgentMinDisk           string
	// Agents runs that many lab hosts (discovery agents) on this machine.
	Agents          int
	AgentsNamespace string
	// ConsolePort and ConsoleHost are where the web console listens (port -1
	// turns it off).
	ConsolePort int
	ConsoleHost string

	infraHostSet bool
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

func newUpCommand() *cobra.Command {
	o := UpOptions{DataDir: defaultDataDir(), ReleaseDir: release.DefaultDir(), InfraHost: "127.0.0.1", ConsoleHost: "127.0.0.1",
		AgentPollInterval: 10 * time.Second, AgentDisconnectTimeout: 3 * time.Minute,
		AgentMinCPUCores: agentctl.DefaultRequirements.CPUCores, AgentMinMemory: "8Gi", AgentMinDisk: "100G"}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the embedded management plane on this machine (in the foreground)",
		Long: `Run the embedded management plane: etcd, kube-apiserver and kube-controller-manager
from the release payload on loopback with TLS and RBAC, hcp's and Cluster API's CRDs,
a default StorageClass "local", and the hcp operator. State is kept in --data-dir, so
running hcp up again brings back every object. Stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.infraHostSet = cmd.Flags().Changed("infra-host")
			return RunUp(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for all state (etcd data, certificates, logs, kubeconfig)")
	f.StringVar(&o.ReleaseDir, "release-dir", o.ReleaseDir, "directory of release payloads")
	f.StringVar(&o.ReleaseImage, "release-image", "", "release payload the management plane runs (default: the newest in --release-dir)")
	f.IntVar(&o.Port, "port", 0, fmt.Sprintf("management API port on 127.0.0.1 (default: the one used last time, else %d when free, else any free port)", hub.DefaultPort))
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", "127.0.0.1:0", `operator metrics address ("0" turns metrics off; port 0 picks a free port)`)
	f.StringVar(&o.HealthAddr, "health-probe-bind-address", "127.0.0.1:0", `operator /healthz and /readyz address (port 0 picks a free port)`)
	f.IntVarP(&o.Verbosity, "v", "v", 0, "log verbosity; above 0 the log also goes to the terminal (it always goes to <data-dir>/logs/hcp-up.log)")
	f.IntVar(&o.InfraPort, "infra-port", 0, fmt.Sprintf("infrastructure service port (default: the one used last time, else %d when free, else any free port)", DefaultInfraPort))
	f.StringVar(&o.InfraHost, "infra-host", o.InfraHost, "address hosts use to reach the infrastructure service")
	f.IntVar(&o.ConsolePort, "console-port", 0, fmt.Sprintf("web console port (default: the one used last time, else %d when free, else any free port; -1 turns the console off)", DefaultConsolePort))
	f.StringVar(&o.ConsoleHost, "console-address", o.ConsoleHost, "address the web console listens on (0.0.0.0 for every interface)")
	f.DurationVar(&o.AgentPollInterval, "agent-poll-interval", o.AgentPollInterval, "how often discovery agents ask for steps")
	f.DurationVar(&o.AgentDisconnectTimeout, "agent-disconnect-timeout", o.AgentDisconnectTimeout, "how long without a check-in makes a host disconnected")
	f.Int64Var(&o.AgentMinCPUCores, "agent-min-cpu-cores", o.AgentMinCPUCores, "CPU cores a worker host needs")
	f.StringVar(&o.AgentMinMemory, "agent-min-memory", o.AgentMinMemory, "memory a worker host needs")
	f.StringVar(&o.AgentMinDisk, "agent-min-disk", o.AgentMinDisk, "size of the disk a worker host needs")
	f.IntVar(&o.Agents, "agents", 0, "run this many lab hosts: discovery agents on this machine, registered through InfraEnv lab")
	f.StringVar(&o.AgentsNamespace, "agents-namespace", "clusters-example", "namespace of the lab hosts' InfraEnv and Agents")
	f.BoolVar(&o.Example, "example", false, "also create the example hosted cluster (clusters/example, SingleReplica) and wait until it is Available")
	return cmd
}

// RunUp runs the management plane until ctx ends or the process is signalled.
func RunUp(ctx context.Context, o UpOptions, out io.Writer) error {
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--port %d: must be between 1 and 65535, or 0 to choose one", o.Port)
	}
	var err error
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if o.MetricsAddr, err = pickPort("--metrics-bind-address", o.MetricsAddr); err != nil {
		return err
	}
	if o.HealthAddr, err = pickPort("--health-probe-bind-address", o.HealthAddr); err != nil {
		return err
	}
	req, err := o.requirements()
	if err != nil {
		return err
	}
	if o.AgentPollInterval < time.Second || o.AgentDisconnectTimeout <= o.AgentPollInterval {
		return fmt.Errorf("--agent-poll-interval must be at least 1s and shorter than --agent-disconnect-timeout (got %s and %s)", o.AgentPollInterval, o.AgentDisconnectTimeout)
	}
	if o.Agents < 0 || o.Agents > 200 {
		return fmt.Errorf("--agents %d: must be between 0 and 200", o.Agents)
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
	var rel *release.Release
	if o.ReleaseImage == "" {
		rel, err = store.Default()
	} else {
		rel, err = store.Resolve(o.ReleaseImage)
	}
	if err != nil {
		return fmt.Errorf("release payload: %w (set --release-dir or HCP_RELEASE_DIR to a directory built by make release)", err)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logFile, err := openLog(o.DataDir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	var logOut io.Writer = &severityTee{file: logFile, terminal: os.Stderr}
	if o.Verbosity > 0 {
		logOut = io.MultiWriter(logFile, os.Stderr)
	}
	log := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(o.Verbosity), textlogger.Output(logOut)))
	klog.SetLogger(log)
	ctrl.SetLogger(log)

	started := time.Now()
	fmt.Fprintf(out, "Starting the hcp management plane (release %s) in %s\n", rel.Name, o.DataDir)
	h, err := hub.Start(ctx, hub.Options{
		DataDir: o.DataDir,
		Release: rel,
		Port:    o.Port,
		Log:     log.WithName("hub"),
		Progress: func(step string) {
			fmt.Fprintf(out, "  %-26s %5.1fs\n", step, time.Since(started).Seconds())
		},
		Notice: func(msg string) { fmt.Fprintln(out, "  "+msg) },
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping the management plane...")
		h.Stop()
		fmt.Fprintln(out, "Stopped. State is kept in", o.DataDir)
	}()

	var lab *labnet.Net
	if o.Agents > 0 {
		if labnet.Available() {
			for _, gone := range labnet.Reclaim() {
				fmt.Fprintf(out, "  removed the lab network %s of an hcp up that is gone\n", gone)
			}
			lab = labnet.New(o.DataDir)
			if err := lab.Up(); err != nil {
				return fmt.Errorf("lab network: %w", err)
			}
			defer lab.Down(o.Agents)
			if !o.infraHostSet {
				o.InfraHost = lab.Gateway()
			}
		} else {
			fmt.Fprintln(out, "  network namespaces are not available (root and ip are needed): lab hosts share this machine's network")
		}
	}
	infraPort := o.InfraPort
	if infraPort == 0 {
		if infraPort, err = h.Port("infra", "infrastructure service", DefaultInfraPort); err != nil {
			return err
		}
	}
	infraURL := "https://" + net.JoinHostPort(o.InfraHost, strconv.Itoa(infraPort))
	consoleOpts, consoleURL := operator.ConsoleOptions{}, "off (--console-port -1)"
	if o.ConsolePort >= 0 {
		port := o.ConsolePort
		if port == 0 {
			if port, err = h.Port("console", "web console", DefaultConsolePort); err != nil {
				return err
			}
		}
		consoleAPIAddress := "127.0.0.1"
		if lab != nil {
			consoleAPIAddress = lab.Gateway()
		}
		consoleOpts = operator.ConsoleOptions{Addr: net.JoinHostPort(o.ConsoleHost, strconv.Itoa(port)), CertDir: o.DataDir,
			Hosts: []string{o.ConsoleHost}, APIServerAddress: consoleAPIAddress}
		host := o.ConsoleHost
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		ca := filepath.Join(o.DataDir, "console-ca.crt")
		consoleURL = "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "   (log in with the kubeconfig below or a token)\n" +
			"               its CA is " + ca + "; to trust it in Chromium and Chrome on Linux once:\n" +
			"               certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n hcp-console -i " + ca + "   (package libnss3-tools)"
	}
	if busy := local.WildcardBusyPorts(); len(busy) > 0 {
		fmt.Fprintf(out, "  warning: another program listens on every address on port %v; hosted control planes need those ports on their loopback addresses and cannot start until it stops\n", busy)
	}
	if req != agentctl.DefaultRequirements {
		fmt.Fprintf(out, "  worker host requirements lowered/changed for this lab: %d CPU cores, %s memory, %s disk\n", req.CPUCores, o.AgentMinMemory, o.AgentMinDisk)
	}
	fmt.Fprintf(out, "  %-26s %5.1fs\n", "operator", time.Since(started).Seconds())
	// Only this process can run an operator on this data directory (it holds the
	// directory's lock), so a leader Lease left by a crashed run is stale: drop
	// it rather than wait for it to expire.
	if err := dropStaleLease(ctx, h); err != nil {
		return err
	}
	opErr := make(chan error, 1)
	opCtx, stopOperator := context.WithCancel(ctx)
	defer func() { stopOperator(); <-opErr }()
	go func() {
		opErr <- operator.Run(opCtx, operator.Options{
			Config:                  h.RESTConfig(),
			MetricsAddr:             o.MetricsAddr,
			HealthAddr:              o.HealthAddr,
			LeaderElection:          true,
			LeaderElectionNamespace: hub.Namespace,
			Log:                     log.WithName("operator"),
			DataDir:                 o.DataDir,
			ReleaseDir:              o.ReleaseDir,
			StopControlPlanesOnExit: true,
			Infra: operator.InfraOptions{
				Addr:            net.JoinHostPort("0.0.0.0", strconv.Itoa(infraPort)),
				URL:             infraURL,
				AgentBinary:     agentBinary(),
				PollInterval:    o.AgentPollInterval,
				DisconnectAfter: o.AgentDisconnectTimeout,
				Requirements:    req,
			},
			Console: consoleOpts,
		})
	}()
	mc, err := client.New(h.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	if err := waitOperatorReady(ctx, o.HealthAddr, mc, opErr); err != nil {
		return err
	}

	fmt.Fprintf(out, `
The management plane is ready (%.1fs).
  API server:  %s
  operator:    http://%s/readyz   metrics: http://%s/metrics
  infrastructure service: %s
  web console: %s
  logs:        %s   (hcp up's own: hcp-up.log; -v 1 shows it here too)

Use it with kubectl and hcp (in another terminal):
%s  export KUBECONFIG=%s
  kubectl get crd

Press Ctrl-C to stop; state stays in %s and comes back with the next hcp up.
`, time.Since(started).Seconds(), h.Server(), o.HealthAddr, o.MetricsAddr, infraURL, consoleURL, h.LogDir(), pathHint(rel), h.KubeconfigPath(), o.DataDir)

	if o.Agents > 0 {
		hosts, err := startLabHosts(ctx, h.KubeconfigPath(), o.DataDir, o.AgentsNamespace, o.Agents, lab, log.WithName("lab"), out)
		defer func() {
			for _, p := range hosts {
				p.Stop(5 * time.Second)
			}
		}()
		if err != nil {
			return fmt.Errorf("lab hosts: %w", err)
		}
	}
	if o.Example {
		apiAddress := "127.0.0.1"
		if lab != nil {
			// Lab hosts live behind the bridge: they reach the published
			// services on its address.
			apiAddress = lab.Gateway()
		}
		if err := createExample(ctx, o, rel, h.KubeconfigPath(), apiAddress, min(o.Agents, 2), out); err != nil {
			fmt.Fprintf(out, "The example cluster was not created: %v\n", err)
		}
	}

	select {
	case <-ctx.Done():
		return nil
	case err := <-opErr:
		opErr <- err
		if err != nil {
			return fmt.Errorf("operator stopped: %w", err)
		}
		return errors.New("operator stopped")
	}
}

// waitOperatorReady waits until the operator is ready and leads: it has
// published the releases it serves, which hcp create checks.
func waitOperatorReady(ctx context.Context, healthAddr string, c client.Reader, opErr chan error) error {
	check := probe.New(nil, nil)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return probe.Until(ctx, 50*time.Millisecond, "the operator to be ready", func(ctx context.Context) error {
		select {
		case err := <-opErr:
			opErr <- err
			return fmt.Errorf("operator stopped: %v", err)
		default:
		}
		if err := check.Check(ctx, "http://"+healthAddr+"/readyz"); err != nil {
			return err
		}
		_, err := release.Served(ctx, c)
		return err
	})
}

// openLog opens hcp up's log file, <dataDir>/logs/hcp-up.log, for appending.
func openLog(dataDir string) (*os.File, error) {
	dir := filepath.Join(dataDir, "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return os.OpenFile(filepath.Join(dir, "hcp-up.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
}

// severityTee writes every log entry to the file, and warnings and errors
// (klog's W and E lines) to the terminal as well, each distinct error at most
// once a minute: a controller retrying the same failure does not flood it.
type severityTee struct {
	file, terminal io.Writer

	mu    sync.Mutex
	shown map[string]time.Time
}

func (t *severityTee) Write(p []byte) (int, error) {
	if len(p) > 0 && (p[0] == 'E' || p[0] == 'W') {
		key := string(p)
		if _, rest, ok := strings.Cut(key, "] "); ok {
			key = rest
		}
		if _, e, ok := strings.Cut(key, " err="); ok {
			key, _, _ = strings.Cut(e, "\" ")
		}
		t.mu.Lock()
		if t.shown == nil {
			t.shown = map[string]time.Time{}
		}
		if last, seen := t.shown[key]; !seen || time.Since(last) > time.Minute {
			t.shown[key] = time.Now()
			_, _ = t.terminal.Write(p)
		}
		t.mu.Unlock()
	}
	return t.file.Write(p)
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

// createExample creates the example hosted cluster the way a user would with
// hcp create cluster agent, with a placeholder pull secret.
// With lab hosts, its NodePool has nodes (at most two).
func createExample(ctx context.Context, o UpOptions, rel *release.Release, kubeconfig, apiAddress string, nodes int, out io.Writer) error {
	m, err := connect(ctx, kubeconfig)
	if err != nil {
		return err
	}
	hc := &hyperv1.HostedCluster{}
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: "example"}, hc); err == nil {
		fmt.Fprintln(out, "\nThe example hosted cluster clusters/example exists already.")
		printExampleHints(out, kubeconfig, pathHint(rel))
		return nil
	}
	pullSecret := filepath.Join(o.DataDir, "example-pull-secret.json")
	if _, err := os.Stat(pullSecret); os.IsNotExist(err) {
		if err := os.WriteFile(pullSecret, []byte(`{"auths":{}}`+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := clusterspec.EnsureNamespace(ctx, m.client, "clusters-example"); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nCreating the example hosted cluster:\n  hcp create cluster agent --name example --namespace clusters --agent-namespace clusters-example \\\n    --pull-secret %s --api-server-address %s --node-pool-replicas %d \\\n    --control-plane-availability-policy SingleReplica --release-image %s --wait\n", pullSecret, apiAddress, nodes, rel.Image)
	co := &ClusterOptions{Spec: clusterspec.Spec{Name: "example", Namespace: "clusters", AgentNamespace: "clusters-example",
		APIServerAddress: apiAddress, NodePoolReplicas: int32(nodes), ControlPlaneAvailabilityPolicy: string(hyperv1.SingleReplica), InfraAvailabilityPolicy: string(hyperv1.SingleReplica),
		ReleaseImage: rel.Image, ServiceCIDR: hosted.DefaultServiceCIDR, ClusterCIDR: hosted.DefaultClusterCIDR, BaseDomain: "example.hcp.local"},
		PullSecretFile: pullSecret, Wait: true, Timeout: 5 * time.Minute, quietHints: true}
	if err := createCluster(ctx, co, kubeconfig, out); err != nil {
		return err
	}
	printExampleHints(out, kubeconfig, pathHint(rel))
	return nil
}

func printExampleHints(out io.Writer, kubeconfig, path string) {
	fmt.Fprintf(out, `
Look at it (in another terminal):
%s  export KUBECONFIG=%s
  kubectl get hostedcluster -n clusters
  kubectl get hcp -n clusters-example -o yaml
  kubectl get nodepool,agents -A
  hcp create kubeconfig --namespace clusters --name example > kubeconfig-example
  kubectl --kubeconfig kubeconfig-example get clusteroperators,nodes
`, path, kubeconfig)
}

// pathHint is the export PATH line that puts this hcp and the release's
// kubectl first on PATH, when the hints would otherwise not run as printed.
func pathHint(rel *release.Release) string {
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

// requirements are the worker host requirements the flags set.
func (o UpOptions) requirements() (agentctl.Requirements, error) {
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

func dropStaleLease(ctx context.Context, h *hub.Hub) error {
	c, err := client.New(h.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: hub.Namespace, Name: operator.LeaderElectionID}}
	if err := c.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the stale operator lease: %w", err)
	}
	return nil
}
