package controlplane

import (
	"strings"
	"testing"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
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

func TestBuildReplicasAndWiring(t *testing.T) {
	hosts := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}
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
			cp, err := Build(Input{HCP: hcp, Release: &release.Release{Name: "1.37.2"}, Network: Network{Hosts: hosts[:tc.quorum]}, StorageClass: "local"})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{Etcd: tc.quorum, KonnectivityServer: tc.quorum, KubeAPIServer: tc.quorum, KubeControllerManager: tc.others, KubeScheduler: tc.others}
			for _, c := range cp.Components {
				if len(c.Replicas) != want[c.Name] {
					t.Errorf("%s: %d replicas, want %d", c.Name, len(c.Replicas), want[c.Name])
				}
				for i, r := range c.Replicas {
					if r.Host != hosts[i] {
						t.Errorf("%s-%d on %s, want %s", c.Name, i, r.Host, hosts[i])
					}
				}
				switch c.Name {
				case Etcd:
					if n := strings.Count(arg(c.Replicas[0].Args, "--initial-cluster"), "="); n != tc.initialClusterN {
						t.Errorf("etcd initial cluster has %d members, want %d", n, tc.initialClusterN)
					}
					if !c.Persistent || c.StorageClass != "local" || c.PriorityClass != PriorityEtcd {
						t.Errorf("etcd storage/priority: %+v", c)
					}
				case KubeAPIServer:
					if n := len(strings.Split(arg(c.Replicas[0].Args, "--etcd-servers"), ",")); n != tc.quorum {
						t.Errorf("kube-apiserver knows %d etcd servers, want %d", n, tc.quorum)
					}
					if !strings.Contains(c.Replicas[0].Files[egressSelectorFile], url(hosts[0], KonnServerPort)) {
						t.Error("kube-apiserver's egress selector does not name its own konnectivity server")
					}
					if c.PriorityClass != PriorityAPICritical || !c.RequestServing {
						t.Errorf("kube-apiserver priority %q request-serving %v", c.PriorityClass, c.RequestServing)
					}
				case KubeControllerManager, KubeScheduler:
					if got := arg(c.Replicas[0].Args, "--leader-elect"); got != tc.leaderElect {
						t.Errorf("%s --leader-elect=%s, want %s", c.Name, got, tc.leaderElect)
					}
					if c.StartAfter != KubeAPIServer {
						t.Errorf("%s starts after %q", c.Name, c.StartAfter)
					}
				}
			}
			if cp.Published[0].Service != string(hyperv1.APIServer) || cp.Published[0].TargetPort != KubeAPIServerPort {
				t.Errorf("published %+v", cp.Published)
			}
		})
	}
}

func TestFirstServiceIP(t *testing.T) {
	for in, want := range map[string]string{"172.31.0.0/16": "172.31.0.1", "10.96.0.0/12": "10.96.0.1", "fd02::/112": "fd02::1"} {
		if got, err := FirstServiceIP(in); err != nil || got != want {
			t.Errorf("FirstServiceIP(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := FirstServiceIP("nonsense"); err == nil {
		t.Error("nonsense accepted")
	}
}
