package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/ports"
)

// konnectivityBinary is where the node keeps the konnectivity agent.
const konnectivityBinary = "/usr/local/bin/konnectivity-agent"

// runKonnectivity runs the node's konnectivity agent (as the Ignition's
// konnectivity-agent.service says) until ctx ends, restarting it when it
// exits: it opens the reverse tunnel through which the control plane reaches
// this node. It authenticates with the node's own client certificate.
func (n *node) runKonnectivity(ctx context.Context) {
	env, err := readEnv(filepath.Join(n.o.Root, ignition.KonnectivityEnvPath))
	if err != nil || env["PROXY_SERVER_HOST"] == "" || env["PROXY_SERVER_PORT"] == "" {
		n.o.Log.Info("the Ignition names no konnectivity server; the control plane cannot reach this node", "error", err)
		return
	}
	bin := filepath.Join(n.o.Root, konnectivityBinary)
	if err := backoff(ctx, 30*time.Second, func() error {
		if _, err := os.Stat(bin); err == nil {
			return nil
		}
		if n.o.Fetch == nil {
			return permanent(fmt.Errorf("no konnectivity agent at %s and nowhere to fetch it from", bin))
		}
		return n.o.Fetch(ctx, "konnectivity-agent", "", bin)
	}, func(err error, wait time.Duration) {
		n.o.Log.Info("fetching the konnectivity agent failed; retrying", "error", err.Error(), "after", wait)
	}); err != nil {
		n.o.Log.Info("the control plane cannot reach this node", "error", err.Error())
		return
	}
	ids := url.Values{"ipv4": {n.ip}, "host": {n.o.Name}}
	args := []string{
		"--ca-cert=" + filepath.Join(n.o.Root, ignition.CAPath),
		"--agent-cert=" + filepath.Join(n.o.Root, nodeCertPath), "--agent-key=" + filepath.Join(n.o.Root, nodeCertPath),
		"--proxy-server-host=" + env["PROXY_SERVER_HOST"], "--proxy-server-port=" + env["PROXY_SERVER_PORT"],
		"--agent-id=" + n.o.Name, "--agent-identifiers=" + ids.Encode(),
		"--health-server-host=127.0.0.1", "--health-server-port=" + strconv.Itoa(freeLocalPort()),
		"--admin-bind-address=127.0.0.1", "--admin-server-port=" + strconv.Itoa(freeLocalPort()),
		"--sync-forever", "--v=1",
	}
	logPath := filepath.Join(n.o.Root, "var/log/konnectivity-agent.log")
	_ = os.MkdirAll(filepath.Dir(logPath), 0o755)
	for ctx.Err() == nil {
		log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			n.o.Log.Error(err, "konnectivity agent log")
			return
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		n.o.Log.Info("starting the konnectivity agent", "server", net.JoinHostPort(env["PROXY_SERVER_HOST"], env["PROXY_SERVER_PORT"]))
		err = cmd.Run()
		log.Close()
		if ctx.Err() != nil {
			return
		}
		n.o.Log.Info("the konnectivity agent stopped; restarting", "error", err, "log", logPath)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// readEnv reads a systemd EnvironmentFile (KEY=value lines).
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func freeLocalPort() int {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		return 0
	}
	return port
}
