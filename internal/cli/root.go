// Package cli is the hcp command line: hcp up (the embedded management plane),
// and the commands that create and destroy hosted clusters and their parts.
package cli

import (
	"github.com/spf13/cobra"
)

// NewRoot returns the hcp command with all its subcommands.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "hcp",
		Short: "Hosted control planes: many Kubernetes control planes on one management cluster",
		Long: `hcp runs Kubernetes control planes as workloads of one management cluster and
turns hosts that boot its discovery agent into nodes of those clusters.

Start here:
  hcp up                        run the embedded management plane on this machine
  export KUBECONFIG=<printed>   talk to it with kubectl
  hcp create cluster agent ...  create a hosted cluster
  hcp create kubeconfig         get hosted clusters' admin kubeconfigs`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	kubeconfig := root.PersistentFlags().String("kubeconfig", "", "management cluster kubeconfig (default: $KUBECONFIG, else ~/.kube/config)")
	root.AddCommand(newUpCommand(), newVersionCommand(kubeconfig), newCreateCommand(kubeconfig), newDestroyCommand(kubeconfig), newBalanceCommand(), newInstallCommand(kubeconfig))
	return root
}
