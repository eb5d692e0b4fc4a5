package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2/textlogger"

	"github.com/hcp-dev/hcp/internal/runtime/local"
)

// newBalanceCommand is the hidden command the local runtime runs to publish a
// control plane service: a TCP balancer from --listen to the --backend replicas.
func newBalanceCommand() *cobra.Command {
	var listen, healthPath, planeDir string
	var backends []string
	cmd := &cobra.Command{
		Use:    "balance",
		Short:  "Forward TCP connections from --listen to the --backend addresses (used by the local runtime)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return local.Balance(ctx, listen, backends, healthPath, planeDir, textlogger.NewLogger(textlogger.NewConfig()))
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on, host:port")
	cmd.Flags().StringArrayVar(&backends, "backend", nil, "backend address, host:port (repeatable)")
	cmd.Flags().StringVar(&planeDir, "plane-dir", "", "directory of the control plane to watch over: its processes end when it is deleted, or when no supervisor runs and its etcd is gone")
	cmd.Flags().StringVar(&healthPath, "health-path", "", "HTTPS path a backend answers 200 on when it serves (e.g. /readyz); others get no connections while one does")
	return cmd
}
