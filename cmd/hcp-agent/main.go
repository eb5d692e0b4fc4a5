// Command hcp-agent runs on a worker host: it reports the host to the
// infrastructure service and turns it into a node when it is bound to a cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ignitionv3 "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2/textlogger"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agent"
	"github.com/hcp-dev/hcp/internal/version"
)

func main() {
	root := &cobra.Command{
		Use:           "hcp-agent",
		Short:         "The hcp discovery and node agent of a worker host",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the agent version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "hcp-agent", version.Version)
		},
	}, discoverCommand(), namespaceCommand(), nodeCommand())
	// ghw warns on stderr about every missing /sys file; the inventory says what is known.
	_ = os.Setenv("GHW_DISABLE_WARNINGS", "1")
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// namespaceCommand runs a node's units in the node's mount namespace; the
// discovery agent starts it when the host becomes a node.
func namespaceCommand() *cobra.Command {
	var root string
	var mounted bool
	logConfig := textlogger.NewConfig()
	cmd := &cobra.Command{
		Use:    agent.NamespaceCommand,
		Short:  "Run the node's units (containerd, kubelet, kube-proxy) in the node's mount namespace",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.RunNodeNamespace(ctx, root, mounted, textlogger.NewLogger(logConfig))
		},
	}
	cmd.Flags().StringVar(&root, "root", "/", "root directory the node's files were installed under")
	cmd.Flags().BoolVar(&mounted, "mounted", false, "this is the node's mount namespace already: mount nothing")
	gf := flag.NewFlagSet("log", flag.ContinueOnError)
	logConfig.AddFlags(gf)
	cmd.Flags().AddGoFlagSet(gf)
	return cmd
}

// nodeCommand installs an Ignition config and runs the node it describes, as a
// host does once bound; hcp up runs management nodes with it.
func nodeCommand() *cobra.Command {
	var o agent.NodeOptions
	var ignitionFile, ip string
	logConfig := textlogger.NewConfig()
	cmd := &cobra.Command{
		Use:    "node",
		Short:  "Install an Ignition config and run the node it describes until the cluster deletes the Node",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if net.ParseIP(ip) == nil {
				return fmt.Errorf("--ip %q: must be the node's IP address", ip)
			}
			if o.Name == "" || o.PayloadDir == "" || ignitionFile == "" {
				return fmt.Errorf("--name, --payload-dir and --ignition are required")
			}
			b, err := os.ReadFile(ignitionFile)
			if err != nil {
				return fmt.Errorf("--ignition: %w", err)
			}
			cfg, _, err := ignitionv3.Parse(b)
			if err != nil {
				return fmt.Errorf("--ignition %s: %w", ignitionFile, err)
			}
			if err := agent.Apply(cfg, o.Root); err != nil {
				return err
			}
			o.Log = textlogger.NewLogger(logConfig)
			o.ProviderID = "agent://" + o.Name
			o.Inventory = &agentv1.HostInventory{Interfaces: []agentv1.HostInterface{{Name: "eth0", IPV4Addresses: []string{ip + "/24"}}}}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = agent.RunRealNode(ctx, o)
			if errors.Is(err, agent.ErrNodeDeleted) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ignitionFile, "ignition", "", "the node's Ignition config")
	f.StringVar(&o.Root, "root", "/", "root directory to install the node's files under")
	f.StringVar(&o.Name, "name", "", "node name")
	f.StringVar(&ip, "ip", "", "the node's address")
	f.StringVar(&o.PayloadDir, "payload-dir", "", "release payload directory to take the node's binaries from")
	f.IntVar(&o.MachineShare, "machine-share", 1, "how many nodes share this machine: the node offers pods its share of the CPUs and memory")
	gf := flag.NewFlagSet("log", flag.ContinueOnError)
	logConfig.AddFlags(gf)
	f.AddGoFlagSet(gf)
	return cmd
}

func discoverCommand() *cobra.Command {
	var o agent.Options
	var tokenFile string
	logConfig := textlogger.NewConfig()
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Register this host with the infrastructure service and report its inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				o.Token = strings.TrimSpace(string(b))
			}
			o.Log = textlogger.NewLogger(logConfig)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ServiceURL, "service-url", "", "infrastructure service URL, https://host:port")
	f.StringVar(&o.InfraEnvID, "infra-env-id", "", "ID of the InfraEnv this host belongs to")
	f.StringVar(&o.Token, "token", "", "the InfraEnv's token")
	f.StringVar(&tokenFile, "token-file", "", "file holding the InfraEnv's token")
	f.StringVar(&o.CAFile, "ca-file", "", "CA that signed the service's certificate")
	f.StringVar(&o.DataDir, "data-dir", "/var/lib/hcp-agent", "directory for the host ID (one per host)")
	f.StringVar(&o.Hostname, "hostname", "", "hostname to report (default: the machine's)")
	f.StringVar(&o.Root, "root", "/", "root directory an installation writes the host's files under")
	f.IntVar(&o.KubeletPort, "kubelet-port", 0, "port of a simulated node's kubelet endpoint (default 10250, or a free port when taken)")
	f.BoolVar(&o.SimulatedNode, "simulated-node", false, "join as a simulated node (no container runtime: pods are reported Running without running), for scale tests")
	f.BoolVar(&o.RebootIntoDiscovery, "reboot-into-discovery", false, "when the cluster deletes this host's node, go back to discovery (as a reboot into the discovery image would) instead of waiting for a restart")
	f.IntVar(&o.MachineShare, "machine-share", 1, "how many hosts share this machine: a node offers pods its share of the CPUs and memory and reserves the rest")
	f.StringVar(&o.PayloadDir, "payload-dir", "", "release payload directory to take the node's binaries from (default: download them from the service)")
	gf := flag.NewFlagSet("log", flag.ContinueOnError)
	logConfig.AddFlags(gf)
	f.AddGoFlagSet(gf)
	return cmd
}
