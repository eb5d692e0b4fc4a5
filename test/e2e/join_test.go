package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostsJoinWithoutRetriesAndSayWhyNot runs two lab hosts in their own
// network namespaces, with a short disconnect timeout:
//   - a HighlyAvailable cluster's host gets its Ignition only once the
//     bootstrap token is in the hosted cluster, so it joins without a single
//     Unauthorized answer;
//   - the installed host, which then runs its node and no longer checks in,
//     stays connected and validated well past the disconnect timeout;
//   - a cluster whose API server address is loopback gets a warning at
//     create, and its host's join error reaches the Agent and the NodePool.
func TestHostsJoinWithoutRetriesAndSayWhyNot(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir, "--agents", "2", agentFlags, "--agent-disconnect-timeout=4s")
	gateway := gatewayOf(t, up)
	eventually(t, time.Minute, "two known-unbound lab hosts", func() error {
		out, _ := up.kubectl("", "-n", "clusters-example", "get", "agents", "-o", "jsonpath={.items[*].status.debugInfo.state}")
		if strings.Count(out, "known-unbound") != 2 {
			return errorf("agents: %q", out)
		}
		return nil
	})
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	create := func(name, address string, extra ...string) string {
		return up.mustHCP(append([]string{"create", "cluster", "agent", "--name", name, "--pull-secret", pull, "--agent-namespace", "clusters-example",
			"--api-server-address", address, "--release-image", rel.Image, "--node-pool-replicas", "1"}, extra...)...)
	}

	out := create("ha", gateway, "--control-plane-availability-policy", "HighlyAvailable", "--wait", "--timeout", "6m")
	if !strings.Contains(out, "NodePool clusters/ha is Ready: 1 of 1 nodes are ready") {
		t.Fatalf("the HighlyAvailable cluster's node did not join:\n%s", out)
	}
	if strings.Contains(out, "Warning:") {
		t.Errorf("a reachable API server address got a warning:\n%s", out)
	}
	logs, _ := filepath.Glob(filepath.Join(dataDir, "lab", "lab-host-*", "hcp-agent.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(string(b), "Unauthorized") {
			t.Errorf("%s: the host was refused while joining:\n%s", l, b)
		}
	}

	// The joined host no longer checks in with the service; the disconnect
	// timeout (4s) passes, and its Agent stays connected and validated.
	time.Sleep(8 * time.Second)
	joined := up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o",
		`jsonpath={range .items[?(@.spec.clusterDeploymentName.name=="ha")]}{.status.debugInfo.state} {.status.conditions[?(@.type=="Connected")].status} {.status.conditions[?(@.type=="Validated")].status}{end}`)
	if joined != "added-to-existing-cluster True True" {
		t.Errorf("the joined host's Agent: state, Connected, Validated = %q", joined)
	}

	// A loopback API server address: the hosts cannot reach it.
	out = create("lo", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica")
	if !strings.Contains(out, "Warning: --api-server-address 127.0.0.1 is a loopback address") {
		t.Errorf("no warning for a loopback address the hosts cannot reach:\n%s", out)
	}
	eventually(t, 3*time.Minute, "the host's join error on its Agent and the NodePool", func() error {
		agent, _ := up.kubectl("", "-n", "clusters-example", "get", "agents", "-o",
			`jsonpath={range .items[?(@.spec.clusterDeploymentName.name=="lo")]}{.status.debugInfo.stateInfo}{end}`)
		np, _ := up.kubectl("", "-n", "clusters", "get", "nodepool", "lo", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
		if !strings.Contains(agent, "Cannot join the cluster yet") || !strings.Contains(agent, "127.0.0.1") || !strings.Contains(np, "Cannot join the cluster yet") {
			return errorf("Agent says %q; NodePool says %q", agent, np)
		}
		return nil
	})
}
