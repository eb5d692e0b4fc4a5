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
	// known are the plane's processes seen running, kept while they run even
	// when their records are gone (a directory being deleted goes file by
	// file).
	known := map[string]supervisor.Recorded{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchInterval):
		}
		if _, err := os.Stat(planeDir); os.IsNotExist(err) {
			log.Info("the control plane's directory is gone: ending its processes", "dir", planeDir)
			for _, p := range known {
				if p.Running() {
					_ = syscall.Kill(p.PID, syscall.SIGKILL)
				}
			}
			// A process started since the last look is not known yet; its
			// command line names the plane's files.
			for _, pid := range processesNaming(planeDir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		records, _ := filepath.Glob(filepath.Join(planeDir, "*", "process.json"))
		for _, rec := range records {
			if p, ok := supervisor.RecordedRunning(rec); ok && p.PID != os.Getpid() {
				known[rec] = p
			}
		}
		etcd := false
		for rec, p := range known {
			if !p.Running() {
				delete(known, rec)
				continue
			}
			if strings.HasPrefix(filepath.Base(filepath.Dir(rec)), controlplane.Etcd+"-") {
				etcd = true
			}
		}
		if supervised(owner) || etcd {
			continue
		}
		for rec, p := range known {
			log.Info("no supervisor runs this control plane and its etcd is gone: ending what is left", "process", rec)
			_ = syscall.Kill(p.PID, syscall.SIGTERM)
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

// planePrograms are the programs a control plane runs: its components and
// the balancers that publish them.
var planePrograms = map[string]bool{"etcd": true, "kube-apiserver": true, "kube-controller-manager": true,
	"kube-scheduler": true, "konnectivity-server": true, "hcp": true, "hcp-operator": true}

// processesNaming lists the control plane programs, other than this process,
// whose command line mentions dir (a user's shell reading a log there is not
// one).
func processesNaming(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !planePrograms[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}
