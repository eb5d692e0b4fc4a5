package agentmachine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
)

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, hyperv1.AddToScheme, agentv1.AddToScheme, capiproviderv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func freeAgent(name string) *agentv1.Agent {
	a := &agentv1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters-example", Name: name}, Spec: agentv1.AgentSpec{Approved: true}}
	for _, c := range []string{agentv1.ValidatedCondition, agentv1.ConnectedCondition} {
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: "OK"})
	}
	a.Status.DebugInfo.State = agentapi.StateKnownUnbound
	return a
}

// world is a hosted cluster with n machines (AgentMachines owned by Machines)
// and the given agents.
func world(t *testing.T, machines int, agents ...*agentv1.Agent) (client.Client, []string) {
	t.Helper()
	objs := []client.Object{
		&hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: "example"},
			Spec: hyperv1.HostedClusterSpec{Platform: hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform, Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: "clusters-example"}}}},
		&clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters-example", Name: "example-x",
			Annotations: map[string]string{hyperv1.HostedClusterAnnotation: "clusters/example"}}},
	}
	var names []string
	for i := range machines {
		name := fmt.Sprintf("m%d", i)
		names = append(names, name)
		objs = append(objs,
			&clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters-example", Name: name, UID: k8stypes.UID("uid-" + name),
				Labels: map[string]string{hyperv1.NodePoolLabel: "example"}},
				Spec: clusterv1.MachineSpec{ClusterName: "example-x"}},
			&capiproviderv1.AgentMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters-example", Name: name,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: name, UID: k8stypes.UID("uid-" + name)}}}})
	}
	for _, a := range agents {
		objs = append(objs, a)
	}
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(objs...).
		WithStatusSubresource(&capiproviderv1.AgentMachine{}, &agentv1.Agent{}).Build()
	return c, names
}

// Two machines racing for the only free Agent: exactly one binds it, the
// other reports NoSuitableAgents; over many rounds, never both.
func TestRacingMachinesNeverShareAnAgent(t *testing.T) {
	for round := range 50 {
		c, names := world(t, 2, freeAgent("a0"))
		r := &Reconciler{Client: c}
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Go(func() {
				for range 3 {
					if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "clusters-example", Name: n}}); err != nil {
						t.Errorf("round %d: reconcile %s: %v", round, n, err)
					}
				}
			})
		}
		wg.Wait()
		holders := 0
		for _, n := range names {
			am := &capiproviderv1.AgentMachine{}
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "clusters-example", Name: n}, am); err != nil {
				t.Fatal(err)
			}
			if am.Status.AgentRef != nil {
				holders++
				if am.Spec.ProviderID == nil || *am.Spec.ProviderID != "agent://a0" {
					t.Errorf("round %d: %s providerID %v", round, n, am.Spec.ProviderID)
				}
			} else if c := meta.FindStatusCondition(am.Status.Conditions, capiproviderv1.AgentReservedCondition); c == nil || c.Reason != capiproviderv1.NoSuitableAgentsReason {
				t.Errorf("round %d: %s without an agent reports %+v", round, n, c)
			}
		}
		a := &agentv1.Agent{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "clusters-example", Name: "a0"}, a); err != nil {
			t.Fatal(err)
		}
		if holders != 1 || a.Spec.ClusterDeploymentName == nil || a.Labels[capiproviderv1.AgentMachineRefLabel] == "" {
			t.Fatalf("round %d: %d machines hold the agent; agent labels %v spec %+v", round, holders, a.Labels, a.Spec.ClusterDeploymentName)
		}
	}
}

// A machine that bound an Agent but lost its status write finds it again by label.
func TestMachineReadoptsItsLabelledAgent(t *testing.T) {
	a := freeAgent("a1")
	a.Labels = map[string]string{capiproviderv1.AgentMachineRefLabel: "m0", capiproviderv1.AgentMachineRefNamespaceLabel: "clusters-example"}
	a.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: "clusters-example", Name: "example"}
	c, _ := world(t, 1, freeAgent("a0"), a)
	r := &Reconciler{Client: c}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "clusters-example", Name: "m0"}}); err != nil {
		t.Fatal(err)
	}
	am := &capiproviderv1.AgentMachine{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "clusters-example", Name: "m0"}, am)
	if am.Status.AgentRef == nil || am.Status.AgentRef.Name != "a1" {
		t.Errorf("agentRef %+v, want a1", am.Status.AgentRef)
	}
	free := &agentv1.Agent{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "clusters-example", Name: "a0"}, free)
	if free.Spec.ClusterDeploymentName != nil {
		t.Errorf("a second agent was bound")
	}
}

// Unsuitable agents are named with the reason in NoSuitableAgents.
func TestNoSuitableAgentsSaysWhy(t *testing.T) {
	na := freeAgent("not-approved")
	na.Spec.Approved = false
	c, _ := world(t, 1, na)
	r := &Reconciler{Client: c}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "clusters-example", Name: "m0"}}); err != nil {
		t.Fatal(err)
	}
	am := &capiproviderv1.AgentMachine{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: "clusters-example", Name: "m0"}, am)
	cond := meta.FindStatusCondition(am.Status.Conditions, capiproviderv1.AgentReservedCondition)
	if cond == nil || cond.Reason != capiproviderv1.NoSuitableAgentsReason || !contains(cond.Message, "not-approved is not approved") {
		t.Errorf("AgentReserved %+v", cond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
