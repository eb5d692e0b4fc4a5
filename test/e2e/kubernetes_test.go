package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/operator"
)

// The seed's management nodes: two per rack in three racks, labelled and
// tainted for control planes; one per rack also an infra node. Two plain
// workers have no labels and no taints.
var managementNodes = []struct {
	name, zone string
	infra      bool
}{
	{"cp-1a", "rack1", true}, {"cp-1b", "rack1", false},
	{"cp-2a", "rack2", true}, {"cp-2b", "rack2", false},
	{"cp-3a", "rack3", true}, {"cp-3b", "rack3", false},
	{"worker-1", "", false}, {"worker-2", "", false},
}

func nodesYAML() string {
	var b strings.Builder
	for _, n := range managementNodes {
		labels := map[string]string{"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"}
		var taints string
		if n.zone != "" {
			labels["hypershift.openshift.io/control-plane"] = "true"
			labels["topology.kubernetes.io/zone"] = n.zone
			taints = "  taints:\n  - {key: hypershift.openshift.io/control-plane, value: \"true\", effect: NoSchedule}\n"
		}
		if n.infra {
			labels["node-role.kubernetes.io/infra"] = ""
		}
		var keys []string
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n  annotations: {kwok.x-k8s.io/node: fake}\n  labels:\n", n.name)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s: %q\n", k, labels[k])
		}
		fmt.Fprintf(&b, "spec:\n%sstatus:\n  capacity: {cpu: \"32\", memory: 128Gi, pods: \"110\"}\n  allocatable: {cpu: \"32\", memory: 128Gi, pods: \"110\"}\n", taints)
	}
	return b.String()
}

// storageYAML is a StorageClass without a provisioner and volumes for it, as
// an administrator of a cluster without dynamic provisioning would make.
func storageYAML(volumes int) string {
	var b strings.Builder
	b.WriteString("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: hcp-test}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n")
	for i := range volumes {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: etcd-volume-%d}\nspec:\n  capacity: {storage: 8Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: hcp-test\n  hostPath: {path: /var/lib/etcd-volume-%d}\n", i, i)
	}
	return b.String()
}

// startKubernetesOperator runs hcp-operator with the Kubernetes runtime
// against the management cluster.
func startKubernetesOperator(t *testing.T, m *managementCluster) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(m.dataDir, "logs", "hcp-operator.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "hcp-operator"), "--runtime=kubernetes", "--kubeconfig="+m.kubeconfig,
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--console-bind-address=0",
		"--release-dir="+filepath.Join(binDir, "release"), "--data-dir="+t.TempDir())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("hcp-operator log (last 4000 bytes):\n%s", tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// placedPod is a control plane pod and where the scheduler put it.
type placedPod struct{ app, node, phase string }

func (m *managementCluster) pods(namespace string) []placedPod {
	out, _ := m.kubectl("", "-n", namespace, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.labels.app} {.spec.nodeName} {.status.phase}{"\n"}{end}`)
	var pods []placedPod
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch len(f) {
		case 3:
			pods = append(pods, placedPod{f[0], f[1], f[2]})
		case 2: // not scheduled: no node
			pods = append(pods, placedPod{f[0], "", f[1]})
		}
	}
	return pods
}

func zoneOf(node string) string {
	for _, n := range managementNodes {
		if n.name == node {
			return n.zone
		}
	}
	return ""
}

// waitPlaced waits until the cluster is Available with want pods all Running.
func (m *managementCluster) waitPlaced(t *testing.T, name string, want int) []placedPod {
	t.Helper()
	ns := "clusters-" + name
	var pods []placedPod
	eventually(t, 3*time.Minute, name+": "+fmt.Sprint(want)+" pods Running and the HostedCluster Available", func() error {
		pods = m.pods(ns)
		running := 0
		for _, p := range pods {
			if p.phase == "Running" {
				running++
			}
		}
		if running != want || len(pods) != want {
			return fmt.Errorf("%d pods, %d Running: %v; HostedControlPlane components: %s", len(pods), running, pods,
				m.jsonpath("hcp", ns, name, `{range .status.components[*]}{.name} {.readyReplicas}/{.replicas} {.message}; {end}`))
		}
		if c := m.condition("hc", "clusters", name, "Available"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("Available=%q", c)
		}
		return nil
	})
	return pods
}

func (m *managementCluster) jsonpath(kind, ns, name, path string) string {
	out, _ := m.kubectl("", "-n", ns, "get", kind, name, "-o", "jsonpath="+path)
	return out
}

// checkSpread: each component's replicas in different zones and on different hosts.
func checkSpread(t *testing.T, pods []placedPod) {
	t.Helper()
	zones, hosts := map[string]map[string]bool{}, map[string]map[string]bool{}
	for _, p := range pods {
		if zones[p.app] == nil {
			zones[p.app], hosts[p.app] = map[string]bool{}, map[string]bool{}
		}
		z := zoneOf(p.node)
		if zones[p.app][z] {
			t.Errorf("two %s pods in zone %q: %v", p.app, z, pods)
		}
		if hosts[p.app][p.node] {
			t.Errorf("two %s pods on node %s: %v", p.app, p.node, pods)
		}
		zones[p.app][z], hosts[p.app][p.node] = true, true
	}
}

func checkNodes(t *testing.T, pods []placedPod, allowed func(p placedPod) bool, what string) {
	t.Helper()
	for _, p := range pods {
		if !allowed(p) {
			t.Errorf("%s pod on %s: %s", p.app, p.node, what)
		}
	}
}

// destroy removes a cluster and checks that nothing the runtime made remains.
func (m *managementCluster) destroy(t *testing.T, name string) {
	t.Helper()
	m.mustHCP("destroy", "cluster", "agent", "--name", name, "--cluster-grace-period", "2m")
	ns := "clusters-" + name
	eventually(t, 2*time.Minute, name+": every object of the control plane removed", func() error {
		out, _ := m.kubectl("", "-n", ns, "get", "statefulsets,deployments,services,poddisruptionbudgets,networkpolicies,configmaps,persistentvolumeclaims,secrets,pods",
			"-o", "name", "--ignore-not-found")
		var left []string
		for _, l := range strings.Fields(out) {
			if l != "configmap/kube-root-ca.crt" {
				left = append(left, l)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left in %s: %v", ns, left)
		}
		return nil
	})
}

const haPods = 3 + 3 + 3 + 2 + 2 // etcd, konnectivity, kube-apiserver, kcm, scheduler

// Control planes as workloads of a real management cluster: the real
// scheduler places their pods by the rules of hosted control planes.
func TestKubernetesRuntimePlacement(t *testing.T) {
	m := startManagementCluster(t)
	if render := m.mustHCP("install", "render"); !strings.Contains(render, "name: hypershift-api-critical\nvalue: 100001000") {
		t.Fatalf("hcp install render has no hypershift-api-critical priority class:\n%s", tail(render, 2000))
	}
	if out := m.mustHCP("install"); !strings.Contains(out, "deployment/hcp-operator applied") {
		t.Fatalf("hcp install did not apply the operator:\n%s", out)
	}
	for class, value := range map[string]string{"hypershift-operator": "100003000", "hypershift-etcd": "100002000",
		"hypershift-api-critical": "100001000", "hypershift-control-plane": "100000000"} {
		if got := m.jsonpath("priorityclass", "", class, "{.value}"); got != value {
			t.Errorf("priority class %s = %q, want %s", class, got, value)
		}
	}
	m.mustKubectl(nodesYAML(), "apply", "-f", "-")
	m.mustKubectl(storageYAML(20), "apply", "-f", "-")
	for _, ns := range []string{"clusters", "clusters-agents"} {
		m.mustKubectl("", "create", "namespace", ns)
	}
	eventually(t, time.Minute, "simulated nodes Ready", func() error {
		out, _ := m.kubectl("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}`)
		if strings.Count(out, "True") != len(managementNodes) {
			return fmt.Errorf("Ready: %q", out)
		}
		return nil
	})
	startKubernetesOperator(t, m)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	create := func(name string, extra ...string) {
		t.Helper()
		m.mustHCP(append([]string{"create", "cluster", "agent", "--name", name, "--pull-secret", pull, "--agent-namespace", "clusters-agents",
			"--api-server-address", "192.0.2.10", "--release-image", rel.Image, "--etcd-storage-class", "hcp-test", "--node-pool-replicas", "-1"}, extra...)...)
	}
	onControlPlaneNode := func(p placedPod) bool { return strings.HasPrefix(p.node, "cp-") }

	t.Run("HighlyAvailable spreads over zones and hosts of control plane nodes", func(t *testing.T) {
		create("ha", "--control-plane-availability-policy", "HighlyAvailable")
		pods := m.waitPlaced(t, "ha", haPods)
		checkNodes(t, pods, onControlPlaneNode, "not a control plane node")
		checkSpread(t, pods)
		checkRestrictedAdmitsPods(t, m, "clusters-ha")
		if port := m.jsonpath("hc", "clusters", "ha", "{.status.controlPlaneEndpoint.port}"); port == "" || port == "0" {
			t.Errorf("the API endpoint port is %q, want the Service's NodePort", port)
		} else if np := m.jsonpath("svc", "clusters-ha", "kube-apiserver", "{.spec.ports[0].nodePort}"); np != port {
			t.Errorf("endpoint port %s, NodePort %s", port, np)
		}
		m.destroy(t, "ha")
	})

	t.Run("LoadBalancer publishing uses the load balancer's address", func(t *testing.T) {
		out := m.mustHCP("create", "cluster", "agent", "--name", "lb", "--pull-secret", pull, "--agent-namespace", "clusters-agents",
			"--api-server-address", "192.0.2.10", "--release-image", rel.Image, "--etcd-storage-class", "hcp-test", "--node-pool-replicas", "-1",
			"--control-plane-availability-policy", "SingleReplica", "--render", "--render-sensitive")
		nodePort := "      nodePort:\n        address: 192.0.2.10\n      type: NodePort\n"
		if !strings.Contains(out, nodePort) {
			t.Fatalf("rendered cluster has no NodePort API server to change:\n%s", out)
		}
		m.mustKubectl(strings.Replace(out, nodePort, "      type: LoadBalancer\n", 1), "apply", "-f", "-")
		eventually(t, time.Minute, "lb: the control plane waits for the load balancer", func() error {
			if c := m.condition("hcp", "clusters-lb", "lb", "InfrastructureReady"); !strings.Contains(c, "load balancer address") {
				return fmt.Errorf("InfrastructureReady=%q", c)
			}
			return nil
		})
		// What a cloud's load balancer controller does.
		m.mustKubectl("", "-n", "clusters-lb", "patch", "service", "kube-apiserver", "--subresource=status", "--type=merge",
			"-p", `{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}}`)
		m.waitPlaced(t, "lb", 5)
		if ep := m.jsonpath("hc", "clusters", "lb", "{.status.controlPlaneEndpoint.host}:{.status.controlPlaneEndpoint.port}"); ep != "203.0.113.7:6443" {
			t.Errorf("API endpoint %q, want the load balancer's 203.0.113.7:6443", ep)
		}
		m.destroy(t, "lb")
	})

	t.Run("spec.nodeSelector puts pods on infra nodes only", func(t *testing.T) {
		create("infra", "--control-plane-availability-policy", "HighlyAvailable", "--node-selector", "node-role.kubernetes.io/infra=")
		pods := m.waitPlaced(t, "infra", haPods)
		checkNodes(t, pods, func(p placedPod) bool { return strings.HasSuffix(p.node, "a") && onControlPlaneNode(p) }, "not an infra node")
		checkSpread(t, pods)
		m.destroy(t, "infra")
	})

	t.Run("custom taint is scheduled only with --toleration", func(t *testing.T) {
		for _, n := range managementNodes {
			if n.zone != "" {
				m.mustKubectl("", "taint", "node", n.name, "kubernetes.io/custom=:NoSchedule")
				t.Cleanup(func() { m.mustKubectl("", "taint", "node", n.name, "kubernetes.io/custom-") })
			}
		}
		create("plain", "--control-plane-availability-policy", "SingleReplica")
		eventually(t, time.Minute, "plain: pods unschedulable, and the control plane says why", func() error {
			msg := m.jsonpath("hcp", "clusters-plain", "plain", `{.status.components[?(@.name=="etcd")].message}`)
			if !strings.Contains(msg, "untolerated taint") {
				return fmt.Errorf("etcd message %q does not say that a taint is not tolerated", msg)
			}
			return nil
		})
		for _, p := range m.pods("clusters-plain") {
			if p.node != "" {
				t.Errorf("%s scheduled to %s despite the taint", p.app, p.node)
			}
		}
		create("tolerant", "--control-plane-availability-policy", "SingleReplica", "--toleration", "key=kubernetes.io/custom,operator=Exists,effect=NoSchedule")
		pods := m.waitPlaced(t, "tolerant", 5)
		checkNodes(t, pods, onControlPlaneNode, "not a control plane node")
		m.destroy(t, "plain")
		m.destroy(t, "tolerant")
	})

	t.Run("dedicated request serving nodes take only request-serving pods", func(t *testing.T) {
		for _, n := range []string{"cp-1b", "cp-2b", "cp-3b"} {
			m.mustKubectl("", "label", "node", n, "hypershift.openshift.io/request-serving-component=true")
			m.mustKubectl("", "taint", "node", n, "hypershift.openshift.io/request-serving-component=true:NoSchedule")
			t.Cleanup(func() {
				m.mustKubectl("", "label", "node", n, "hypershift.openshift.io/request-serving-component-")
				m.mustKubectl("", "taint", "node", n, "hypershift.openshift.io/request-serving-component-")
			})
		}
		create("serving", "--control-plane-availability-policy", "HighlyAvailable", "--annotations", "hypershift.openshift.io/topology=dedicated-request-serving-components")
		pods := m.waitPlaced(t, "serving", haPods)
		checkNodes(t, pods, func(p placedPod) bool {
			serving := p.app == "kube-apiserver" || p.app == "konnectivity-server"
			return onControlPlaneNode(p) && serving == strings.HasSuffix(p.node, "b")
		}, "request-serving pods belong on the b nodes, the others elsewhere")
		checkSpread(t, pods)
		m.destroy(t, "serving")
	})

	t.Run("dedicated nodes take one cluster's every pod", func(t *testing.T) {
		for _, n := range []string{"cp-1b", "cp-2b", "cp-3b"} {
			m.mustKubectl("", "label", "node", n, "hypershift.openshift.io/cluster=clusters-own")
			m.mustKubectl("", "taint", "node", n, "hypershift.openshift.io/cluster=clusters-own:NoSchedule")
		}
		create("own", "--control-plane-availability-policy", "HighlyAvailable", "--annotations", "hypershift.openshift.io/topology=dedicated")
		pods := m.waitPlaced(t, "own", haPods)
		checkNodes(t, pods, func(p placedPod) bool { return strings.HasSuffix(p.node, "b") && onControlPlaneNode(p) }, "not one of the cluster's own nodes")
		checkSpread(t, pods)
		m.destroy(t, "own")
	})
}

// checkRestrictedAdmitsPods creates, as a server-side dry run, a pod from every
// workload of the namespace: the namespace enforces Pod Security restricted,
// so admission rejects any pod that breaks it.
func checkRestrictedAdmitsPods(t *testing.T, m *managementCluster, ns string) {
	t.Helper()
	scheme, err := operator.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(m.hub.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := m.jsonpath("namespace", "", ns, `{.metadata.labels.pod-security\.kubernetes\.io/enforce}`); got != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", ns, got)
	}
	var templates []corev1.PodTemplateSpec
	deps := &appsv1.DeploymentList{}
	sts := &appsv1.StatefulSetList{}
	if err := c.List(ctx, deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, sts, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		templates = append(templates, d.Spec.Template)
	}
	for _, s := range sts.Items {
		tpl := s.Spec.Template
		for _, claim := range s.Spec.VolumeClaimTemplates {
			tpl.Spec.Volumes = append(tpl.Spec.Volumes, corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name + "-" + s.Name + "-0"}}})
		}
		templates = append(templates, tpl)
	}
	if len(templates) != 5 {
		t.Errorf("%d workloads in %s, want 5", len(templates), ns)
	}
	for i, tpl := range templates {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("dry-run-%d", i), Labels: map[string]string{"dry-run": "true"}}, Spec: tpl.Spec}
		if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Errorf("restricted Pod Security rejects the %s pod: %v", tpl.Labels["app"], err)
		}
	}
}
