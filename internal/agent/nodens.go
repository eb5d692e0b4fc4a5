package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// nodeDirs are the paths a node's kubelet, container runtime and CNI plugins
// use whatever their configuration says. Several nodes on one machine each
// get their own, bind-mounted from under their root in a mount namespace of
// their own: a node like a kind node, without a container for it.
var nodeDirs = []string{
	"etc/kubernetes", "etc/containerd", "etc/cni",
	"var/lib/kubelet", "var/lib/containerd", "var/lib/cni",
	"var/log/pods", "var/log/containers",
	"run/containerd", "run/netns", "opt/containerd", "opt/cni", "usr/local/bin",
}

// NamespaceCommand is the hidden hcp-agent command that runs a node's units
// in the node's mount namespace.
const NamespaceCommand = "node-namespace"

// RunNodeNamespace runs the node whose files are under root: when root is not
// "/", it must be called in a new mount namespace (hcp-agent starts itself
// so), which it makes private and in which it mounts the node's own
// directories over the fixed paths; then it runs the enabled units until ctx
// ends.
//
// mounted says the namespace is the node's already (its containers' shims
// kept it): nothing is mounted again.
func RunNodeNamespace(ctx context.Context, root string, mounted bool, log logr.Logger) error {
	units, err := loadUnits(root)
	if err != nil {
		return err
	}
	if root != "/" && !mounted {
		// Nothing mounted here reaches the machine or other nodes.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("making the node's mount namespace private: %w", err)
		}
		for _, d := range nodeDirs {
			src, dst := filepath.Join(root, d), "/"+d
			if err := os.MkdirAll(src, 0o755); err != nil {
				return err
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("mounting %s over %s: %w", src, dst, err)
			}
		}
	}
	logDir := filepath.Join(root, "var/log")
	if root != "/" {
		logDir = filepath.Join(root, "var/log/units")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	log.Info("running the node's units", "root", root, "units", len(units))
	runUnits(ctx, units, "/", logDir, 5*time.Second, log)
	return nil
}
