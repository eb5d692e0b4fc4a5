// Command hcp-operator runs the hcp operator against a management cluster.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/runtime/local"
)

func main() {
	// The local runtime publishes services through this same executable.
	if len(os.Args) > 1 && os.Args[1] == "balance" {
		fs := flag.NewFlagSet("balance", flag.ExitOnError)
		listen := fs.String("listen", "", "address to listen on, host:port")
		var backends backendList
		fs.Var(&backends, "backend", "backend address, host:port (repeatable)")
		healthPath := fs.String("health-path", "", "HTTPS path a backend answers 200 on when it serves (e.g. /readyz)")
		planeDir := fs.String("plane-dir", "", "directory of the control plane to watch over")
		_ = fs.Parse(os.Args[2:])
		ctx := ctrl.SetupSignalHandler()
		if err := local.Balance(ctx, *listen, backends, *healthPath, *planeDir, textlogger.NewLogger(textlogger.NewConfig())); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		return
	}
	// Backup Jobs and restore init containers of the Kubernetes runtime
	// run this same executable, from the backup image.
	if len(os.Args) > 1 && (os.Args[1] == "etcd-backup" || os.Args[1] == "etcd-restore") {
		os.Exit(backupTool(os.Args[1], os.Args[2:]))
	}
	var (
		kubeconfig string
		opts       = operator.Options{}
		logConfig  = textlogger.NewConfig()
	)
	// controller-runtime registers --kubeconfig itself (ctrl.GetConfig reads it).
	if f := flag.Lookup("kubeconfig"); f != nil {
		f.Usage = "management cluster kubeconfig (default: in-cluster, or $KUBECONFIG)"
	} else {
		flag.StringVar(&kubeconfig, "kubeconfig", "", "management cluster kubeconfig (default: in-cluster, or $KUBECONFIG)")
	}
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `metrics address ("0" turns metrics off)`)
	flag.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "/healthz and /readyz address")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "run one active replica at a time")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "hcp-system", "namespace of the leader Lease")
	defaultRuntime := operator.RuntimeLocal
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		defaultRuntime = operator.RuntimeKubernetes
	}
	flag.StringVar(&opts.Runtime, "runtime", defaultRuntime, `where control planes run: "kubernetes" (workloads of the management cluster; the default in a cluster) or "local" (processes of this operator)`)
	flag.BoolVar(&opts.OutsideCluster, "outside-cluster", os.Getenv("KUBERNETES_SERVICE_HOST") == "", "the operator runs outside the management cluster's pod network and reaches hosted API servers on their published endpoints (default: true unless it runs in a pod)")
	flag.StringVar(&opts.DataDir, "data-dir", "/var/lib/hcp", "directory for control plane data, files and logs (local runtime)")
	flag.StringVar(&opts.ReleaseDir, "release-dir", release.DefaultDir(), "directory of release payloads")
	flag.StringVar(&opts.ImageRepository, "image-repository", images.DefaultRepository, "where control plane pods pull hcp's images from (<registry>/<repository>, as hcp release mirror --to pushed them; kubernetes runtime)")
	flag.StringVar(&opts.Console.Addr, "console-bind-address", ":8443", `web console address ("0" turns the console off)`)
	flag.StringVar(&opts.Console.CertDir, "console-cert-dir", "", "directory keeping the console's certificate and its CA (default: a new one in memory at each start)")
	flag.StringVar(&opts.Infra.Addr, "infra-bind-address", ":8090", "infrastructure service address (agents register there; Ignition is served there)")
	flag.StringVar(&opts.Infra.URL, "infra-url", "", "the infrastructure service as hosts reach it, e.g. https://192.0.2.10:8090; empty turns it and the Agent platform's controllers off")
	agentBinary := "hcp-agent"
	if exe, err := os.Executable(); err == nil {
		agentBinary = filepath.Join(filepath.Dir(exe), "hcp-agent")
	}
	flag.StringVar(&opts.Infra.AgentBinary, "agent-binary", agentBinary, "the hcp-agent executable served to discovered hosts")
	consoleHosts := flag.String("console-hosts", "", "comma-separated names or addresses users reach the console at, for its certificate")
	logConfig.AddFlags(flag.CommandLine)
	flag.Parse()

	if opts.Runtime != operator.RuntimeLocal && opts.Runtime != operator.RuntimeKubernetes {
		fmt.Fprintf(os.Stderr, "Error: --runtime: %q is not a runtime; use %s or %s\n", opts.Runtime, operator.RuntimeLocal, operator.RuntimeKubernetes)
		os.Exit(2)
	}
	if opts.Infra.URL == "" {
		opts.Infra.Addr = ""
	} else if err := infra.CheckURL(opts.Infra.URL); err != nil {
		fmt.Fprintln(os.Stderr, "Error: --infra-url:", err)
		os.Exit(2)
	}
	if opts.Console.Addr == "0" {
		opts.Console.Addr = ""
	}
	for _, h := range strings.Split(*consoleHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			opts.Console.Hosts = append(opts.Console.Hosts, h)
		}
	}
	log := textlogger.NewLogger(logConfig)
	klog.SetLogger(log)
	ctrl.SetLogger(log)
	opts.Log = log

	if kubeconfig != "" {
		if err := os.Setenv("KUBECONFIG", kubeconfig); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: management cluster:", err)
		os.Exit(1)
	}
	opts.Config = cfg
	if err := operator.Run(ctrl.SetupSignalHandler(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

type backendList []string

func (b *backendList) String() string     { return strings.Join(*b, ",") }
func (b *backendList) Set(v string) error { *b = append(*b, v); return nil }
