package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/version"
)

func newVersionCommand() *cobra.Command {
	releaseDir := release.DefaultDir()
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the release payloads available",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client Version: %s\n", version.Version)
			releases, err := release.Store{Dir: releaseDir}.List()
			if err != nil {
				fmt.Fprintf(out, "Release payloads: none (%v)\n", err)
				return nil
			}
			fmt.Fprintf(out, "Release payloads (%s):\n", releaseDir)
			for _, r := range releases {
				fmt.Fprintf(out, "  %s  kubernetes %s, etcd %s\n", r.Image, r.KubernetesVersion(), r.Components[release.Etcd])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&releaseDir, "release-dir", releaseDir, "directory of release payloads")
	return cmd
}
