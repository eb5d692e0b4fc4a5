package agent

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/infra"
)

// healthyAgent is an approved host with an inventory that passes every
// hardware validation.
func healthyAgent(bound bool, stage string) *agentv1.Agent {
	a := &agentv1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters-example", Name: "0b6a3c3e-5c1f-4d5e-9c61-1f0c3c7e2a10"}}
	a.Spec.Approved = true
	now := metav1.Now()
	a.Status.Inventory = agentv1.HostInventory{Hostname: "worker-0", ReportTime: &now,
		Cpu:    agentv1.HostCPU{Count: 4},
		Memory: agentv1.HostMemory{PhysicalBytes: 16 << 30},
		Disks:  []agentv1.HostDisk{{SizeBytes: 200_000_000_000, InstallationEligibility: agentv1.HostInstallationEligibility{Eligible: true}}}}
	if bound {
		a.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: "clusters-example", Name: "example"}
	}
	a.Status.Progress.CurrentStage = stage
	return a
}

func validationStatus(a *agentv1.Agent, id string) string {
	for _, vs := range a.Status.ValidationsInfo {
		for _, v := range vs {
			if v.ID == id {
				return v.Status
			}
		}
	}
	return ""
}

// TestConnectedIsOneRule runs an installed host's Agent over a simulated clock
// well past the disconnect timeout: the host no longer checks in (it runs its
// node), and its state, Connected condition, connected validation and
// Validated condition must keep agreeing that it is connected.
func TestConnectedIsOneRule(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	now := t0
	checkIns := &infra.CheckIns{}
	r := &Reconciler{CheckIns: checkIns, DisconnectAfter: 3 * time.Minute, Now: func() time.Time { return now }, started: t0}
	a := healthyAgent(true, agentapi.StageDone)
	checkIns.Touch(client.ObjectKeyFromObject(a), t0)
	for _, after := range []time.Duration{0, 2 * time.Minute, 3*time.Minute + time.Second, 10 * time.Minute, 24 * time.Hour} {
		now = t0.Add(after)
		computeStatus(a, r.checkedIn(a), DefaultRequirements, nil)
		if got := a.Status.DebugInfo.State; got != agentapi.StateAddedToExistingCluster {
			t.Errorf("after %s: state %s, want %s", after, got, agentapi.StateAddedToExistingCluster)
		}
		if got := validationStatus(a, ValidationConnected); got != statusSuccess {
			t.Errorf("after %s: validation connected is %s", after, got)
		}
		for _, c := range []string{agentv1.ConnectedCondition, agentv1.ValidatedCondition, agentv1.InstalledCondition} {
			if !meta.IsStatusConditionTrue(a.Status.Conditions, c) {
				t.Errorf("after %s: %s is not True: %+v", after, c, meta.FindStatusCondition(a.Status.Conditions, c))
			}
		}
	}
}

// TestConnectedAgrees checks, for every kind of host, that the Connected
// condition and the connected validation say the same thing, and the state
// that follows.
func TestConnectedAgrees(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bound     bool
		stage     string
		checkedIn bool
		connected bool
		state     string
	}{
		{"unbound, checking in", false, "", true, true, agentapi.StateKnownUnbound},
		{"unbound, silent", false, "", false, false, agentapi.StateDisconnectedUnbound},
		{"bound, waiting to install", true, "", true, true, agentapi.StateKnown},
		{"bound, silent before installing", true, "", false, false, agentapi.StateDisconnected},
		{"installing, reporting", true, agentapi.StageRebooting, true, true, agentapi.StateInstallingInProgress},
		{"installing, cut off", true, agentapi.StageRebooting, false, false, agentapi.StateDisconnected},
		{"joined, reporting through its node", true, agentapi.StageDone, false, true, agentapi.StateAddedToExistingCluster},
		{"unbound after joining", false, agentapi.StageDone, false, false, agentapi.StateUnbindingPendingUserAction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := healthyAgent(tc.bound, tc.stage)
			computeStatus(a, tc.checkedIn, DefaultRequirements, nil)
			if got := a.Status.DebugInfo.State; got != tc.state {
				t.Errorf("state %s, want %s", got, tc.state)
			}
			cond := meta.IsStatusConditionTrue(a.Status.Conditions, agentv1.ConnectedCondition)
			valid := validationStatus(a, ValidationConnected) == statusSuccess
			if cond != tc.connected || valid != tc.connected {
				t.Errorf("Connected condition %v, connected validation %v; want both %v", cond, valid, tc.connected)
			}
		})
	}
}

// TestUnboundAgentShowsNoStage: once a host is unbound after its installation,
// its Agent shows no installation stage, and stays unbinding-pending-user-action
// until the host registers again.
func TestUnboundAgentShowsNoStage(t *testing.T) {
	a := healthyAgent(false, agentapi.StageDone)
	computeStatus(a, true, DefaultRequirements, nil)
	if a.Status.Progress.CurrentStage != "" {
		t.Errorf("stage %q, want none", a.Status.Progress.CurrentStage)
	}
	for range 2 {
		computeStatus(a, true, DefaultRequirements, nil)
		if got := a.Status.DebugInfo.State; got != agentapi.StateUnbindingPendingUserAction {
			t.Fatalf("state %s, want %s", got, agentapi.StateUnbindingPendingUserAction)
		}
	}
	if meta.IsStatusConditionTrue(a.Status.Conditions, agentv1.InstalledCondition) {
		t.Error("an unbound Agent is Installed")
	}
	// The host booted into discovery again (the service resets the state).
	a.Status.DebugInfo = agentv1.DebugInfo{State: agentapi.StateDiscoveringUnbound}
	computeStatus(a, true, DefaultRequirements, nil)
	if got := a.Status.DebugInfo.State; got != agentapi.StateKnownUnbound {
		t.Errorf("after registering again: state %s, want %s", got, agentapi.StateKnownUnbound)
	}
}
