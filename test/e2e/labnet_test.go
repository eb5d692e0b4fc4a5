package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hcp-dev/hcp/internal/labnet"
)

// TestLeakedLabNetworksAreReclaimedAndAvoided kills an hcp up with lab hosts
// (its lab network stays behind) and starts another one whose lab subnet an
// interface of this machine already holds: the new run removes the dead run's
// network, picks a subnet no interface uses, and its host registers.
func TestLeakedLabNetworksAreReclaimedAndAvoided(t *testing.T) {
	deadDir := t.TempDir()
	dead := startUp(t, deadDir, "--agents", "1", agentFlags)
	deadBridge := bridgeOf(t, dead)
	dead.kill()
	t.Cleanup(func() {
		for _, pid := range processesUsing(deadDir) {
			_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
		}
	})
	if err := exec.Command("ip", "link", "show", deadBridge).Run(); err != nil {
		t.Fatalf("the killed run's bridge %s is already gone: the test sets nothing up", deadBridge)
	}

	// An interface that holds the subnet the next run would choose.
	dir := t.TempDir()
	taken := labnet.New(dir).Gateway()
	prefix := strings.TrimSuffix(taken, ".1")
	if out, err := exec.Command("ip", "link", "add", "hcptaken0", "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "hcptaken0").Run() })
	if out, err := exec.Command("ip", "addr", "add", prefix+".200/24", "dev", "hcptaken0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}

	// The dead run's data directory is gone too.
	if err := os.RemoveAll(deadDir); err != nil {
		t.Fatal(err)
	}
	up := startUp(t, dir, "--agents", "1", agentFlags)
	if !strings.Contains(up.output(), "removed the lab network "+deadBridge) {
		t.Errorf("hcp up did not say it removed %s:\n%s", deadBridge, up.output())
	}
	if err := exec.Command("ip", "link", "show", deadBridge).Run(); err == nil {
		t.Errorf("the dead run's bridge %s is still there", deadBridge)
	}
	if gw := gatewayOf(t, up); strings.HasPrefix(gw, prefix+".") {
		t.Errorf("the lab network %s overlaps an interface's subnet %s.0/24", gw, prefix)
	}
	eventually(t, time.Minute, "the lab host registered", func() error {
		out, _ := up.kubectl("", "-n", "clusters-example", "get", "agents", "-o", "jsonpath={.items[*].status.debugInfo.state}")
		if out != "known-unbound" {
			return errorf("agents: %q", out)
		}
		return nil
	})
}

// gatewayOf is the lab network's gateway a running hcp up printed.
func gatewayOf(t *testing.T, up *upProcess) string {
	t.Helper()
	var gw string
	eventually(t, 30*time.Second, "the lab network's gateway", func() error {
		if _, rest, ok := strings.Cut(up.output(), "infrastructure service: https://"); ok {
			gw, _, _ = strings.Cut(strings.Fields(rest)[0], ":")
		}
		if gw == "" || !strings.Contains(up.output(), "in network namespaces") {
			return errorf("hcp up did not print it:\n%s", up.output())
		}
		return nil
	})
	return gw
}

// bridgeOf is the bridge that holds a running hcp up's lab gateway.
func bridgeOf(t *testing.T, up *upProcess) string {
	t.Helper()
	gw := gatewayOf(t, up)
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[3], gw+"/") {
			return f[1]
		}
	}
	t.Fatalf("no interface holds %s:\n%s", gw, out)
	return ""
}

// waitAgentsKnown waits until n lab hosts' Agents are known-unbound (their
// hosts discovered, nothing bound yet).
func (u *upProcess) waitAgentsKnown(t *testing.T, n int) {
	t.Helper()
	eventually(t, 2*time.Minute, fmt.Sprintf("%d lab hosts known", n), func() error {
		out, _ := u.kubectl("", "-n", "clusters-example", "get", "agents", "-o", "jsonpath={.items[*].status.debugInfo.state}")
		if strings.Count(out, "known-unbound") != n {
			return errorf("agents: %q", out)
		}
		return nil
	})
}
