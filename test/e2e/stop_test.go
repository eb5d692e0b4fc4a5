package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStopCutShortLeavesNoHalfControlPlane sends hcp up SIGTERM and then
// SIGKILL two seconds later, as a supervisor does: no API server is left
// without its etcd, and the next hcp up brings the control plane back whole.
// Then hcp up is killed and its data directory deleted: every control plane
// process it left ends by itself.
func TestStopCutShortLeavesNoHalfControlPlane(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("cut", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "cut")
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-cut")

	_ = up.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(2 * time.Second)
	up.kill()
	// Whatever is left settles within the watchdog's look and the API
	// server's own graceful stop.
	time.Sleep(15 * time.Second)
	left := componentPids(cpDir)
	if len(left["kube-apiserver"]) > 0 && len(left["etcd"]) == 0 {
		t.Errorf("an API server was left without its etcd: %v", left)
	}

	up = startUp(t, dataDir)
	up.waitAvailable(t, "cut")
	waitOneOfEach(t, cpDir, time.Minute)

	up.kill()
	if len(processesUsing(cpDir)) == 0 {
		t.Fatal("kill -9 of hcp up stopped the control plane; it should survive to be adopted")
	}
	// The surviving processes still write there; try again if one did.
	var err error
	for range 10 {
		if err = os.RemoveAll(dataDir); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the control plane's processes ending once its data is gone", func() error {
		if pids := processesUsing(cpDir); len(pids) != 0 {
			return fmt.Errorf("still running: %v", componentPids(cpDir))
		}
		return nil
	})
}
