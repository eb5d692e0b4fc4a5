package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// webDeployment is agnhost's netexec on two pods, one per node.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: %s
        args: ["netexec", "--http-port=8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
`

// TestRealNodesRunPods runs the seed's flow on lab hosts that are real nodes
// (kubelet, containerd and runc in each host's own network and mount
// namespaces) and uses the cluster as a user would: a Deployment spread on
// both nodes, a Service reached by its DNS name from a pod on one node with
// answers from pods on both, logs, exec and port-forward through the control
// plane, an upstream image name pulled through the image content sources'
// mirror, a bad image's pull error, kill -9 of a node's kubelet and
// containerd, a kubelet kept down until the node is NotReady and then back to
// Ready, and a scale down that moves the pods and leaves nothing of the
// old node on its host, which the next scale up reuses.
func TestRealNodesRunPods(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir, "--agents", "2", agentFlags)
	gw := gatewayOf(t, up)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	icsp := writeFile(t, "icsp.yaml", "- mirrors:\n  - registry.hcp.test/library\n  source: docker.io/library\n")
	up.waitAgentsKnown(t, 2)
	up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", gw, "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--image-content-sources", icsp, "--node-pool-replicas", "2", "--wait", "--timeout", "5m")
	kc := writeFile(t, "kubeconfig-example", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "example"))
	k := func(args ...string) string { t.Helper(); return guestKubectl(t, kc, args...) }

	// Real kubelets: containerd, the release's kubelet, no simulated mark.
	eventually(t, 2*time.Minute, "2 real nodes Ready", func() error {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}={.status.nodeInfo.containerRuntimeVersion}={.status.nodeInfo.kubeletVersion}={.metadata.labels.node\.hcp\.dev/simulated}={.spec.podCIDR} {end}`)
		nodes := strings.Fields(out)
		if len(nodes) != 2 {
			return errorf("nodes %q", out)
		}
		for _, nd := range nodes {
			f := strings.Split(nd, "=")
			if len(f) != 6 || f[1] != "True" || f[2] != "containerd://"+rel.Components["containerd"][1:] || f[3] != rel.Components["kubelet"] || f[4] != "" || f[5] == "" {
				return errorf("node %q (name=Ready=runtime=kubelet=simulated=podCIDR)", nd)
			}
		}
		return nil
	})
	// Cluster DNS runs in the cluster.
	eventually(t, 2*time.Minute, "CoreDNS ready", func() error {
		if out, _ := runKubectl(kc, "", "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.status.readyReplicas}"); out != "1" {
			return errorf("ready replicas %q", out)
		}
		return nil
	})

	agnhost := "registry.hcp.test/e2e-test-images/agnhost:" + rel.Components["agnhost"]
	if _, err := runKubectl(kc, fmt.Sprintf(webDeployment, agnhost), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	k("expose", "deployment", "web", "--port", "80", "--target-port", "8080")
	k("rollout", "status", "deployment/web", "--timeout", "3m")
	pods := strings.Fields(k("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName} {end}`))
	if len(pods) != 2 || strings.Split(pods[0], "=")[1] == strings.Split(pods[1], "=")[1] {
		t.Fatalf("web pods are not one per node: %v", pods)
	}
	podA := strings.Split(pods[0], "=")[0]

	// From pod A, the Service by its DNS name answers from both pods
	// (agnhost's /dial), reached through kubectl port-forward.
	port := freePort(t)
	pf := exec.Command(kubectl, "--kubeconfig", kc, "port-forward", "pod/"+podA, fmt.Sprintf("%d:8080", port))
	pfOut, _ := pf.StdoutPipe()
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
	go func() { _, _ = io.Copy(io.Discard, pfOut) }()
	var answers string
	eventually(t, time.Minute, "answers from both pods through the Service's DNS name", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/dial?request=hostname&protocol=http&host=web.default.svc.cluster.local&port=80&tries=20", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers = string(b)
		for _, p := range pods {
			if !strings.Contains(answers, strings.Split(p, "=")[0]) {
				return errorf("no answer from %s: %s", p, answers)
			}
		}
		return nil
	})
	if logs := k("logs", podA); !strings.Contains(logs, "/hostname") {
		t.Errorf("kubectl logs %s:\n%s", podA, logs)
	}
	if got := strings.TrimSpace(k("exec", podA, "--", "cat", "/etc/hostname")); got != podA {
		t.Errorf("kubectl exec: hostname %q, want %q", got, podA)
	}

	// An upstream name comes through the mirror; a missing image says why.
	k("run", "upstream", "--image=docker.io/library/busybox:"+rel.Components["busybox"], "--", "sleep", "3600")
	k("run", "missing", "--image=registry.hcp.test/no/such-image:1")
	eventually(t, 2*time.Minute, "the mirrored image running and the missing one refused", func() error {
		if out, _ := runKubectl(kc, "", "get", "pod", "upstream", "-o", "jsonpath={.status.phase}"); out != "Running" {
			return errorf("upstream pod %q", out)
		}
		out, _ := runKubectl(kc, "", "get", "pod", "missing", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}")
		if !strings.HasPrefix(out, "ErrImagePull") && !strings.HasPrefix(out, "ImagePullBackOff") || !strings.Contains(out, "not found") {
			return errorf("missing image pod: %q", out)
		}
		return nil
	})

	// kill -9 the kubelet and containerd of pod A's node: the pod keeps
	// running (same container) and the node is Ready again.
	nodeA := strings.Split(pods[0], "=")[1]
	root := filepath.Join(dataDir, "lab", nodeA, "root")
	before := k("get", "pod", podA, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	for _, bin := range []string{"kubelet", "containerd"} {
		for _, pid := range nodeUnit(t, root, bin) {
			_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
		}
	}
	eventually(t, 2*time.Minute, "the node's units back", func() error {
		if len(nodeUnit(t, root, "kubelet")) == 0 || len(nodeUnit(t, root, "containerd")) == 0 {
			return errorf("kubelet or containerd not running again")
		}
		return nil
	})
	eventually(t, 2*time.Minute, "pod A running in the same container", func() error {
		out, _ := runKubectl(kc, "", "get", "pod", podA, "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].ready}")
		if out != before+" true" {
			return errorf("pod A: %q, was %q", out, before)
		}
		return nil
	})

	// The kubelet kept down (killed again as soon as it is restarted) for
	// longer than the controller manager's node grace period: the node goes
	// NotReady while pod A keeps running; once the kubelet stays up, the node
	// is Ready again with the same container.
	stopKilling, killing := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killing)
		for {
			for _, pid := range nodeUnit(t, root, "kubelet") {
				_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
			}
			select {
			case <-stopKilling:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopKilling); <-killing }) }
	t.Cleanup(stop)
	readyStatus := func() string {
		out, _ := runKubectl(kc, "", "get", "node", nodeA, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out
	}
	eventually(t, 3*time.Minute, "node A NotReady while its kubelet is down", func() error {
		if s := readyStatus(); s == "True" {
			return errorf("node A is still Ready")
		}
		return nil
	})
	stop()
	eventually(t, 2*time.Minute, "node A Ready again and pod A in the same container", func() error {
		if s := readyStatus(); s != "True" {
			return errorf("node A Ready=%q", s)
		}
		out, _ := runKubectl(kc, "", "get", "pod", podA, "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].ready}")
		if out != before+" true" {
			return errorf("pod A: %q, was %q", out, before)
		}
		return nil
	})

	// kill -9 hcp up: the nodes' pods keep running, and the next hcp up
	// adopts them (the same containers, Ready, reachable).
	up.kill()
	up = startUp(t, dataDir, "--agents", "2", agentFlags)
	webPods := k("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.status.containerStatuses[0].containerID} {end}`)
	eventually(t, 2*time.Minute, "the web pods adopted", func() error {
		out, _ := runKubectl(kc, "", "get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.status.containerStatuses[0].containerID}={.status.containerStatuses[0].ready} {end}`)
		for _, id := range strings.Fields(webPods) {
			if !strings.Contains(out, id+"=true") {
				return errorf("web pods %q, had containers %q", out, webPods)
			}
		}
		if n, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`); n != "True True" {
			return errorf("nodes Ready: %q", n)
		}
		return nil
	})
	// The nodes' tunnels come back with their konnectivity agents.
	eventually(t, time.Minute, "kubectl exec after the restart", func() error {
		out, err := runKubectl(kc, "", "exec", podA, "--", "cat", "/etc/hostname")
		if err != nil || strings.TrimSpace(out) != podA {
			return errorf("%v: %s", err, out)
		}
		return nil
	})

	// Scale down to one node: the pods move to the other node, and the
	// released host keeps nothing of the old node.
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "1")
	eventually(t, 3*time.Minute, "one node left and the web pods on it", func() error {
		nodes := strings.Fields(k("get", "nodes", "-o", "name"))
		if len(nodes) != 1 {
			return errorf("nodes %v", nodes)
		}
		out := k("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.spec.nodeName}={.status.phase} {end}`)
		for _, p := range strings.Fields(out) {
			if "node/"+strings.Split(p, "=")[0] != nodes[0] || !strings.HasSuffix(p, "=Running") {
				return errorf("web pods %q on %v", out, nodes)
			}
		}
		if len(strings.Fields(out)) != 2 {
			return errorf("web pods %q", out)
		}
		return nil
	})
	gone := strings.TrimPrefix(strings.Fields(k("get", "nodes", "-o", "name"))[0], "node/")
	gone = map[bool]string{true: "lab-host-1", false: "lab-host-0"}[gone == "lab-host-0"]
	goneRoot := filepath.Join(dataDir, "lab", gone, "root")
	eventually(t, 2*time.Minute, "nothing left of "+gone+"'s node", func() error {
		if p := nodeUnit(t, goneRoot, ""); len(p) > 0 {
			return errorf("processes of the old node still run: %v", p)
		}
		for _, d := range []string{"var/lib/kubelet", "var/lib/containerd", "run/containerd"} {
			if _, err := os.Stat(filepath.Join(goneRoot, d)); err == nil {
				return errorf("%s is still there", filepath.Join(goneRoot, d))
			}
		}
		return nil
	})
	// The host is back in discovery and the next scale up takes it.
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "2")
	eventually(t, 4*time.Minute, "2 Ready nodes again", func() error {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if got := strings.Fields(out); len(got) != 2 || strings.Count(out, "=True") != 2 || !strings.Contains(out, gone+"=") {
			return errorf("nodes %q", out)
		}
		return nil
	})
}

// nodeUnit are the pids of a lab host's node processes whose command is
// /usr/local/bin/<bin> (every process of the node for ""), known by the
// node's mount namespace holding the host's run/containerd.
func nodeUnit(t *testing.T, root, bin string) []int {
	t.Helper()
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		mi, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err != nil || !strings.Contains(string(mi), filepath.Join(root, "run/containerd")+" /run/containerd ") {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bin == "" || strings.HasPrefix(string(cmd), "/usr/local/bin/"+bin+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}
