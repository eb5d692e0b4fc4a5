package controlplane

import (
	"testing"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

func TestPlanRollout(t *testing.T) {
	old := &release.Release{Name: "1.36.3", Components: map[string]string{Etcd: "v3.6.8", KubeAPIServer: "v1.36.3", KonnectivityServer: "v0.34.0",
		KubeControllerManager: "v1.36.3", KubeScheduler: "v1.36.3"}}
	next := &release.Release{Name: "1.37.2", Components: map[string]string{Etcd: "v3.7.0", KubeAPIServer: "v1.37.2", KonnectivityServer: "v0.34.0",
		KubeControllerManager: "v1.37.2", KubeScheduler: "v1.37.2"}}
	running := func(_, version string) *release.Release {
		for _, r := range []*release.Release{next, old} {
			for _, v := range r.Components {
				if v == version {
					return r
				}
			}
		}
		return nil
	}
	st := func(name, version string, replicas, ready, updated int32) hyperv1.ComponentStatus {
		return hyperv1.ComponentStatus{Name: name, Version: version, Replicas: replicas, ReadyReplicas: ready, UpdatedReplicas: updated}
	}
	allOld := func(etcdVersion string, etcdUpdated int32) []hyperv1.ComponentStatus {
		return []hyperv1.ComponentStatus{st(Etcd, etcdVersion, 3, 3, etcdUpdated), st(KonnectivityServer, "v0.34.0", 3, 3, 3),
			st(KubeAPIServer, "v1.36.3", 3, 3, 3), st(KubeControllerManager, "v1.36.3", 2, 2, 2), st(KubeScheduler, "v1.36.3", 2, 2, 2)}
	}
	for _, tc := range []struct {
		name     string
		status   []hyperv1.ComponentStatus
		held     []string
		step     string
		complete bool
	}{
		{name: "a new control plane takes the target everywhere", status: nil, step: "upgrading etcd 1/1 to 1.37.2"},
		{name: "etcd first", status: allOld("v3.6.8", 3), held: []string{KubeAPIServer, KubeControllerManager, KubeScheduler}, step: "upgrading etcd 1/3 to 1.37.2"},
		{name: "etcd member 2 of 3", status: allOld("v3.7.0", 1), held: []string{KubeAPIServer, KubeControllerManager, KubeScheduler}, step: "upgrading etcd 2/3 to 1.37.2"},
		{name: "then the API servers", status: allOld("v3.7.0", 3), held: []string{KubeControllerManager, KubeScheduler}, step: "upgrading kube-apiserver 1/3 to 1.37.2"},
		{name: "then the controllers", status: []hyperv1.ComponentStatus{st(Etcd, "v3.7.0", 3, 3, 3), st(KonnectivityServer, "v0.34.0", 3, 3, 3),
			st(KubeAPIServer, "v1.37.2", 3, 3, 3), st(KubeControllerManager, "v1.37.2", 2, 2, 1), st(KubeScheduler, "v1.36.3", 2, 2, 2)},
			step: "upgrading kube-controller-manager 2/2 to 1.37.2"},
		{name: "an API server not ready holds the controllers", status: []hyperv1.ComponentStatus{st(Etcd, "v3.7.0", 3, 3, 3), st(KonnectivityServer, "v0.34.0", 3, 3, 3),
			st(KubeAPIServer, "v1.37.2", 3, 2, 2), st(KubeControllerManager, "v1.36.3", 2, 2, 2), st(KubeScheduler, "v1.36.3", 2, 2, 2)},
			held: []string{KubeControllerManager, KubeScheduler}, step: "upgrading kube-apiserver 3/3 to 1.37.2"},
		{name: "complete", status: []hyperv1.ComponentStatus{st(Etcd, "v3.7.0", 3, 3, 3), st(KonnectivityServer, "v0.34.0", 3, 3, 3),
			st(KubeAPIServer, "v1.37.2", 3, 3, 3), st(KubeControllerManager, "v1.37.2", 2, 2, 2), st(KubeScheduler, "v1.37.2", 2, 2, 2)}, complete: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanRollout(next, tc.status, running)
			if got.Complete != tc.complete || got.Step != tc.step {
				t.Errorf("complete %v step %q, want %v %q", got.Complete, got.Step, tc.complete, tc.step)
			}
			if len(got.Releases) != len(tc.held) {
				t.Errorf("held %v, want %v", got.Releases, tc.held)
			}
			for _, name := range tc.held {
				if got.Releases[name] != old {
					t.Errorf("%s runs %v, want the old release", name, got.Releases[name])
				}
			}
		})
	}
}

// A new target in the middle of a rollout: the components already moved
// start over towards it in order; the ones not reached yet keep what they
// run until their stage comes.
func TestPlanRolloutConvergesToTheNewestTarget(t *testing.T) {
	a := &release.Release{Name: "1.36.3", Components: map[string]string{Etcd: "v3.6.8", KubeAPIServer: "v1.36.3", KonnectivityServer: "v0.34.0",
		KubeControllerManager: "v1.36.3", KubeScheduler: "v1.36.3"}}
	b := &release.Release{Name: "1.36.4", Components: map[string]string{Etcd: "v3.6.9", KubeAPIServer: "v1.36.4", KonnectivityServer: "v0.34.0",
		KubeControllerManager: "v1.36.4", KubeScheduler: "v1.36.4"}}
	c := &release.Release{Name: "1.37.2", Components: map[string]string{Etcd: "v3.7.0", KubeAPIServer: "v1.37.2", KonnectivityServer: "v0.34.0",
		KubeControllerManager: "v1.37.2", KubeScheduler: "v1.37.2"}}
	running := func(component, version string) *release.Release {
		for _, r := range []*release.Release{c, b, a} {
			if r.Components[component] == version {
				return r
			}
		}
		return nil
	}
	// a -> b had moved etcd and one API server when c was asked for.
	status := []hyperv1.ComponentStatus{
		{Name: Etcd, Version: "v3.6.9", Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3},
		{Name: KonnectivityServer, Version: "v0.34.0", Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3},
		{Name: KubeAPIServer, Version: "v1.36.4", Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 1},
		{Name: KubeControllerManager, Version: "v1.36.3", Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2},
		{Name: KubeScheduler, Version: "v1.36.3", Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2},
	}
	got := PlanRollout(c, status, running)
	if got.Complete || got.Step != "upgrading etcd 1/3 to 1.37.2" {
		t.Fatalf("complete %v step %q", got.Complete, got.Step)
	}
	if got.Releases[Etcd] != nil {
		t.Errorf("etcd runs %s, want the newest target", got.Releases[Etcd].Name)
	}
	if got.Releases[KubeAPIServer] != b || got.Releases[KubeControllerManager] != a || got.Releases[KubeScheduler] != a {
		t.Errorf("held: kube-apiserver %v, kcm %v, scheduler %v; want each on what it runs", got.Releases[KubeAPIServer], got.Releases[KubeControllerManager], got.Releases[KubeScheduler])
	}
}
