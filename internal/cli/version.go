package cli

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/version"
)

func newVersionCommand(kubeconfig *string) *cobra.Command {
	releaseDir := release.DefaultDir()
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the release payloads available",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client Version: %s\n", version.Version)
			fmt.Fprintf(out, "Operator Version: %s\n", operatorVersion(cmd.Context(), *kubeconfig))
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

// operatorVersion reads the version the operator publishes, or says why it
// cannot.
func operatorVersion(ctx context.Context, kubeconfig string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := connect(ctx, kubeconfig)
	if err != nil {
		return "unknown (no management cluster reached)"
	}
	cm := &corev1.ConfigMap{}
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: release.ServedNamespace, Name: release.ServedConfigMap}, cm); err != nil {
		return "unknown (no operator has reported on " + m.config.Host + ")"
	}
	return cm.Data["version"]
}
