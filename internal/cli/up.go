package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/up"
)

func newUpCommand() *cobra.Command {
	o := up.Defaults()
	var example bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the embedded management plane on this machine (in the foreground)",
		Long: `Run the embedded management plane: etcd, kube-apiserver and kube-controller-manager
from the release payload on loopback with TLS and RBAC, hcp's and Cluster API's CRDs,
a default StorageClass "local", and the hcp operator. State is kept in --data-dir, so
running hcp up again brings back every object. Stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.InfraHostSet = cmd.Flags().Changed("infra-host")
			return runUp(cmd.Context(), o, example, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for all state (etcd data, certificates, logs, kubeconfig)")
	f.StringVar(&o.ReleaseDir, "release-dir", o.ReleaseDir, "directory of release payloads")
	f.StringVar(&o.ReleaseImage, "release-image", "", "release payload the management plane runs (default: the newest in --release-dir)")
	f.IntVar(&o.Port, "port", 0, fmt.Sprintf("management API port on 127.0.0.1 (default: the one used last time, else %d when free, else any free port)", hub.DefaultPort))
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, `operator metrics address ("0" turns metrics off; port 0 picks a free port)`)
	f.StringVar(&o.HealthAddr, "health-probe-bind-address", o.HealthAddr, `operator /healthz and /readyz address (port 0 picks a free port)`)
	f.IntVarP(&o.Verbosity, "v", "v", 0, "log verbosity; above 0 the log also goes to the terminal (it always goes to <data-dir>/logs/hcp-up.log)")
	f.IntVar(&o.InfraPort, "infra-port", 0, fmt.Sprintf("infrastructure service port (default: the one used last time, else %d when free, else any free port)", up.DefaultInfraPort))
	f.StringVar(&o.InfraHost, "infra-host", o.InfraHost, "address hosts use to reach the infrastructure service")
	f.IntVar(&o.ConsolePort, "console-port", 0, fmt.Sprintf("web console port (default: the one used last time, else %d when free, else any free port; -1 turns the console off)", up.DefaultConsolePort))
	f.StringVar(&o.ConsoleHost, "console-address", o.ConsoleHost, "address the web console listens on (0.0.0.0 for every interface)")
	f.DurationVar(&o.AgentPollInterval, "agent-poll-interval", o.AgentPollInterval, "how often discovery agents ask for steps")
	f.DurationVar(&o.AgentDisconnectTimeout, "agent-disconnect-timeout", o.AgentDisconnectTimeout, "how long without a check-in makes a host disconnected")
	f.Int64Var(&o.AgentMinCPUCores, "agent-min-cpu-cores", o.AgentMinCPUCores, "CPU cores a worker host needs")
	f.StringVar(&o.AgentMinMemory, "agent-min-memory", o.AgentMinMemory, "memory a worker host needs")
	f.StringVar(&o.AgentMinDisk, "agent-min-disk", o.AgentMinDisk, "size of the disk a worker host needs")
	f.IntVar(&o.Agents, "agents", 0, "run this many lab hosts: discovery agents on this machine, registered through InfraEnv lab")
	f.StringVar(&o.AgentsNamespace, "agents-namespace", o.AgentsNamespace, "namespace of the lab hosts' InfraEnv and Agents")
	f.IntVar(&o.ManagementNodes, "management-nodes", 0, "join this many lab hosts to the management plane as real nodes and run hosted control planes there as pods (zones rack1..rack3, labelled and tainted hypershift.openshift.io/control-plane)")
	f.StringVar(&o.Operator, "operator", o.Operator, `where the hcp operator runs: "in-process" (in hcp up) or "none" (install it on the management nodes with hcp release mirror and hcp install; needs --management-nodes)`)
	f.StringSliceVar(&o.InsecureRegistries, "insecure-registry", nil, "registry (host[:port]) the management nodes pull from without verifying its certificate, or over HTTP, e.g. where hcp release mirror pushed (repeatable)")
	f.BoolVar(&o.SimulatedNodes, "simulated-nodes", false, "lab hosts join as simulated nodes (no container runtime; pods are reported Running without running), for scale tests")
	f.BoolVar(&example, "example", false, "also create the example hosted cluster (clusters/example, SingleReplica) and wait until it is Available")
	return cmd
}

// runUp runs the management plane until ctx ends or the process is
// signalled; with example, it creates the example hosted cluster once ready.
func runUp(ctx context.Context, o up.Options, example bool, out io.Writer) error {
	if example && o.Operator == up.OperatorNone {
		return fmt.Errorf("--example needs an operator to create the cluster; drop --example, or --operator none")
	}
	// A closed terminal (SIGHUP) stops the plane like Ctrl-C; output to a
	// terminal or parent that is gone fails quietly (no SIGPIPE) so that
	// the stop still runs to its end: nodes and control planes are left
	// whole or gone, never half-killed.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	p, err := up.Start(ctx, o, out)
	if err != nil {
		return err
	}
	defer p.Stop()
	if example {
		if err := createExample(ctx, p, min(o.Agents, 2), out); err != nil {
			fmt.Fprintf(out, "The example cluster was not created: %v\n", err)
		}
	}
	return p.Wait(ctx)
}

// createExample creates the example hosted cluster the way a user would with
// hcp create cluster agent, with a placeholder pull secret.
// With lab hosts, its NodePool has nodes (at most two).
func createExample(ctx context.Context, p *up.Plane, nodes int, out io.Writer) error {
	rel, kubeconfig, apiAddress := p.Release(), p.KubeconfigPath(), p.HostAddress()
	m, err := connect(ctx, kubeconfig)
	if err != nil {
		return err
	}
	hc := &hyperv1.HostedCluster{}
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: "example"}, hc); err == nil {
		fmt.Fprintln(out, "\nThe example hosted cluster clusters/example exists already.")
		printExampleHints(out, kubeconfig, up.PathHint(rel))
		return nil
	}
	pullSecret := filepath.Join(p.DataDir(), "example-pull-secret.json")
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
	printExampleHints(out, kubeconfig, up.PathHint(rel))
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
