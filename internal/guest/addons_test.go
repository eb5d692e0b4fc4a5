package guest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

func TestAddons(t *testing.T) {
	in := AddonsInput{ServiceCIDR: "172.31.0.0/16", CoreDNSImage: "registry.hcp.test/coredns:v1.15.0", Policy: hyperv1.HighlyAvailable,
		KubeletClientUser: "system:kube-apiserver-kubelet-client", APIServerIP: "10.231.1.1", APIServerPort: 6443}
	objs, err := Addons(in)
	if err != nil {
		t.Fatal(err)
	}
	var dnsIP string
	var slice *discoveryv1.EndpointSlice
	var endpoints *corev1.Endpoints
	for _, o := range objs {
		switch x := o.(type) {
		case *corev1.Service:
			dnsIP = x.Spec.ClusterIP
		case *discoveryv1.EndpointSlice:
			slice = x
		case *corev1.Endpoints:
			endpoints = x
		}
	}
	if dnsIP != "172.31.0.10" {
		t.Errorf("DNS Service at %q, want the tenth address 172.31.0.10", dnsIP)
	}
	if slice == nil || slice.Endpoints[0].Addresses[0] != "10.231.1.1" || *slice.Ports[0].Port != 6443 {
		t.Errorf("kubernetes EndpointSlice %+v", slice)
	}
	if endpoints == nil || endpoints.Subsets[0].Addresses[0].IP != "10.231.1.1" || endpoints.Subsets[0].Ports[0].Port != 6443 ||
		endpoints.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Errorf("kubernetes Endpoints %+v", endpoints)
	}
	// A control plane on loopback gets no endpoint pods could not reach.
	in.APIServerIP = "127.0.0.1"
	objs, _ = Addons(in)
	for _, o := range objs {
		switch o.(type) {
		case *discoveryv1.EndpointSlice, *corev1.Endpoints:
			t.Errorf("an endpoint for a loopback API server: %T", o)
		}
	}
	if _, err := Addons(AddonsInput{ServiceCIDR: "nonsense", CoreDNSImage: "x"}); err == nil {
		t.Error("a bad service network was accepted")
	}
}
