// Command hcp-agent runs on a worker host: it reports the host to the
// infrastructure service and turns it into a node when it is bound to a cluster.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
