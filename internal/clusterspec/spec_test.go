package clusterspec

import (
	"strings"
	"testing"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

func valid() *Spec {
	return &Spec{Name: "example", Namespace: "clusters", AgentNamespace: "clusters-example", PullSecret: []byte(`{"auths":{}}`),
		ControlPlaneAvailabilityPolicy: "SingleReplica", InfraAvailabilityPolicy: "SingleReplica", ReleaseImage: "hcp.dev/release:1.37.2",
		ServiceCIDR: hosted.DefaultServiceCIDR, ClusterCIDR: hosted.DefaultClusterCIDR, APIServerAddress: "192.0.2.10"}
}

func TestCheckReportsEveryBadFieldOnce(t *testing.T) {
	s := valid()
	s.Name, s.PullSecret, s.AgentNamespace, s.Labels = "Bad_Name", nil, "", map[string]string{"team": "a b"}
	_, errs := s.Check()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	if got := strings.Join(fields, ","); got != "name,agent-namespace,pull-secret,labels" {
		t.Fatalf("fields %s: %v", got, errs)
	}
	if _, err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--name: ") {
		t.Fatalf("Validate gives the first: %v", err)
	}
	if _, errs := valid().Check(); len(errs) != 0 {
		t.Fatalf("valid spec refused: %v", errs)
	}
}

func TestLoadBalancerPublishing(t *testing.T) {
	s := valid()
	s.APIServerPublishing, s.APIServerAddress = PublishLoadBalancer, ""
	if _, err := s.Validate(); err == nil || !strings.Contains(err.Error(), "--base-domain") {
		t.Fatalf("LoadBalancer without a base domain: %v", err)
	}
	s.BaseDomain = "krnl.es"
	in, err := s.Validate()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range Objects(s, in) {
		hc, ok := o.(*hyperv1.HostedCluster)
		if !ok {
			continue
		}
		api := hc.Spec.Services[0]
		if api.Service != hyperv1.APIServer || api.Type != hyperv1.LoadBalancer || api.LoadBalancer.Hostname != "api.example.krnl.es" {
			t.Fatalf("API server publishing %+v", api)
		}
		return
	}
	t.Fatal("no HostedCluster")
}

func TestFieldErrorReadsLikeTheCLI(t *testing.T) {
	err := Invalid("name", "is required", "example")
	if err.Error() != "--name: is required (for example: --name example)" {
		t.Fatal(err)
	}
	fe, ok := AsFieldError(err)
	if !ok || fe.Hint() != "is required (for example: example)" {
		t.Fatal(fe)
	}
}
