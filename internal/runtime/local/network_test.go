package local

import (
	"strings"
	"testing"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

func arg(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// The local runtime places replica i of every component on its i-th loopback
// address, and the components find one another there.
func TestBuildReplicasAndWiring(t *testing.T) {
	addrs := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}
	for _, tc := range []struct {
		policy          hyperv1.AvailabilityPolicy
		quorum, others  int
		leaderElect     string
		initialClusterN int
	}{
		{hyperv1.SingleReplica, 1, 1, "false", 1},
		{hyperv1.HighlyAvailable, 3, 2, "true", 3},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			hcp := &hyperv1.HostedControlPlane{}
			hcp.Namespace, hcp.Name = "clusters-example", "example"
			hcp.Spec.ControllerAvailabilityPolicy = tc.policy
			hcp.Spec.InfraID = "example-abcde"
			cp, err := controlplane.Build(controlplane.Input{HCP: hcp, Release: &release.Release{Name: "1.37.2"}, Network: hosts(addrs[:tc.quorum]), StorageClass: "local"})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{controlplane.Etcd: tc.quorum, controlplane.KonnectivityServer: tc.quorum, controlplane.KubeAPIServer: tc.quorum, controlplane.KubeControllerManager: tc.others, controlplane.KubeScheduler: tc.others}
			for _, c := range cp.Components {
				if c.Replicas != want[c.Name] {
					t.Errorf("%s: %d replicas, want %d", c.Name, c.Replicas, want[c.Name])
				}
				reps := c.Instances(hosts(addrs[:tc.quorum]))
				for i, r := range reps {
					if r.Host != addrs[i] {
						t.Errorf("%s-%d on %s, want %s", c.Name, i, r.Host, addrs[i])
					}
					if strings.Contains(strings.Join(r.Args, " "), "$(") {
						t.Errorf("%s-%d has a placement variable left: %q", c.Name, i, r.Args)
					}
				}
				switch c.Name {
				case controlplane.Etcd:
					if n := strings.Count(arg(reps[0].Args, "--initial-cluster"), "="); n != tc.initialClusterN {
						t.Errorf("etcd initial cluster has %d members, want %d", n, tc.initialClusterN)
					}
					if !c.Persistent || c.StorageClass != "local" || c.PriorityClass != controlplane.PriorityEtcd {
						t.Errorf("etcd storage/priority: %+v", c)
					}
				case controlplane.KubeAPIServer:
					if n := len(strings.Split(arg(reps[0].Args, "--etcd-servers"), ",")); n != tc.quorum {
						t.Errorf("kube-apiserver knows %d etcd servers, want %d", n, tc.quorum)
					}
					if !strings.Contains(reps[0].Files["egress-selector.yaml"], "https://"+addrs[0]+":8090") {
						t.Error("kube-apiserver's egress selector does not name its own konnectivity server")
					}
					if c.PriorityClass != controlplane.PriorityAPICritical || !c.RequestServing {
						t.Errorf("kube-apiserver priority %q request-serving %v", c.PriorityClass, c.RequestServing)
					}
				case controlplane.KubeControllerManager, controlplane.KubeScheduler:
					if got := arg(reps[0].Args, "--leader-elect"); got != tc.leaderElect {
						t.Errorf("%s --leader-elect=%s, want %s", c.Name, got, tc.leaderElect)
					}
					if c.StartAfter != controlplane.KubeAPIServer {
						t.Errorf("%s starts after %q", c.Name, c.StartAfter)
					}
				}
			}
			if cp.Published[0].Service != string(hyperv1.APIServer) || cp.Published[0].TargetPort != controlplane.KubeAPIServerPort {
				t.Errorf("published %+v", cp.Published)
			}
		})
	}
}
