package hosted

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

func TestRules(t *testing.T) {
	if got := ControlPlaneNamespace("clusters", "example"); got != "clusters-example" {
		t.Errorf("control plane namespace %q", got)
	}
	for policy, want := range map[hyperv1.AvailabilityPolicy][2]int{hyperv1.SingleReplica: {1, 1}, hyperv1.HighlyAvailable: {3, 2}, "": {1, 1}} {
		if q, o := Replicas(policy); q != want[0] || o != want[1] {
			t.Errorf("%q: %d/%d replicas, want %v", policy, q, o, want)
		}
	}
	id := "0b6a3c3e-5c1f-4d5e-9c61-1f0c3c7e2a10"
	if got := AgentOf(ProviderID(id)); got != id {
		t.Errorf("provider ID round trip: %q", got)
	}
	if got := AgentOf("aws:///us-east-1a/i-0123"); got != "" {
		t.Errorf("a foreign provider ID names Agent %q", got)
	}
	if got := StorageClassName(hyperv1.EtcdSpec{}); got != "" {
		t.Errorf("no managed etcd: StorageClass %q", got)
	}
	etcd := hyperv1.EtcdSpec{Managed: &hyperv1.ManagedEtcdSpec{Storage: hyperv1.ManagedEtcdStorageSpec{
		PersistentVolume: &hyperv1.PersistentVolumeEtcdStorageSpec{StorageClassName: ptr.To("lvm-storageclass")}}}}
	if got := StorageClassName(etcd); got != "lvm-storageclass" {
		t.Errorf("StorageClass %q", got)
	}
	a := &agentv1.Agent{}
	a.Status.Inventory.Hostname = "reported"
	if Hostname(a) != "reported" || Bound(a) {
		t.Errorf("unbound agent: hostname %q, bound %v", Hostname(a), Bound(a))
	}
	a.Spec.Hostname = "chosen"
	a.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: "clusters-example", Name: "example"}
	if Hostname(a) != "chosen" || !Bound(a) {
		t.Errorf("bound agent: hostname %q, bound %v", Hostname(a), Bound(a))
	}
}

func TestIneligible(t *testing.T) {
	validated := []metav1.Condition{{Type: agentv1.ValidatedCondition, Status: metav1.ConditionTrue}}
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		a    agentv1.Agent
		want string
	}{
		{"approved and validated", agentv1.Agent{Spec: agentv1.AgentSpec{Approved: true}, Status: agentv1.AgentStatus{Conditions: validated}}, ""},
		{"not approved", agentv1.Agent{Status: agentv1.AgentStatus{Conditions: validated}}, "is not approved"},
		{"not validated", agentv1.Agent{Spec: agentv1.AgentSpec{Approved: true}}, "is not validated"},
		{"being deleted", agentv1.Agent{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Spec: agentv1.AgentSpec{Approved: true}, Status: agentv1.AgentStatus{Conditions: validated}}, "is being deleted"},
	} {
		if got := Ineligible(&tc.a); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReleaseImage(t *testing.T) {
	rel, cond := ReleaseImage(release.Store{Dir: t.TempDir()}, "hcp.dev/release:0.0.1", 3)
	if rel != nil || cond.Status != metav1.ConditionFalse || cond.Reason != ReleaseImageNotFound || cond.ObservedGeneration != 3 ||
		!strings.Contains(cond.Message, "spec.release.image") {
		t.Errorf("an unknown release: %v %+v", rel, cond)
	}
}

func TestPaused(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		in      *string
		paused  bool
		wait    time.Duration
		invalid bool
	}{
		{nil, false, 0, false},
		{s(""), false, 0, false},
		{s("true"), true, 0, false},
		{s("2026-12-02T12:30:00Z"), true, 30 * time.Minute, false},
		{s("2026-12-02T11:00:00Z"), false, 0, false},
		{s("tomorrow"), false, 0, true},
	} {
		paused, wait, err := Paused(tc.in, now)
		if paused != tc.paused || wait != tc.wait || (err != nil) != tc.invalid {
			t.Errorf("Paused(%v) = %v, %v, %v; want %v, %v, invalid %v", tc.in, paused, wait, err, tc.paused, tc.wait, tc.invalid)
		}
	}
}
