package controlplane

import (
	"fmt"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// rolloutStages is the order in which a control plane takes a new release:
// etcd first, then the API server (with the konnectivity server beside it),
// then the controllers. Each stage starts once the one before runs the new
// release with every replica ready; within a stage the runtime restarts one
// replica of a component at a time.
var rolloutStages = [][]string{{Etcd}, {KubeAPIServer, KonnectivityServer}, {KubeControllerManager, KubeScheduler}}

// Rollout is where a change of release stands.
type Rollout struct {
	// Releases names, for each component that must keep its release for now,
	// the release it runs (Input.Releases); the others run the target.
	Releases map[string]*release.Release
	// Step says what is rolling out, e.g. "upgrading kube-apiserver 2/3 to
	// 1.37.2"; empty once Complete.
	Step string
	// Complete: every replica of every component runs the target and is ready.
	Complete bool
}

// PlanRollout decides from the components' status which release each
// component runs while target rolls out. running finds the release of a
// component's reported version (nil when none is known: it takes the target).
func PlanRollout(target *release.Release, status []hyperv1.ComponentStatus, running func(component, version string) *release.Release) Rollout {
	byName := map[string]hyperv1.ComponentStatus{}
	for _, s := range status {
		byName[s.Name] = s
	}
	out := Rollout{Releases: map[string]*release.Release{}}
	held := false
	for _, stage := range rolloutStages {
		if held {
			// Later stages keep what they run.
			for _, name := range stage {
				if s, ok := byName[name]; ok && s.Version != "" && s.Version != target.Components[name] {
					if r := running(name, s.Version); r != nil {
						out.Releases[name] = r
					}
				}
			}
			continue
		}
		for _, name := range stage {
			s, ok := byName[name]
			if ok && s.Replicas > 0 && s.Version == target.Components[name] && s.UpdatedReplicas >= s.Replicas && s.ReadyReplicas >= s.Replicas {
				continue
			}
			held = true
			updated := s.UpdatedReplicas
			if s.Version != target.Components[name] {
				updated = 0 // its status is still of the release before
			}
			if out.Step == "" {
				out.Step = fmt.Sprintf("upgrading %s %d/%d to %s", name, min(updated+1, max(s.Replicas, 1)), max(s.Replicas, 1), target.Name)
			}
		}
	}
	out.Complete = !held
	return out
}
