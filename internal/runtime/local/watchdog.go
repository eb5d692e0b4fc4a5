package local

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// watchInterval is how often a plane's watchdog looks.
const watchInterval = 2 * time.Second

// watchPlane watches over a control plane whose processes outlive their
// supervisor (so a restarted operator adopts them) and ends what must not
// stay: when the plane's directory is gone (its data was deleted), every one
// of its processes; when no supervisor runs and etcd is gone (a stop cut
// short), the API servers and controllers left without it. It returns once
// nothing of the plane is left to watch, and then the caller (the plane's API
// server balancer) exits too.
func watchPlane(ctx context.Context, planeDir string, log logr.Logger) {
	owner := filepath.Join(filepath.Dir(planeDir), OwnerFile)
	known := map[string]int{} // state file → pid, from the last look
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchInterval):
		}
		if _, err := os.Stat(planeDir); os.IsNotExist(err) {
			log.Info("the control plane's directory is gone: ending its processes", "dir", planeDir)
			for _, pid := range known {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		records, _ := filepath.Glob(filepath.Join(planeDir, "*", "process.json"))
		etcd, running := false, map[string]int{}
		for _, rec := range records {
			pid, ok := supervisor.RecordedRunning(rec)
			if !ok || pid == os.Getpid() {
				continue
			}
			known[rec] = pid
			running[rec] = pid
			if strings.HasPrefix(filepath.Base(filepath.Dir(rec)), controlplane.Etcd+"-") {
				etcd = true
			}
		}
		for rec := range known {
			if _, ok := running[rec]; !ok {
				delete(known, rec)
			}
		}
		if supervised(owner) || etcd {
			continue
		}
		for rec := range running {
			log.Info("no supervisor runs this control plane and its etcd is gone: ending what is left", "process", rec)
			supervisor.StopRecorded(rec, 10*time.Second)
		}
		return
	}
}

// supervised says whether the process an owner file names is alive.
func supervised(owner string) bool {
	b, err := os.ReadFile(owner)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}
