package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/infra"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

// harness runs the Agent controller with a clock and check-ins the test moves.
type harness struct {
	clock    *clocktesting.FakeClock
	checkIns *infra.CheckIns
	changes  chan client.ObjectKey
}

// checkIn is a host talking to the service: the controller hears of it at once.
func (h *harness) checkIn(a *agentv1.Agent) {
	key := client.ObjectKeyFromObject(a)
	h.checkIns.Touch(key, h.clock.Now())
	h.changes <- key
}

func start(t *testing.T) *harness {
	h := &harness{clock: clocktesting.NewFakeClock(time.Now()), checkIns: &infra.CheckIns{}, changes: make(chan client.ObjectKey, 16)}
	env.Run(t, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), CheckIns: h.checkIns, DisconnectAfter: 3 * time.Minute,
			Requirements: DefaultRequirements, Changes: h.changes, Now: h.clock.Now}).SetupWithManager(mgr)
	})
	return h
}

// register creates an Agent as the infrastructure service does, then
// reports the inventory (nil: none yet) in its status.
func register(t *testing.T, ns, name string, approved bool, inv *agentv1.HostInventory) *agentv1.Agent {
	t.Helper()
	a := &agentv1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	a.Spec.Approved = approved
	env.Create(t, a)
	if inv != nil {
		before := a.DeepCopy()
		a.Status.Inventory = *inv
		if err := env.Client.Status().Patch(context.Background(), a, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func inventory(hostname string, cores int64, memGiB int64) *agentv1.HostInventory {
	now := metav1.Now()
	return &agentv1.HostInventory{Hostname: hostname, ReportTime: &now,
		Cpu:          agentv1.HostCPU{Count: cores, Architecture: "x86_64"},
		Memory:       agentv1.HostMemory{PhysicalBytes: memGiB << 30},
		SystemVendor: agentv1.HostSystemVendor{Manufacturer: "Acme Corp.", ProductName: "Lab Host 1"},
		Disks:        []agentv1.HostDisk{{SizeBytes: 200_000_000_000, InstallationEligibility: agentv1.HostInstallationEligibility{Eligible: true}}}}
}

func withRuntime(inv *agentv1.HostInventory, kind string, problems ...string) *agentv1.HostInventory {
	inv.NodeRuntime = &agentv1.HostNodeRuntime{Kind: kind, Problems: problems}
	return inv
}

// waitState waits until the Agent's state is state; with a harness, its host
// checks in while it waits.
func waitState(t *testing.T, a *agentv1.Agent, state string, checkingIn ...*harness) *agentv1.Agent {
	t.Helper()
	got := &agentv1.Agent{}
	env.Eventually(t, a.Name+" to be "+state, func(ctx context.Context) error {
		for _, h := range checkingIn {
			h.checkIn(a)
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
			return err
		}
		if got.Status.DebugInfo.State != state {
			return fmt.Errorf("state %q: %s", got.Status.DebugInfo.State, got.Status.DebugInfo.StateInfo)
		}
		return nil
	})
	return got
}

func wantCondition(t *testing.T, a *agentv1.Agent, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(a.Status.Conditions, typ)
	if c == nil || c.Status != status || c.Reason != reason {
		t.Errorf("%s: %s is %+v, want %s/%s", a.Name, typ, c, status, reason)
	}
}

// Hosts as they register: the state, conditions and inventory labels the
// controller gives each, stored through the real API server.
func TestAgentStates(t *testing.T) {
	h := start(t)
	ns := env.Namespace(t)
	for _, tc := range []struct {
		name     string
		approved bool
		inv      *agentv1.HostInventory
		state    string
		cond     string
		status   metav1.ConditionStatus
		reason   string
	}{
		{"no-inventory", true, nil, agentapi.StateDiscoveringUnbound, agentv1.ValidatedCondition, metav1.ConditionFalse, "ValidationsFailing"},
		{"small", true, inventory("small-host", 1, 2), agentapi.StateInsufficientUnbound, agentv1.ValidatedCondition, metav1.ConditionFalse, "ValidationsFailing"},
		{"fit", true, inventory("fit-host", 4, 16), agentapi.StateKnownUnbound, agentv1.RequirementsMetCondition, metav1.ConditionTrue, "AgentIsReady"},
		{"unapproved", false, inventory("other-host", 4, 16), agentapi.StateKnownUnbound, agentv1.RequirementsMetCondition, metav1.ConditionFalse, "AgentIsNotApproved"},
		{"no-node-runtime", true, withRuntime(inventory("plain-host", 4, 16), "containerd", "iptables is not installed"),
			agentapi.StateInsufficientUnbound, agentv1.ValidatedCondition, metav1.ConditionFalse, "ValidationsFailing"},
		{"simulated", true, withRuntime(inventory("sim-host", 4, 16), "simulated"), agentapi.StateKnownUnbound, agentv1.RequirementsMetCondition, metav1.ConditionTrue, "AgentIsReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := register(t, ns, tc.name, tc.approved, tc.inv)
			h.checkIn(a)
			got := waitState(t, a, tc.state)
			wantCondition(t, got, tc.cond, tc.status, tc.reason)
			if r := tc.inv; r != nil && r.NodeRuntime != nil && len(r.NodeRuntime.Problems) > 0 {
				c := meta.FindStatusCondition(got.Status.Conditions, agentv1.ValidatedCondition)
				if c == nil || !strings.Contains(c.Message, ValidationCanRunNode) {
					t.Errorf("Validated does not name %s: %+v", ValidationCanRunNode, c)
				}
				var msg string
				for _, v := range got.Status.ValidationsInfo[CategoryHardware] {
					if v.ID == ValidationCanRunNode {
						msg = v.Message
					}
				}
				if !strings.Contains(msg, "iptables is not installed") {
					t.Errorf("%s says %q", ValidationCanRunNode, msg)
				}
			}
			wantCondition(t, got, agentv1.ConnectedCondition, metav1.ConditionTrue, "AgentIsConnected")
			if tc.inv != nil {
				want := map[string]string{LabelCPUCores: fmt.Sprint(tc.inv.Cpu.Count), LabelMemoryGiB: fmt.Sprint(tc.inv.Memory.PhysicalBytes >> 30),
					LabelCPUArch: "x86_64", LabelManufacturer: "Acme_Corp", LabelProduct: "Lab_Host_1", LabelVirtual: "false"}
				for k, v := range want {
					if got.Labels[k] != v {
						t.Errorf("label %s=%q, want %q", k, got.Labels[k], v)
					}
				}
			}
		})
	}
}

// Two hosts with one hostname: both fail hostname-unique; renaming one
// clears both.
func TestDuplicateHostnames(t *testing.T) {
	h := start(t)
	ns := env.Namespace(t)
	a := register(t, ns, "a", true, inventory("twin", 4, 16))
	b := register(t, ns, "b", true, inventory("twin", 4, 16))
	for _, x := range []*agentv1.Agent{a, b} {
		// Each host keeps checking in, as hosts do every poll interval: the
		// one that registered first is looked at again once the other exists.
		got := waitState(t, x, agentapi.StateInsufficientUnbound, h)
		if s := validationStatus(got, ValidationHostnameUnique); s != statusFailure {
			t.Errorf("%s: hostname-unique is %q", x.Name, s)
		}
	}
	// The user sets another hostname on one of them.
	got := &agentv1.Agent{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(b), got); err != nil {
		t.Fatal(err)
	}
	before := got.DeepCopy()
	got.Spec.Hostname = "twin-2"
	if err := env.Client.Patch(context.Background(), got, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, agentapi.StateKnownUnbound, h)
	waitState(t, a, agentapi.StateKnownUnbound, h)
}

// A host that stops checking in becomes disconnected once DisconnectAfter has
// passed, and known again when it is back; a host that joined its cluster
// stays connected without checking in.
func TestDisconnectAndJoin(t *testing.T) {
	h := start(t)
	ns := env.Namespace(t)
	quiet := register(t, ns, "quiet", true, inventory("quiet-host", 4, 16))
	joined := register(t, ns, "joined", true, inventory("joined-host", 4, 16))
	before := joined.DeepCopy()
	joined.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: ns, Name: "example"}
	if err := env.Client.Patch(context.Background(), joined, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	before = joined.DeepCopy()
	joined.Status.Progress.CurrentStage = agentapi.StageDone
	if err := env.Client.Status().Patch(context.Background(), joined, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	h.checkIn(quiet)
	h.checkIn(joined)
	waitState(t, quiet, agentapi.StateKnownUnbound)
	waitState(t, joined, agentapi.StateAddedToExistingCluster)

	h.clock.Step(4 * time.Minute)
	h.changes <- client.ObjectKeyFromObject(quiet)
	h.changes <- client.ObjectKeyFromObject(joined)
	got := waitState(t, quiet, agentapi.StateDisconnectedUnbound)
	wantCondition(t, got, agentv1.ConnectedCondition, metav1.ConditionFalse, "AgentIsDisconnected")
	got = waitState(t, joined, agentapi.StateAddedToExistingCluster)
	wantCondition(t, got, agentv1.ConnectedCondition, metav1.ConditionTrue, "AgentIsConnected")
	wantCondition(t, got, agentv1.InstalledCondition, metav1.ConditionTrue, "InstallationCompleted")

	h.checkIn(quiet)
	waitState(t, quiet, agentapi.StateKnownUnbound)
}
