package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hcp-dev/hcp/internal/release"
)

// olderClusterWithHosts runs hcp up with hosts lab hosts and creates the
// SingleReplica cluster example on the release before the default one, with
// a NodePool of replicas nodes; it returns the release and the cluster's
// kubeconfig.
func olderClusterWithHosts(t *testing.T, hosts, replicas int) (*upProcess, *release.Release, string) {
	t.Helper()
	old := olderRelease(t)
	up := startUp(t, t.TempDir(), "--agents", strconv.Itoa(hosts), agentFlags)
	gw := gatewayOf(t, up)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.waitAgentsKnown(t, hosts)
	up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", gw, "--control-plane-availability-policy", "SingleReplica", "--release-image", old.Image,
		"--node-pool-replicas", strconv.Itoa(replicas), "--wait", "--timeout", "5m")
	kc := writeFile(t, "kubeconfig-example", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "example"))
	return up, old, kc
}

// TestNodePoolReplaceUpgrade: a NodePool of two real nodes on release N-1
// with one spare lab host. A NodePool release newer than its cluster's is
// refused; once the control plane runs the new release, the NodePool's nodes
// are replaced one at a time with nodes of the new release, never fewer
// Ready nodes than replicas, and the Agents of the old nodes are unbound.
func TestNodePoolReplaceUpgrade(t *testing.T) {
	up, old, kc := olderClusterWithHosts(t, 3, 2)

	// nodes is name=Ready=kubeletVersion of each node.
	nodes := func() []string {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}={.status.nodeInfo.kubeletVersion}{" "}{end}`)
		return strings.Fields(out)
	}
	readyAt := func(version string) (ready int, all []string) {
		for _, n := range nodes() {
			f := strings.Split(n, "=")
			all = append(all, n)
			if len(f) == 3 && f[1] == "True" && (version == "" || f[2] == version) {
				ready++
			}
		}
		return ready, all
	}
	eventually(t, 3*time.Minute, "2 nodes Ready on "+old.Name, func() error {
		if n, all := readyAt(old.KubernetesVersion()); n != 2 || len(all) != 2 {
			return errorf("nodes %v", all)
		}
		return nil
	})
	_, before := readyAt("")
	// Node objects by UID: a host freed by the rollout may come back as a
	// new node of the same name.
	uids := func() []string {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={.items[*].metadata.uid}`)
		return strings.Fields(out)
	}
	uidsBefore := uids()
	bound := func() []string {
		out, _ := up.kubectl("", "-n", "clusters-example", "get", "agents", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.spec.clusterDeploymentName.name}{" "}{end}`)
		var names []string
		for _, a := range strings.Fields(out) {
			if name, cd, _ := strings.Cut(a, "="); cd != "" {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return names
	}
	oldAgents := bound()
	if len(oldAgents) != 2 {
		t.Fatalf("bound agents %v, want 2", oldAgents)
	}

	// Newer than the cluster: refused, nothing changes.
	up.mustKubectl("", "-n", "clusters", "patch", "nodepool", "example", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+rel.Image+`"}}}`)
	eventually(t, time.Minute, "the NodePool's newer release refused", func() error {
		c := up.condition("nodepool", "clusters", "example", "SupportedVersionSkew")
		if !strings.HasPrefix(c, "False/") || !strings.Contains(c, "newer than "+old.Name) {
			return errorf("SupportedVersionSkew=%q", c)
		}
		return nil
	})
	time.Sleep(5 * time.Second)
	if n, all := readyAt(old.KubernetesVersion()); n != 2 || len(all) != 2 {
		t.Fatalf("nodes changed while the NodePool's release was refused: %v", all)
	}

	// The control plane moves first; then the nodes follow.
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "example", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+rel.Image+`"}}}`)
	eventually(t, 5*time.Minute, "the control plane upgraded", func() error {
		if h := up.history(t, "example"); len(h) == 0 || h[0].Version != rel.Name || h[0].State != "Completed" {
			return errorf("history %+v", h)
		}
		return nil
	})
	unbound := map[string]bool{}
	fewest := 2
	eventually(t, 10*time.Minute, "every node replaced by one of "+rel.Name, func() error {
		n, all := readyAt("")
		if len(all) > 0 { // the hosted API answered
			fewest = min(fewest, n)
		}
		b := bound()
		for _, a := range oldAgents {
			if !slices.Contains(b, a) {
				unbound[a] = true
			}
		}
		newReady, _ := readyAt(rel.KubernetesVersion())
		if newReady != 2 || len(all) != 2 {
			return errorf("nodes %v, bound agents %v", all, b)
		}
		if v := up.mustKubectl("", "-n", "clusters", "get", "nodepool", "example", "-o", "jsonpath={.status.version}"); v != rel.Name {
			return errorf("NodePool status.version %q", v)
		}
		return nil
	})
	_, after := readyAt("")
	t.Logf("nodes before %v, after %v; agents of the old nodes unbound on the way: %v", before, after, unbound)
	if fewest < 2 {
		t.Errorf("only %d Ready nodes at one point of the rollout; want never fewer than the 2 replicas", fewest)
	}
	for _, u := range uids() {
		if slices.Contains(uidsBefore, u) {
			t.Errorf("node %s (UID) was not replaced: nodes before %v, after %v", u, before, after)
		}
	}
	for _, a := range oldAgents {
		if !unbound[a] {
			t.Errorf("agent %s of an old node was never unbound", a)
		}
	}
	if c := up.condition("nodepool", "clusters", "example", "UpdatingVersion"); !strings.HasPrefix(c, "False/") {
		t.Errorf("UpdatingVersion=%q after the rollout", c)
	}
}

// TestNodePoolInPlaceUpgrade: an InPlace NodePool's two real nodes move to
// the new release where they are: one at a time cordoned and drained, the
// host's kubelet replaced, the node uncordoned; names kept.
func TestNodePoolInPlaceUpgrade(t *testing.T) {
	up, old, kc := olderClusterWithHosts(t, 2, 0)
	up.mustKubectl(`apiVersion: hypershift.openshift.io/v1beta1
kind: NodePool
metadata:
  name: inplace
  namespace: clusters
spec:
  clusterName: example
  replicas: 2
  release:
    image: `+old.Image+`
  management:
    upgradeType: InPlace
  platform:
    type: Agent
`, "apply", "-f", "-")
	// nodes is name=Ready=kubeletVersion=unschedulable of each node.
	nodes := func() []string {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}={.status.nodeInfo.kubeletVersion}={.spec.unschedulable}{" "}{end}`)
		return strings.Fields(out)
	}
	on := func(version string) (n int, names []string) {
		for _, nd := range nodes() {
			f := strings.Split(nd, "=")
			names = append(names, f[0])
			if len(f) == 4 && f[1] == "True" && f[2] == version && f[3] != "true" {
				n++
			}
		}
		slices.Sort(names)
		return n, names
	}
	var before []string
	eventually(t, 4*time.Minute, "2 nodes Ready on "+old.Name, func() error {
		n, names := on(old.KubernetesVersion())
		if n != 2 || len(names) != 2 {
			return errorf("nodes %v", nodes())
		}
		before = names
		return nil
	})
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "example", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+rel.Image+`"}}}`)
	eventually(t, 5*time.Minute, "the control plane upgraded", func() error {
		if h := up.history(t, "example"); len(h) == 0 || h[0].Version != rel.Name || h[0].State != "Completed" {
			return errorf("history %+v", h)
		}
		return nil
	})
	up.mustKubectl("", "-n", "clusters", "patch", "nodepool", "inplace", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+rel.Image+`"}}}`)
	mostCordoned := 0
	var steps []string
	eventually(t, 8*time.Minute, "both nodes on "+rel.Name+" where they were", func() error {
		cordoned := 0
		for _, nd := range nodes() {
			if strings.HasSuffix(nd, "=true") {
				cordoned++
			}
		}
		mostCordoned = max(mostCordoned, cordoned)
		if c := up.condition("nodepool", "clusters", "inplace", "UpdatingVersion"); strings.Contains(c, "now: ") && !slices.Contains(steps, c) {
			steps = append(steps, c)
		}
		n, names := on(rel.KubernetesVersion())
		if n != 2 {
			return errorf("nodes %v", nodes())
		}
		if !slices.Equal(names, before) {
			t.Fatalf("node names changed: %v, were %v", names, before)
		}
		if v := up.mustKubectl("", "-n", "clusters", "get", "nodepool", "inplace", "-o", "jsonpath={.status.version}"); v != rel.Name {
			return errorf("NodePool status.version %q", v)
		}
		return nil
	})
	t.Logf("in-place steps seen: %q", steps)
	if mostCordoned > 1 {
		t.Errorf("%d nodes were cordoned at once; want at most 1", mostCordoned)
	}
	if mostCordoned == 0 {
		t.Errorf("no node was seen cordoned during the upgrade")
	}
}
