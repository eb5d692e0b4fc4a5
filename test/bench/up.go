package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/operator"
)

// upInstance is an hcp up started for a benchmark.
type upInstance struct {
	cmd    *exec.Cmd
	dir    string
	client client.Client
}

// startUp runs hcp up with extra flags on a new data directory, waits until it
// is ready and settled, and returns a client of its management API.
// BENCH_KEEP=1 keeps the directory and hcp up's log.
func startUp(bin string, extra ...string) (*upInstance, error) {
	dir, err := os.MkdirTemp("", "bench-up-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"up", "--data-dir", dir, "--port", strconv.Itoa(freePort())}, extra...)
	cmd := exec.Command(filepath.Join(bin, "hcp"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if os.Getenv("BENCH_KEEP") != "" {
		if cmd.Stderr, err = os.Create(filepath.Join(dir, "hcp-up.log")); err != nil {
			return nil, err
		}
		cmd.Args = append(cmd.Args, "-v", "4")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	u := &upInstance{cmd: cmd, dir: dir}
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "The management plane is ready") {
			ready = true
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if !ready {
		u.stop()
		return nil, fmt.Errorf("hcp up ended before it was ready")
	}
	time.Sleep(2 * time.Second) // the management plane settles, as it has by the time a user types
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		u.stop()
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	scheme, err := operator.Scheme()
	if err != nil {
		u.stop()
		return nil, err
	}
	if u.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		u.stop()
		return nil, err
	}
	return u, nil
}

// hcp runs the hcp CLI against this management plane.
func (u *upInstance) hcp(bin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bin, "hcp"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(u.dir, "kubeconfig"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hcp %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (u *upInstance) stop() {
	stopProcess(u.cmd)
	if os.Getenv("BENCH_KEEP") == "" {
		_ = os.RemoveAll(u.dir)
	}
}
