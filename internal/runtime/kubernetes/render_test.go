package kubernetes

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func renderExample(t *testing.T, policy hyperv1.AvailabilityPolicy) []runtime.Object {
	t.Helper()
	hcp := &hyperv1.HostedControlPlane{}
	hcp.Namespace, hcp.Name = "clusters-example", "example"
	hcp.Spec.ControllerAvailabilityPolicy = policy
	hcp.Spec.InfraID = "example-abcde"
	hcp.Spec.NodeSelector = map[string]string{"node-role.kubernetes.io/infra": ""}
	hcp.Spec.Services = []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer,
		ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: "192.0.2.10"}}}}
	cp, err := controlplane.Build(controlplane.Input{HCP: hcp, Release: &release.Release{Name: "1.37.2"},
		Network: PodsIn("clusters-example"), StorageClass: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(Input{ControlPlane: cp, Image: "registry.hcp.test/hcp/control-plane@sha256:0123", UID: UIDFor("clusters-example", nil), DedicatedNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]runtime.Object, len(objs))
	for i := range objs {
		out[i] = objs[i]
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from what is rendered now; review and run go test ./internal/runtime/kubernetes -update\n--- rendered:\n%s", path, got)
	}
}

// The NetworkPolicies of a control plane namespace: deny by default; allow the
// namespace's own pods, the API server's 6443 from anywhere, metrics scraping
// from monitoring namespaces, and konnectivity agents where it is published.
func TestNetworkPoliciesMatchTheSeed(t *testing.T) {
	var policies []runtime.Object
	byName := map[string]*networkingv1.NetworkPolicy{}
	for _, o := range renderExample(t, hyperv1.HighlyAvailable) {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			policies = append(policies, np)
			byName[np.Name] = np
		}
	}
	b, err := apply.YAML(policies...)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "networkpolicies.yaml", b)

	deny := byName["default-deny"]
	if deny == nil || len(deny.Spec.PodSelector.MatchLabels) != 0 || len(deny.Spec.Ingress) != 0 || deny.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("no deny-all ingress policy: %+v", deny)
	}
	same := byName["same-namespace"]
	if same == nil || same.Spec.Ingress[0].From[0].PodSelector == nil || same.Spec.Ingress[0].From[0].NamespaceSelector != nil {
		t.Errorf("same-namespace traffic is not allowed: %+v", same)
	}
	kas := byName["kube-apiserver"]
	if kas == nil || kas.Spec.Ingress[0].Ports[0].Port.IntValue() != 6443 || len(kas.Spec.Ingress[0].From) != 0 {
		t.Errorf("ingress to the API server on 6443 is not allowed from everywhere: %+v", kas)
	}
	metrics := byName["metrics"]
	if metrics == nil || metrics.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["network.openshift.io/policy-group"] != "monitoring" {
		t.Errorf("metrics scraping from monitoring namespaces is not allowed: %+v", metrics)
	}
	if byName["konnectivity-server"] == nil {
		t.Errorf("konnectivity, published as NodePort with the API server, has no ingress policy")
	}
}

// Every pod runs restricted: non-root with the namespace's UID, no privilege
// or escalation, read-only root filesystem, every capability dropped (KILL,
// MKNOD, SETUID and SETGID among them), no host namespaces, ports or paths.
func TestPodSecurityMatchesTheSeed(t *testing.T) {
	uid := UIDFor("clusters-example", nil)
	var summary strings.Builder
	pods := 0
	for _, o := range renderExample(t, hyperv1.HighlyAvailable) {
		var name string
		var spec corev1.PodSpec
		switch w := o.(type) {
		case *appsv1.Deployment:
			name, spec = w.Name, w.Spec.Template.Spec
		case *appsv1.StatefulSet:
			name, spec = w.Name, w.Spec.Template.Spec
		default:
			continue
		}
		pods++
		b, err := yaml.Marshal(map[string]any{"pod": spec.SecurityContext, "container": spec.Containers[0].SecurityContext,
			"hostNetwork": spec.HostNetwork, "hostPID": spec.HostPID, "priorityClassName": spec.PriorityClassName})
		if err != nil {
			t.Fatal(err)
		}
		summary.WriteString("# " + name + "\n" + string(b))

		ps, cs := spec.SecurityContext, spec.Containers[0].SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != uid || *ps.FSGroup != uid {
			t.Errorf("%s: pod does not run as the namespace's user %d: %+v", name, uid, ps)
		}
		if cs == nil || cs.Privileged == nil || *cs.Privileged || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
			cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			t.Errorf("%s: container may be privileged, escalate, or write its image: %+v", name, cs)
		}
		if cs == nil || cs.Capabilities == nil || len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" || len(cs.Capabilities.Add) != 0 {
			t.Errorf("%s: capabilities %+v, want ALL (KILL, MKNOD, SETUID, SETGID ...) dropped and none added", name, cs.Capabilities)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: uses a host namespace", name)
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: mounts host path %s", name, v.HostPath.Path)
			}
		}
		for _, p := range spec.Containers[0].Ports {
			if p.HostPort != 0 {
				t.Errorf("%s: host port %d", name, p.HostPort)
			}
		}
	}
	if pods != 5 {
		t.Errorf("%d workloads, want 5", pods)
	}
	golden(t, "security.yaml", []byte(summary.String()))
}

// The seed's placement: tolerations of the control-plane and cluster taints,
// node affinity for their labels (required once nodes are dedicated), the
// spec's node selector, priority classes, and for HighlyAvailable replicas in
// different zones and on different hosts.
func TestPlacementMatchesTheSeed(t *testing.T) {
	for _, o := range renderExample(t, hyperv1.HighlyAvailable) {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		spec := d.Spec.Template.Spec
		tol := map[string]string{}
		for _, t := range spec.Tolerations {
			tol[t.Key] = t.Value
		}
		if tol["hypershift.openshift.io/control-plane"] != "true" || tol["hypershift.openshift.io/cluster"] != "clusters-example" {
			t.Errorf("%s tolerations %v", d.Name, spec.Tolerations)
		}
		if _, ok := spec.NodeSelector["node-role.kubernetes.io/infra"]; !ok {
			t.Errorf("%s has no infra node selector: %v", d.Name, spec.NodeSelector)
		}
		req := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		if req == nil || req.NodeSelectorTerms[0].MatchExpressions[0].Key != "hypershift.openshift.io/control-plane" {
			t.Errorf("%s does not require control plane nodes: %+v", d.Name, req)
		}
		keys := map[string]bool{}
		for _, term := range spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			keys[term.TopologyKey] = true
		}
		if !keys["topology.kubernetes.io/zone"] || !keys["kubernetes.io/hostname"] {
			t.Errorf("%s is not spread over zones and hosts: %v", d.Name, keys)
		}
		want := map[string]string{"kube-apiserver": "hypershift-api-critical", "konnectivity-server": "hypershift-api-critical",
			"kube-controller-manager": "hypershift-control-plane", "kube-scheduler": "hypershift-control-plane"}[d.Name]
		if spec.PriorityClassName != want {
			t.Errorf("%s priority class %q, want %q", d.Name, spec.PriorityClassName, want)
		}
	}
	for _, o := range renderExample(t, hyperv1.SingleReplica) {
		if d, ok := o.(*appsv1.Deployment); ok && d.Spec.Template.Spec.Affinity.PodAntiAffinity != nil {
			t.Errorf("%s: a single replica needs no spreading", d.Name)
		}
	}
}
