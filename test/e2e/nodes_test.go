package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// nodeHost starts a host that installs into its own root directory as a
// simulated node, its kubelet endpoint on a free port (the hosts share this
// machine's network, where real nodes would collide). Real nodes are
// TestRealNodesRunPods's.
func nodeHost(t *testing.T, script, dir, name string) *labHost {
	return startHost(t, script, dir, name, "--root", filepath.Join(dir, "root"), "--kubelet-port", "0", "--simulated-node")
}

// TestSeedFlowNodes runs the seed's Agent platform flow end to end: an InfraEnv
// in clusters-example, three hosts, hcp create cluster agent with a NodePool of
// two; agents are bound and installed, nodes join and are Ready, Machines
// reference them. Scaling down gives an agent back (pending a reboot into
// discovery); scaling beyond the free agents says NoSuitableAgents until a
// new host arrives.
func TestSeedFlowNodes(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "hosts", "--namespace", "clusters-example", "--pull-secret", pull, "--auto-approve")
	script := up.scriptURL(t, "clusters-example", "hosts")
	hosts := map[string]*labHost{}
	for i := range 3 {
		name := fmt.Sprintf("host-%d", i)
		hosts[name] = nodeHost(t, script, t.TempDir(), name)
	}
	for _, h := range hosts {
		up.waitAgent(t, "clusters-example", h.hostID(t), "{.status.debugInfo.state}", "known-unbound")
	}
	out := up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "2", "--wait", "--timeout", "8m")
	if !strings.Contains(out, "NodePool clusters/example is Ready") {
		t.Errorf("hcp create cluster --wait does not report the nodes:\n%s", out)
	}
	kc := writeFile(t, "kubeconfig-example", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "example"))
	nodes := func() []string {
		out, err := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}={.spec.providerID} {end}`)
		if err != nil {
			return []string{"error: " + out}
		}
		return strings.Fields(out)
	}
	waitNodes := func(n int) {
		t.Helper()
		eventually(t, 4*time.Minute, fmt.Sprintf("%d Ready nodes and NodePool Ready", n), func() error {
			got := nodes()
			if len(got) != n {
				return errorf("nodes %q", got)
			}
			for _, nd := range got {
				if f := strings.Split(nd, "="); len(f) != 3 || f[1] != "True" || !strings.HasPrefix(f[2], "agent://") {
					return errorf("node %q", nd)
				}
			}
			if c := up.condition("np", "clusters", "example", "Ready"); !strings.HasPrefix(c, "True/") {
				return errorf("NodePool Ready=%q", c)
			}
			refs := strings.Fields(up.mustKubectl("", "-n", "clusters-example", "get", "machines", "-o", "jsonpath={.items[*].status.nodeRef.name}"))
			if len(refs) != n {
				return errorf("machine nodeRefs %q", refs)
			}
			return nil
		})
	}
	waitNodes(2)
	bound := func() map[string]string {
		out := up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o",
			`jsonpath={range .items[*]}{.status.inventory.hostname}={.status.debugInfo.state}={.spec.clusterDeploymentName.name} {end}`)
		m := map[string]string{}
		for _, f := range strings.Fields(out) {
			p := strings.SplitN(f, "=", 2)
			m[p[0]] = p[1]
		}
		return m
	}
	installed := 0
	for _, st := range bound() {
		if st == "added-to-existing-cluster=example" {
			installed++
		}
	}
	if installed != 2 {
		t.Errorf("agents: %v, want 2 added-to-existing-cluster", bound())
	}
	// The node really is the host: its simulated kubelet says so on the Node.
	if out, _ := runKubectl(kc, "", "get", "nodes", "-o", "jsonpath={.items[0].metadata.labels.node\\.hcp\\.dev/simulated}"); out != "true" {
		t.Errorf("node is not marked simulated: %q", out)
	}
	// The hosted API server reaches each node through its konnectivity tunnel.
	for _, nd := range nodes() {
		name := strings.Split(nd, "=")[0]
		eventually(t, time.Minute, "node proxy to "+name, func() error {
			out, err := runKubectl(kc, "", "get", "--raw", "/api/v1/nodes/"+name+"/proxy/healthz")
			if err != nil || strings.TrimSpace(out) != "ok" {
				return errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	// A pod scheduled to the nodes runs (KWOK semantics).
	guestKubectl(t, kc, "create", "deployment", "web", "--image", "registry.example.com/web:1", "--replicas", "2")
	eventually(t, time.Minute, "pods Running", func() error {
		out, _ := runKubectl(kc, "", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}")
		if f := strings.Fields(out); len(f) != 2 || f[0] != "Running" || f[1] != "Running" {
			return errorf("phases %q", out)
		}
		return nil
	})

	// Scale down: one node is drained and deleted, its agent unbound and
	// waiting for its host to boot into discovery.
	before := nodes()
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "1")
	waitNodes(1)
	var released string
	eventually(t, 2*time.Minute, "an agent unbinding-pending-user-action", func() error {
		for host, st := range bound() {
			if st == "unbinding-pending-user-action=" {
				released = host
				return nil
			}
		}
		return errorf("agents %v", bound())
	})
	left := nodes()
	if !slices.Contains(before, left[0]) {
		t.Errorf("nodes before %v, after %v", before, left)
	}
	// The removed node was drained: the Deployment's pods run on the one left.
	eventually(t, 2*time.Minute, "pods rescheduled onto the remaining node", func() error {
		out, _ := runKubectl(kc, "", "get", "pods", "-l", "app=web", "--field-selector", "status.phase=Running", "-o", "jsonpath={.items[*].spec.nodeName}")
		want := strings.Split(left[0], "=")[0]
		if f := strings.Fields(out); len(f) != 2 || f[0] != want || f[1] != want {
			return errorf("running pods on %q, want two on %s", out, want)
		}
		return nil
	})
	// Booted into discovery again, the host is free; scaling to 3 uses it.
	h := hosts[released]
	h.stop()
	hosts[released] = nodeHost(t, script, h.dir, h.name)
	up.waitAgent(t, "clusters-example", h.hostID(t), "{.status.debugInfo.state}", "known-unbound")
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "3")
	waitNodes(3)
	for host, st := range bound() {
		if st != "added-to-existing-cluster=example" {
			t.Errorf("agent of %s: %s", host, st)
		}
	}

	// Beyond the free agents: NoSuitableAgents until a new host registers.
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "4")
	eventually(t, time.Minute, "NoSuitableAgents", func() error {
		out := up.mustKubectl("", "-n", "clusters-example", "get", "agentmachines", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="AgentReserved")].reason}`)
		if !strings.Contains(out, "NoSuitableAgents") {
			return errorf("AgentReserved reasons %q", out)
		}
		return nil
	})
	dir := t.TempDir()
	hosts["host-3"] = nodeHost(t, script, dir, "host-3")
	waitNodes(4)
	if _, err := os.Stat(filepath.Join(dir, "root", "etc/kubernetes/kubeconfig-bootstrap")); err != nil {
		t.Errorf("the Ignition was not applied under the host's root: %v", err)
	}

	// Destroying the cluster releases every agent and leaves no machines.
	if out := up.mustHCP("destroy", "cluster", "agent", "--name", "example", "--namespace", "clusters"); !strings.Contains(out, "deleted") {
		t.Errorf("destroy:\n%s", out)
	}
	eventually(t, 2*time.Minute, "agents released", func() error {
		for host, st := range bound() {
			if st != "unbinding-pending-user-action=" {
				return errorf("agent of %s: %s", host, st)
			}
		}
		return nil
	})
	for _, kind := range []string{"machines", "agentmachines", "machinedeployments", "clusters.cluster.x-k8s.io"} {
		if out := up.mustKubectl("", "-n", "clusters-example", "get", kind, "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("left after destroy: %s", out)
		}
	}
}

// TestQuickstart runs what make quickstart runs: lab hosts in their own network
// namespaces and the example cluster with a NodePool of two, whose nodes are
// real kubelets with containerd, Ready and reachable from the hosted API
// server through konnectivity.
func TestQuickstart(t *testing.T) {
	up := startUp(t, t.TempDir(), "--example", "--agents", "3", agentFlags)
	eventually(t, 4*time.Minute, "the example NodePool Ready", func() error {
		if out := up.output(); !strings.Contains(out, "NodePool clusters/example is Ready: 2 of 2 nodes are ready") {
			return errorf("not yet")
		}
		return nil
	})
	kc := writeFile(t, "kubeconfig-example", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "example"))
	out := guestKubectl(t, kc, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}={.status.addresses[?(@.type=="InternalIP")].address}={.status.nodeInfo.containerRuntimeVersion}={.status.nodeInfo.kubeletVersion}={.metadata.labels.node\.hcp\.dev/simulated} {end}`)
	nodes := strings.Fields(out)
	if len(nodes) != 2 {
		t.Fatalf("nodes: %q", out)
	}
	for _, nd := range nodes {
		f := strings.Split(nd, "=")
		if len(f) != 6 || !strings.HasPrefix(f[0], "lab-host-") || f[1] != "True" || !strings.HasPrefix(f[3], "containerd://") ||
			f[4] != rel.Components["kubelet"] || f[5] != "" {
			t.Errorf("node %q (name=Ready=address=runtime=kubelet=simulated)", nd)
		}
		if got := strings.TrimSpace(guestKubectl(t, kc, "get", "--raw", "/api/v1/nodes/"+f[0]+"/proxy/healthz")); got != "ok" {
			t.Errorf("node proxy %s: %q", f[0], got)
		}
	}
}

// TestKillUpMidScale kills hcp up with SIGKILL while a NodePool scales up and
// starts it again: everything converges, every node joins once, and no Agent
// is bound twice or left behind.
func TestKillUpMidScale(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir, agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "hosts", "--namespace", "clusters-example", "--pull-secret", pull, "--auto-approve")
	script := up.scriptURL(t, "clusters-example", "hosts")
	for i := range 3 {
		h := nodeHost(t, script, t.TempDir(), fmt.Sprintf("host-%d", i))
		up.waitAgent(t, "clusters-example", h.hostID(t), "{.status.debugInfo.state}", "known-unbound")
	}
	up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "0", "--wait")
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "3")
	eventually(t, time.Minute, "binding under way", func() error {
		if out := up.mustKubectl("", "-n", "clusters-example", "get", "agentmachines", "-o", "name"); len(strings.Fields(out)) == 0 {
			return errorf("no AgentMachines yet")
		}
		return nil
	})
	up.kill()
	up = startUp(t, dataDir, agentFlags)
	eventually(t, 4*time.Minute, "3 nodes and NodePool Ready after the restart", func() error {
		if c := up.condition("np", "clusters", "example", "Ready"); !strings.HasPrefix(c, "True/") {
			return errorf("NodePool Ready=%q", c)
		}
		return nil
	})
	for kind, want := range map[string]int{"machines": 3, "agentmachines": 3} {
		if n := len(strings.Fields(up.mustKubectl("", "-n", "clusters-example", "get", kind, "-o", "name"))); n != want {
			t.Errorf("%d %s, want %d", n, kind, want)
		}
	}
	refs := strings.Fields(up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o", `jsonpath={range .items[*]}{.metadata.labels.agentMachineRef}={.status.debugInfo.state} {end}`))
	seen := map[string]bool{}
	for _, r := range refs {
		f := strings.Split(r, "=")
		if f[0] == "" || seen[f[0]] || f[1] != "added-to-existing-cluster" {
			t.Errorf("agents: %v", refs)
			break
		}
		seen[f[0]] = true
	}
	kc := writeFile(t, "kubeconfig-example", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "example"))
	if n := len(strings.Fields(guestKubectl(t, kc, "get", "nodes", "-o", "name"))); n != 3 {
		t.Errorf("%d nodes, want 3", n)
	}
}

// TestAgentLosesItsNetwork takes a lab host's link down: its Agent becomes
// disconnected and no machine binds it (NoSuitableAgents says why); with the
// link back it reconnects and is bound; the link goes down again during the
// installation, the Agent says so, and with the link back it installs and
// joins.
func TestAgentLosesItsNetwork(t *testing.T) {
	up := startUp(t, t.TempDir(), "--agents", "1", agentFlags, "--agent-disconnect-timeout=4s")
	var ns, gateway string
	eventually(t, 30*time.Second, "the lab host's network namespace", func() error {
		out := up.output()
		if _, rest, ok := strings.Cut(out, "in network namespaces "); ok {
			ns = strings.TrimSuffix(strings.Fields(rest)[0], "..")
		}
		if _, rest, ok := strings.Cut(out, "infrastructure service: https://"); ok {
			gateway, _, _ = strings.Cut(strings.Fields(rest)[0], ":")
		}
		if ns == "" || gateway == "" {
			return errorf("hcp up did not print them:\n%s", out)
		}
		return nil
	})
	link := func(state string) {
		if out, err := exec.Command("ip", "-n", ns, "link", "set", "eth0", state).CombinedOutput(); err != nil {
			t.Fatalf("ip link set %s: %v %s", state, err, out)
		}
	}
	state := func() string {
		return up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o", "jsonpath={.items[*].status.debugInfo.state}")
	}
	eventually(t, time.Minute, "the host known-unbound", func() error {
		if s := state(); s != "known-unbound" {
			return errorf("state %q", s)
		}
		return nil
	})
	link("down")
	t.Cleanup(func() { _ = exec.Command("ip", "-n", ns, "link", "set", "eth0", "up").Run() })
	eventually(t, time.Minute, "the host disconnected-unbound", func() error {
		if s := state(); s != "disconnected-unbound" {
			return errorf("state %q", s)
		}
		return nil
	})
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", gateway, "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "1")
	eventually(t, 2*time.Minute, "NoSuitableAgents naming the disconnected host", func() error {
		out := up.mustKubectl("", "-n", "clusters-example", "get", "agentmachines", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="AgentReserved")].message}`)
		if !strings.Contains(out, "is not connected") {
			return errorf("AgentReserved %q", out)
		}
		return nil
	})
	// During the installation: the link goes down the moment the host is
	// bound, before it has become a node. The Agent says it is disconnected
	// and the NodePool waits; with the link back the installation resumes.
	link("up")
	bound := func() bool {
		return up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o", "jsonpath={.items[*].spec.clusterDeploymentName.name}") != ""
	}
	for deadline := time.Now().Add(2 * time.Minute); !bound(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the reconnected host was not bound; agents: %s", state())
		}
	}
	link("down")
	eventually(t, time.Minute, "the bound host disconnected", func() error {
		if s := state(); s != "disconnected" {
			return errorf("state %q", s)
		}
		return nil
	})
	if c := up.condition("np", "clusters", "example", "Ready"); strings.HasPrefix(c, "True/") {
		t.Errorf("NodePool Ready=%q while its only host is cut off before it joined", c)
	}
	link("up")
	eventually(t, 3*time.Minute, "the host bound, installed and Ready", func() error {
		if s := state(); s != "added-to-existing-cluster" {
			return errorf("state %q", s)
		}
		if c := up.condition("np", "clusters", "example", "Ready"); !strings.HasPrefix(c, "True/") {
			return errorf("NodePool Ready=%q", c)
		}
		return nil
	})
}
