package e2e

import (
	"strings"
	"testing"
	"time"
)

// hcp up --management-nodes 3 joins three lab hosts to the management plane
// as real nodes, one per zone, labelled and tainted for hosted control
// planes: pods that tolerate the taint run there (cluster DNS among them),
// logs and exec reach them, Services resolve by name; pods that do not
// tolerate it stay Pending with the scheduler's reason.
func TestManagementNodes(t *testing.T) {
	up := startUp(t, t.TempDir(), "--management-nodes", "3")
	if !strings.Contains(up.output(), "3 management nodes are Ready") {
		t.Fatalf("hcp up did not report the management nodes Ready:\n%s", up.output())
	}
	out := up.mustKubectl("", "get", "nodes", "-o",
		`jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.topology\.kubernetes\.io/zone}={.metadata.labels.hypershift\.openshift\.io/control-plane}={.metadata.labels.node-role\.kubernetes\.io/infra}={.spec.taints[0].key}:{.spec.taints[0].effect}={.status.nodeInfo.kubeletVersion}={.status.conditions[?(@.type=="Ready")].status} {end}`)
	want := map[string]string{"management-0": "rack1", "management-1": "rack2", "management-2": "rack3"}
	nodes := strings.Fields(out)
	if len(nodes) != 3 {
		t.Fatalf("nodes: %q", out)
	}
	for _, n := range nodes {
		f := strings.Split(n, "=")
		if len(f) != 7 || want[f[0]] != f[1] || f[2] != "true" || f[3] != "" || f[4] != "hypershift.openshift.io/control-plane:NoSchedule" ||
			f[5] != rel.Components["kubelet"] || f[6] != "True" {
			t.Errorf("node %q (name=zone=control-plane=infra=taint=kubelet=Ready)", n)
		}
	}

	// Cluster DNS runs on the management nodes.
	eventually(t, 3*time.Minute, "CoreDNS ready on management nodes", func() error {
		out, _ := up.kubectl("", "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.status.readyReplicas}")
		if out != "2" {
			return errorf("coredns ready replicas %q", out)
		}
		return nil
	})

	agnhost := "registry.hcp.test/e2e-test-images/agnhost:" + rel.Components["agnhost"]
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: default
spec:
  tolerations:
  - key: hypershift.openshift.io/control-plane
    operator: Exists
    effect: NoSchedule
  containers:
  - name: agnhost
    image: ` + agnhost + `
    args: ["netexec", "--http-port=8080"]
`
	up.mustKubectl(pod, "apply", "-f", "-")
	eventually(t, 2*time.Minute, "the probe pod Ready", func() error {
		out, _ := up.kubectl("", "get", "pod", "probe", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.nodeName}`)
		if !strings.HasPrefix(out, "True management-") {
			return errorf("pod: %q", out)
		}
		return nil
	})
	// DNS: the management cluster's kubernetes Service by name, from a pod.
	suffix := up.mustKubectl("", "exec", "probe", "--", "/agnhost", "dns-suffix")
	if !strings.Contains(suffix, "cluster.local") {
		t.Errorf("the pod's DNS search suffix is %q", suffix)
	}
	lookup := up.mustKubectl("", "exec", "probe", "--", "getent", "hosts", "kubernetes.default.svc.cluster.local")
	if !strings.Contains(lookup, "10.96.0.1") {
		t.Errorf("kubernetes.default.svc resolves to %q, want 10.96.0.1", lookup)
	}
	if logs := up.mustKubectl("", "logs", "probe"); !strings.Contains(logs, "Started HTTP server") {
		t.Errorf("kubectl logs probe: %q", logs)
	}

	// Volumes: a claim of the default StorageClass is bound once its pod is
	// scheduled, to a directory on that pod's node; the data outlives the pod.
	if sc := up.mustKubectl("", "get", "storageclass", "-o", `jsonpath={range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name} {end}`); strings.TrimSpace(sc) != "local-path" {
		t.Errorf("default StorageClasses: %q, want local-path only", sc)
	}
	writer := func(name, cmd string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
  namespace: default
spec:
  nodeSelector:
    kubernetes.io/hostname: management-1
  restartPolicy: Never
  tolerations:
  - key: hypershift.openshift.io/control-plane
    operator: Exists
    effect: NoSchedule
  containers:
  - name: c
    image: ` + agnhost + `
    command: ["sh", "-c", "` + cmd + `"]
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
`
	}
	up.mustKubectl(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: default
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
`, "apply", "-f", "-")
	up.mustKubectl(writer("write", "echo kept > /data/file"), "apply", "-f", "-")
	eventually(t, 2*time.Minute, "the writer pod Succeeded", func() error {
		out, _ := up.kubectl("", "get", "pod", "write", "-o", "jsonpath={.status.phase}")
		if out != "Succeeded" {
			ev, _ := up.kubectl("", "get", "events", "-A", "--sort-by=.lastTimestamp")
			return errorf("writer %q; events:\n%s", out, ev)
		}
		return nil
	})
	up.mustKubectl("", "delete", "pod", "write")
	up.mustKubectl(writer("read", "cat /data/file"), "apply", "-f", "-")
	eventually(t, 2*time.Minute, "the reader pod Succeeded", func() error {
		out, _ := up.kubectl("", "get", "pod", "read", "-o", "jsonpath={.status.phase}")
		if out != "Succeeded" {
			return errorf("reader %q", out)
		}
		return nil
	})
	if got := strings.TrimSpace(up.mustKubectl("", "logs", "read")); got != "kept" {
		t.Errorf("the volume holds %q after its first pod, want kept", got)
	}

	// Without the toleration: Pending, with the scheduler's reason.
	up.mustKubectl(strings.Replace(strings.Replace(pod, "name: probe", "name: untolerated", 1),
		"  tolerations:\n  - key: hypershift.openshift.io/control-plane\n    operator: Exists\n    effect: NoSchedule\n", "", 1), "apply", "-f", "-")
	eventually(t, time.Minute, "the untolerated pod unschedulable", func() error {
		out, _ := up.kubectl("", "get", "pod", "untolerated", "-o", `jsonpath={.status.conditions[?(@.type=="PodScheduled")].message}`)
		if !strings.Contains(out, "untolerated taint") {
			return errorf("PodScheduled: %q", out)
		}
		return nil
	})

	checkNetworkPolicies(t, up, agnhost)
}

// checkNetworkPolicies: the management nodes enforce NetworkPolicies, on
// traffic from the same node and from another one, and stop when the policy
// goes.
func checkNetworkPolicies(t *testing.T, up *upProcess, agnhost string) {
	t.Helper()
	podOn := func(ns, name, node, args string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
  namespace: ` + ns + `
spec:
  nodeSelector:
    kubernetes.io/hostname: ` + node + `
  tolerations:
  - key: hypershift.openshift.io/control-plane
    operator: Exists
    effect: NoSchedule
  containers:
  - name: agnhost
    image: ` + agnhost + `
    args: ` + args + `
`
	}
	up.mustKubectl(`apiVersion: v1
kind: Namespace
metadata: {name: guarded}
---
apiVersion: v1
kind: Namespace
metadata: {name: friends, labels: {team: friends}}
---
`+podOn("guarded", "server", "management-0", `["netexec", "--http-port=8080", "--udp-port=-1"]`)+"---\n"+
		podOn("default", "client-0", "management-0", `["pause"]`)+"---\n"+
		podOn("default", "client-1", "management-1", `["pause"]`)+"---\n"+
		podOn("friends", "friend", "management-1", `["pause"]`), "apply", "-f", "-")
	for _, p := range []string{"guarded/server", "default/client-0", "default/client-1", "friends/friend"} {
		ns, name, _ := strings.Cut(p, "/")
		eventually(t, 2*time.Minute, p+" Ready", func() error {
			out, _ := up.kubectl("", "-n", ns, "get", "pod", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if out != "True" {
				return errorf("Ready=%q", out)
			}
			return nil
		})
	}
	server := up.mustKubectl("", "-n", "guarded", "get", "pod", "server", "-o", "jsonpath={.status.podIP}") + ":8080"
	connects := func(from string) bool {
		ns, name, _ := strings.Cut(from, "/")
		_, err := up.kubectl("", "-n", ns, "exec", name, "--", "/agnhost", "connect", "--timeout=2s", server)
		return err == nil
	}
	expect := func(what string, want map[string]bool) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			for from, ok := range want {
				if got := connects(from); got != ok {
					return errorf("%s connects to the server: %v, want %v", from, got, ok)
				}
			}
			return nil
		})
	}
	all := map[string]bool{"default/client-0": true, "default/client-1": true, "friends/friend": true}
	expect("every client reaches the server before any policy", all)
	up.mustKubectl(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: friends-only, namespace: guarded}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: friends}}
    ports:
    - {protocol: TCP, port: 8080}
`, "apply", "-f", "-")
	expect("only friends reach the server under the policy (same node and another node)",
		map[string]bool{"default/client-0": false, "default/client-1": false, "friends/friend": true})
	up.mustKubectl("", "-n", "guarded", "delete", "networkpolicy", "friends-only")
	expect("every client reaches the server once the policy is gone", all)
}
