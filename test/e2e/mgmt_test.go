package e2e

import (
	"context"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/test/sim"
)

// managementCluster is a real management control plane with simulated nodes
// (test/sim).
type managementCluster struct {
	*upProcess
	hub *hub.Hub
}

func startManagementCluster(t *testing.T) *managementCluster {
	t.Helper()
	dir := t.TempDir()
	c, err := sim.Start(context.Background(), dir, rel, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return &managementCluster{upProcess: &upProcess{t: t, dataDir: dir, kubeconfig: c.Hub.KubeconfigPath()}, hub: c.Hub}
}
