// Package cli is the hcp command line: hcp up (the embedded management plane),
// and the commands that create and destroy hosted clusters and their parts.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	root.SetFlagErrorFunc(flagParseError)
	kubeconfig := root.PersistentFlags().String("kubeconfig", "", "management cluster kubeconfig (default: $KUBECONFIG, else ~/.kube/config)")
	root.AddCommand(newUpCommand(), newVersionCommand(kubeconfig), newCreateCommand(kubeconfig), newDestroyCommand(kubeconfig), newBalanceCommand(), newInstallCommand(kubeconfig), newReleaseCommand())
	return root
}

// flagParseError turns a flag the command line could not parse into one line
// that names the flag, says what it takes and gives an example.
func flagParseError(cmd *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return fmt.Errorf("%w (%s --help lists the flags)", err, cmd.CommandPath())
	}
	f := iv.GetFlag()
	what, example := "a valid value", f.DefValue
	switch t := f.Value.Type(); {
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		what, example = "a whole number", "2"
	case strings.HasPrefix(t, "float"):
		what, example = "a number", "0.5"
	case t == "bool":
		what, example = "true or false", "true"
	case t == "duration":
		what, example = "a duration", "10m"
	case t == "stringToString":
		what, example = "key=value pairs separated by commas", "team=payments,env=dev"
	}
	return flagError(f.Name, fmt.Sprintf("%q is not %s", iv.GetValue(), what), example)
}
