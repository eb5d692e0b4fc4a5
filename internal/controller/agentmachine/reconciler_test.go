package agentmachine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

func freeAgent(name string) *agentv1.Agent {
	a := &agentv1.Agent{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: agentv1.AgentSpec{Approved: true}}
	for _, c := range []string{agentv1.ValidatedCondition, agentv1.ConnectedCondition} {
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: "OK"})
	}
	a.Status.DebugInfo.State = agentapi.StateKnownUnbound
	return a
}

// world is, in a new namespace of the test's management plane, a hosted
// cluster with n machines (AgentMachines owned by Machines) and the given
// agents. It returns the namespace and the machines' names.
func world(t *testing.T, machines int, agents ...*agentv1.Agent) (string, []string) {
	t.Helper()
	ns := env.Namespace(t)
	ctx := context.Background()
	env.Create(t,
		&hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example"},
			Spec: hyperv1.HostedClusterSpec{Platform: hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform, Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: ns}},
				Release: hyperv1.Release{Image: env.Release.Image},
				Services: []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer, ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{
					Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: "192.0.2.10"}}}},
				Networking: hyperv1.ClusterNetworking{ServiceNetwork: []hyperv1.ServiceNetworkEntry{{CIDR: "172.31.0.0/16"}}},
				Etcd:       hyperv1.EtcdSpec{ManagementType: hyperv1.Managed}}},
		&clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example-x",
			Annotations: map[string]string{hyperv1.HostedClusterAnnotation: ns + "/example"}},
			Spec: clusterv1.ClusterSpec{ControlPlaneRef: clusterv1.ContractVersionedObjectReference{APIGroup: hyperv1.GroupVersion.Group, Kind: "HostedControlPlane", Name: "example"}}})
	var names []string
	for i := range machines {
		name := fmt.Sprintf("m%d", i)
		names = append(names, name)
		m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{hyperv1.NodePoolLabel: "example"}},
			Spec: clusterv1.MachineSpec{ClusterName: "example-x", Bootstrap: clusterv1.Bootstrap{DataSecretName: ptr.To("example-user-data")},
				InfrastructureRef: clusterv1.ContractVersionedObjectReference{APIGroup: capiproviderv1.GroupVersion.Group, Kind: "AgentMachine", Name: name}}}
		env.Create(t, m)
		env.Create(t, &capiproviderv1.AgentMachine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: name, UID: m.UID}}}})
	}
	for _, a := range agents {
		a.Namespace = ns
		status := a.Status
		if a.Spec.ClusterDeploymentName != nil {
			a.Spec.ClusterDeploymentName.Namespace = ns
		}
		if a.Labels[capiproviderv1.AgentMachineRefNamespaceLabel] != "" {
			a.Labels[capiproviderv1.AgentMachineRefNamespaceLabel] = ns
		}
		env.Create(t, a)
		a.Status = status
		if err := env.Client.Status().Update(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return ns, names
}

// Two machines racing for the only free Agent: exactly one binds it, the
// other reports NoSuitableAgents; over many rounds, never both.
func TestRacingMachinesNeverShareAnAgent(t *testing.T) {
	for round := range 20 {
		ns, names := world(t, 2, freeAgent("a0"))
		c := env.Client
		r := &Reconciler{Client: c}
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Go(func() {
				for range 3 {
					if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: n}}); err != nil {
						t.Errorf("round %d: reconcile %s: %v", round, n, err)
					}
				}
			})
		}
		wg.Wait()
		holders := 0
		for _, n := range names {
			am := &capiproviderv1.AgentMachine{}
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: n}, am); err != nil {
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
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a0"}, a); err != nil {
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
	a.Labels = map[string]string{capiproviderv1.AgentMachineRefLabel: "m0", capiproviderv1.AgentMachineRefNamespaceLabel: "set-by-world"}
	a.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: "set-by-world", Name: "example"}
	ns, _ := world(t, 1, freeAgent("a0"), a)
	c := env.Client
	r := &Reconciler{Client: c}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "m0"}}); err != nil {
		t.Fatal(err)
	}
	am := &capiproviderv1.AgentMachine{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "m0"}, am)
	if am.Status.AgentRef == nil || am.Status.AgentRef.Name != "a1" {
		t.Errorf("agentRef %+v, want a1", am.Status.AgentRef)
	}
	free := &agentv1.Agent{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a0"}, free)
	if free.Spec.ClusterDeploymentName != nil {
		t.Errorf("a second agent was bound")
	}
}

// Unsuitable agents are named with the reason in NoSuitableAgents.
func TestNoSuitableAgentsSaysWhy(t *testing.T) {
	na := freeAgent("not-approved")
	na.Spec.Approved = false
	ns, _ := world(t, 1, na)
	c := env.Client
	r := &Reconciler{Client: c}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "m0"}}); err != nil {
		t.Fatal(err)
	}
	am := &capiproviderv1.AgentMachine{}
	_ = c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "m0"}, am)
	cond := meta.FindStatusCondition(am.Status.Conditions, capiproviderv1.AgentReservedCondition)
	if cond == nil || cond.Reason != capiproviderv1.NoSuitableAgentsReason || !strings.Contains(cond.Message, "not-approved is not approved") {
		t.Errorf("AgentReserved %+v", cond)
	}
}

// Unsuitable names the most telling reason: a disconnected host (whose
// connected validation fails too) is "not connected", not "not validated".
func TestUnsuitableSaysTheMostTellingReason(t *testing.T) {
	disconnected := freeAgent("quiet")
	for _, c := range []string{agentv1.ValidatedCondition, agentv1.ConnectedCondition} {
		meta.SetStatusCondition(&disconnected.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionFalse, Reason: "No"})
	}
	unapproved := freeAgent("new")
	unapproved.Spec.Approved = false
	for _, tc := range []struct {
		a    *agentv1.Agent
		want string
	}{{disconnected, "is not connected"}, {unapproved, "is not approved"}, {freeAgent("fine"), ""}} {
		if got := Unsuitable(tc.a, &capiproviderv1.AgentMachine{}); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.a.Name, got, tc.want)
		}
	}
}
