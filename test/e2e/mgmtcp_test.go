package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// zoneOfManagementNode is the zone hcp up gives management node
// management-<i>.
func zoneOfManagementNode(node string) string {
	var i int
	if _, err := fmt.Sscanf(node, "management-%d", &i); err != nil {
		return ""
	}
	return fmt.Sprintf("rack%d", i%3+1)
}

// placed is each pod of a control plane namespace as app=node=ready.
func (u *upProcess) placed(t *testing.T, ns string) map[string][]string {
	t.Helper()
	out := u.mustKubectl("", "-n", ns, "get", "pods", "-o",
		`jsonpath={range .items[*]}{.metadata.labels.app}={.spec.nodeName}={.status.conditions[?(@.type=="Ready")].status} {end}`)
	byApp := map[string][]string{}
	for _, p := range strings.Fields(out) {
		app, rest, _ := strings.Cut(p, "=")
		byApp[app] = append(byApp[app], rest)
	}
	return byApp
}

// hcp up --management-nodes 3 runs hosted control planes as pods on three
// real nodes in three zones: a HighlyAvailable cluster spreads one etcd
// member and one API server per zone, is reached through its NodePort and
// joins real workers; its namespace enforces restricted Pod Security and its
// NetworkPolicies keep other namespaces away from etcd and the controller
// manager; a drain of one management node fails none of a client's
// requests; a node dedicated to one cluster runs its pods and no other's; a
// SingleReplica cluster's etcd pod comes back with its data.
func TestControlPlanesOnManagementNodes(t *testing.T) {
	up := startUp(t, t.TempDir(), "--management-nodes", "3", "--agents", "2", agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.waitAgentsKnown(t, 2)
	up.mustHCP("create", "cluster", "agent", "--name", "ha", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--control-plane-availability-policy", "HighlyAvailable", "--release-image", rel.Image, "--node-pool-replicas", "2", "--wait", "--timeout", "10m")

	// One etcd member and one API server per zone, every pod ready.
	byApp := up.placed(t, "clusters-ha")
	for _, app := range []string{"etcd", "kube-apiserver", "konnectivity-server"} {
		zones := map[string]bool{}
		for _, p := range byApp[app] {
			node, ready, _ := strings.Cut(p, "=")
			zones[zoneOfManagementNode(node)] = true
			if ready != "True" {
				t.Errorf("%s pod on %s not Ready", app, node)
			}
		}
		if len(byApp[app]) != 3 || len(zones) != 3 || zones[""] {
			t.Errorf("%s pods on %v, want one in each of rack1, rack2, rack3", app, byApp[app])
		}
	}
	for _, app := range []string{"kube-controller-manager", "kube-scheduler"} {
		if len(byApp[app]) != 2 {
			t.Errorf("%s pods: %v, want 2", app, byApp[app])
		}
	}
	if img := up.mustKubectl("", "-n", "clusters-ha", "get", "pods", "-l", "app=etcd", "-o", "jsonpath={.items[0].spec.containers[0].image}"); !strings.HasPrefix(img, "registry.hcp.test/hcp/control-plane@sha256:") {
		t.Errorf("etcd image %q, want hcp's control plane image by digest", img)
	}

	// The admin kubeconfig reaches the API through the published NodePort
	// on a management node's address; the real workers joined and run a pod.
	kc := writeFile(t, "kubeconfig-ha", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "ha"))
	nodePort := up.mustKubectl("", "-n", "clusters-ha", "get", "service", "kube-apiserver", "-o", "jsonpath={.spec.ports[0].nodePort}")
	nodeIP := up.mustKubectl("", "get", "node", "management-0", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
	if b, err := os.ReadFile(kc); err != nil || !strings.Contains(string(b), "server: https://"+nodeIP+":"+nodePort) {
		t.Errorf("admin kubeconfig does not name https://%s:%s (%v):\n%s", nodeIP, nodePort, err, b)
	}
	eventually(t, 2*time.Minute, "2 workers Ready", func() error {
		out, _ := runKubectl(kc, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}`)
		if strings.Count(out, "True") != 2 {
			return errorf("nodes Ready: %q", out)
		}
		return nil
	})
	agnhost := "registry.hcp.test/e2e-test-images/agnhost:" + rel.Components["agnhost"]
	guestKubectl(t, kc, "run", "web", "--image="+agnhost, "--", "netexec", "--http-port=8080")
	eventually(t, 2*time.Minute, "a pod running on a worker, its logs through konnectivity", func() error {
		out, err := runKubectl(kc, "", "logs", "web")
		if err != nil || !strings.Contains(out, "Started HTTP server") {
			return errorf("logs: %v %q", err, out)
		}
		return nil
	})

	// Restricted Pod Security on the control plane namespace: every pod
	// above was admitted under it.
	labels := up.mustKubectl("", "get", "namespace", "clusters-ha", "-o", `jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`)
	if labels != "restricted" {
		t.Errorf("clusters-ha enforces %q, want restricted", labels)
	}

	// NetworkPolicies: from another namespace, etcd and the controller
	// manager are out of reach, the API server is not.
	up.mustKubectl(`apiVersion: v1
kind: Pod
metadata: {name: outsider, namespace: default}
spec:
  tolerations: [{key: hypershift.openshift.io/control-plane, operator: Exists, effect: NoSchedule}]
  containers: [{name: c, image: `+agnhost+`, args: [pause]}]
`, "apply", "-f", "-")
	eventually(t, 2*time.Minute, "the outsider pod Ready", func() error {
		if out, _ := up.kubectl("", "get", "pod", "outsider", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
			return errorf("Ready=%q", out)
		}
		return nil
	})
	ipOf := func(app string) string {
		return up.mustKubectl("", "-n", "clusters-ha", "get", "pods", "-l", "app="+app, "-o", "jsonpath={.items[0].status.podIP}")
	}
	for target, reachable := range map[string]bool{ipOf("etcd") + ":2379": false, ipOf("kube-controller-manager") + ":10257": false,
		ipOf("kube-apiserver") + ":6443": true} {
		_, err := up.kubectl("", "exec", "outsider", "--", "/agnhost", "connect", "--timeout=3s", target)
		if (err == nil) != reachable {
			t.Errorf("a pod of namespace default connects to %s: %v, want %v", target, err == nil, reachable)
		}
	}

	// Gone before the drain, which refuses pods without a controller
	// (agnhost pause waits out the grace period).
	up.mustKubectl("", "delete", "pod", "outsider", "--grace-period=1")

	// Drain a management node while a client reads and writes every 100 ms.
	failures, total := pollDuring(t, kc, func() {
		up.mustKubectl("", "drain", "management-2", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=5m")
	})
	t.Logf("during the drain of management-2: %d of %d requests failed", failures, total)
	if failures > 0 || total < 20 {
		t.Errorf("during the drain: %d of %d requests failed", failures, total)
	}
	// The pods of rack3 have nowhere to go (one per zone; etcd's volume is
	// on the drained node): Pending, with the scheduler's reason in the
	// HostedCluster's status.
	eventually(t, 2*time.Minute, "the scheduler's reason in the HostedCluster's status", func() error {
		msg := up.mustKubectl("", "-n", "clusters", "get", "hostedcluster", "ha", "-o", `jsonpath={.status.conditions[?(@.type=="Degraded")].message}`)
		if !strings.Contains(msg, "0/3 nodes are available") {
			return errorf("Degraded: %q", msg)
		}
		return nil
	})
	if out, _ := runKubectl(kc, "", "get", "--raw", "/readyz"); out != "ok" {
		t.Errorf("the hosted API after the drain: %q", out)
	}
	up.mustKubectl("", "uncordon", "management-2")
	eventually(t, 5*time.Minute, "the control plane back in three zones", func() error {
		for _, app := range []string{"etcd", "kube-apiserver"} {
			ps := up.placed(t, "clusters-ha")[app]
			sort.Strings(ps)
			if len(ps) != 3 || strings.Count(strings.Join(ps, " "), "=True") != 3 {
				return errorf("%s: %v", app, ps)
			}
		}
		return nil
	})

	// Dedicated isolation, as the seed describes it: a node labelled and
	// tainted hypershift.openshift.io/cluster=<control plane namespace> runs
	// that cluster's pods and no other control plane's.
	up.mustHCP("destroy", "cluster", "agent", "--name", "ha")
	up.mustKubectl("", "label", "node", "management-1", "hypershift.openshift.io/cluster=clusters-dedicated")
	up.mustKubectl("", "taint", "node", "management-1", "hypershift.openshift.io/cluster=clusters-dedicated:NoSchedule")
	up.mustHCP("create", "cluster", "agent", "--name", "dedicated", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0",
		"--annotations", "hypershift.openshift.io/topology=dedicated", "--wait", "--timeout", "8m")
	onlyDedicated := func() {
		t.Helper()
		eventually(t, time.Minute, "management-1 running the dedicated cluster's 5 pods and no other control plane's", func() error {
			out := up.mustKubectl("", "get", "pods", "-A", "-l", "hypershift.openshift.io/hosted-control-plane", "-o",
				`jsonpath={range .items[*]}{.metadata.namespace}={.spec.nodeName} {end}`)
			n := 0
			for _, p := range strings.Fields(out) {
				ns, node, _ := strings.Cut(p, "=")
				if (ns == "clusters-dedicated") != (node == "management-1") {
					return errorf("control plane pod of %s on %s: %s", ns, node, out)
				}
				if ns == "clusters-dedicated" {
					n++
				}
			}
			if n != 5 {
				return errorf("%d pods of clusters-dedicated, want 5: %s", n, out)
			}
			return nil
		})
	}
	onlyDedicated()

	// SingleReplica: the etcd pod deleted comes back on its volume.
	up.mustHCP("create", "cluster", "agent", "--name", "single", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0", "--wait", "--timeout", "8m")
	skc := writeFile(t, "kubeconfig-single", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "single"))
	guestKubectl(t, skc, "create", "configmap", "kept", "--from-literal=data=before-the-pod-went")
	uid := up.mustKubectl("", "-n", "clusters-single", "get", "pod", "etcd-0", "-o", "jsonpath={.metadata.uid}")
	up.mustKubectl("", "-n", "clusters-single", "delete", "pod", "etcd-0")
	eventually(t, 3*time.Minute, "a new etcd pod serving the old data", func() error {
		if now, _ := up.kubectl("", "-n", "clusters-single", "get", "pod", "etcd-0", "-o", "jsonpath={.metadata.uid}"); now == uid || now == "" {
			return errorf("etcd-0 not replaced yet")
		}
		out, err := runKubectl(skc, "", "get", "configmap", "kept", "-o", "jsonpath={.data.data}")
		if err != nil || out != "before-the-pod-went" {
			return errorf("configmap: %v %q", err, out)
		}
		return nil
	})
	// The later cluster stayed off the dedicated node.
	onlyDedicated()
}

// pollDuring reads and writes a ConfigMap of the hosted cluster every 100 ms
// while during runs, and counts the requests that failed (an error, or no
// answer within 30 s as kubectl's users would wait); it logs the slowest.
func pollDuring(t *testing.T, kubeconfig string, during func()) (failures, total int) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "poll", Namespace: "default"}, Data: map[string]string{"n": "0"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []string
	var slowest time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ctx.Err() == nil; i++ {
			began := time.Now()
			err := func() error {
				got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "poll", metav1.GetOptions{})
				if err != nil {
					return err
				}
				got.Data["n"] = fmt.Sprint(i)
				_, err = cs.CoreV1().ConfigMaps("default").Update(ctx, got, metav1.UpdateOptions{})
				return err
			}()
			mu.Lock()
			slowest = max(slowest, time.Since(began))
			total++
			if err != nil && ctx.Err() == nil {
				errs = append(errs, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	during()
	// A little after, for the pods that stopped last.
	time.Sleep(3 * time.Second)
	cancel()
	<-done
	for _, e := range errs {
		t.Log("failed request: " + e)
	}
	t.Logf("the slowest read and write took %s", slowest.Round(time.Millisecond))
	return len(errs), total
}

// Bad input on management nodes: what keeps a control plane from running is
// in its HostedCluster's conditions in the words of whoever refused it (the
// scheduler, the kubelet), and what can be checked before is refused
// before anything is created.
func TestControlPlaneBadInputOnManagementNodes(t *testing.T) {
	up := startUp(t, t.TempDir(), "--management-nodes", "3")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustKubectl("", "create", "namespace", "clusters-example")
	create := func(name string, extra ...string) {
		t.Helper()
		up.mustHCP(append([]string{"create", "cluster", "agent", "--name", name, "--pull-secret", pull, "--agent-namespace", "clusters-example",
			"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0"}, extra...)...)
	}
	// conditionsSay waits until a condition's message says one of wants.
	conditionsSay := func(name string, wants ...string) {
		t.Helper()
		eventually(t, 3*time.Minute, "HostedCluster "+name+" saying "+strings.Join(wants, " or "), func() error {
			out, _ := up.kubectl("", "-n", "clusters", "get", "hostedcluster", name, "-o", `jsonpath={range .status.conditions[*]}{.type}={.status}: {.message}{"\n"}{end}`)
			for _, w := range wants {
				if strings.Contains(out, w) {
					return nil
				}
			}
			return errorf("conditions:\n%s", out)
		})
	}
	create("nowhere", "--node-selector", "hcp.dev/rack=none")
	create("unpullable", "--annotations", "hypershift.openshift.io/control-plane-operator-image=registry.hcp.test/hcp/control-plane@sha256:"+strings.Repeat("0", 64))
	create("malformed", "--annotations", "hypershift.openshift.io/control-plane-operator-image=Not An Image")
	// A StorageClass that does not exist: the CLI refuses it and names the
	// default one; the same HostedCluster applied by hand is refused by the
	// operator.
	out, err := up.hcp("create", "cluster", "agent", "--name", "nostorage", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--release-image", rel.Image, "--node-pool-replicas", "0", "--etcd-storage-class", "no-such-class")
	if err == nil || !strings.Contains(out, `--etcd-storage-class: StorageClass "no-such-class" does not exist`) || !strings.Contains(out, "--etcd-storage-class local-path") {
		t.Errorf("hcp create cluster with a missing StorageClass: %v\n%s", err, out)
	}
	rendered := up.mustHCP("create", "cluster", "agent", "--name", "nostorage", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--release-image", rel.Image, "--node-pool-replicas", "0", "--etcd-storage-class", "local-path", "--render", "--render-sensitive")
	if !strings.Contains(rendered, "storageClassName: local-path") {
		t.Fatalf("rendered cluster without the StorageClass:\n%s", rendered)
	}
	up.mustKubectl(strings.ReplaceAll(rendered, "storageClassName: local-path", "storageClassName: no-such-class"), "apply", "-f", "-")

	conditionsSay("nowhere", "didn't match Pod's node affinity/selector")
	conditionsSay("unpullable", "container etcd: ErrImagePull", "container etcd: ImagePullBackOff")
	conditionsSay("malformed", `ValidConfiguration=False: metadata.annotations[hypershift.openshift.io/control-plane-operator-image]: "Not An Image" is not an image reference`)
	conditionsSay("nostorage", "ValidConfiguration=False")
	conditionsSay("nostorage", "no-such-class")
	for _, name := range []string{"malformed", "nostorage"} {
		if out, _ := up.kubectl("", "-n", "clusters-"+name, "get", "statefulsets,deployments", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("refused cluster %s has workloads: %s", name, out)
		}
	}
}
