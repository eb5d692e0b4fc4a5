package netpol

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"
)

func pod(ns, name, node, ip string, l map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func policy(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func tcpPort(p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: &p}
}

func TestCompute(t *testing.T) {
	etcd := pod("cp", "etcd-0", "n1", "10.244.1.2", map[string]string{"app": "etcd"}, corev1.ContainerPort{Name: "client", ContainerPort: 2379})
	kas := pod("cp", "kas-1", "n2", "10.244.2.3", map[string]string{"app": "kube-apiserver"})
	other := pod("other", "client", "n1", "10.244.1.9", map[string]string{"app": "x"})
	mon := pod("monitoring", "prom", "n2", "10.244.2.7", nil)
	hostNet := pod("cp", "host", "n1", "192.168.0.5", map[string]string{"app": "etcd"})
	hostNet.Spec.HostNetwork = true
	done := pod("cp", "done", "n1", "10.244.1.4", map[string]string{"app": "etcd"})
	done.Status.Phase = corev1.PodSucceeded
	namespaces := []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "cp"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "monitoring", Labels: map[string]string{"role": "monitoring"}}},
	}
	pods := []*corev1.Pod{etcd, kas, other, mon, hostNet, done}
	etcdSel := metav1.LabelSelector{MatchLabels: map[string]string{"app": "etcd"}}
	for _, tc := range []struct {
		name     string
		node     string
		policies []*networkingv1.NetworkPolicy
		want     []PodRules
	}{
		{name: "no policy isolates nothing", node: "n1"},
		{name: "default deny: isolated, no rule", node: "n1",
			policies: []*networkingv1.NetworkPolicy{policy("cp", "deny", networkingv1.NetworkPolicySpec{})},
			want:     []PodRules{{Namespace: "cp", Name: "etcd-0", IP: "10.244.1.2", IngressIsolated: true}}},
		{name: "same namespace, on another node too", node: "n1",
			policies: []*networkingv1.NetworkPolicy{policy("cp", "same", networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}})},
			want: []PodRules{{Namespace: "cp", Name: "etcd-0", IP: "10.244.1.2", IngressIsolated: true,
				Ingress: []Rule{{Peers: []Peer{{CIDR: "10.244.1.2/32"}, {CIDR: "10.244.2.3/32"}}}}}}},
		{name: "namespace selector and a named port of the target", node: "n1",
			policies: []*networkingv1.NetworkPolicy{policy("cp", "metrics", networkingv1.NetworkPolicySpec{PodSelector: etcdSel,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "monitoring"}}}},
					Ports: []networkingv1.NetworkPolicyPort{tcpPort(intstr.FromString("client")), tcpPort(intstr.FromString("missing"))}}}})},
			want: []PodRules{{Namespace: "cp", Name: "etcd-0", IP: "10.244.1.2", IngressIsolated: true,
				Ingress: []Rule{{Peers: []Peer{{CIDR: "10.244.2.7/32"}}, Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 2379}}}}}}},
		{name: "a peer that selects no pod allows nothing", node: "n1",
			policies: []*networkingv1.NetworkPolicy{policy("cp", "none", networkingv1.NetworkPolicySpec{PodSelector: etcdSel,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nothing"}}}}}}})},
			want: []PodRules{{Namespace: "cp", Name: "etcd-0", IP: "10.244.1.2", IngressIsolated: true}}},
		{name: "any peer on a port range; ip block with exceptions", node: "n2",
			policies: []*networkingv1.NetworkPolicy{policy("cp", "api", networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "kube-apiserver"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(6443)), EndPort: ptr.To(int32(6445))}}},
					{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16"}}}}},
				}})},
			want: []PodRules{{Namespace: "cp", Name: "kas-1", IP: "10.244.2.3", IngressIsolated: true, Ingress: []Rule{
				{AnyPeer: true, Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 6443, EndPort: 6445}}},
				{Peers: []Peer{{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16"}}}},
			}}}},
		{name: "egress only, named port of each peer", node: "n1",
			policies: []*networkingv1.NetworkPolicy{policy("other", "out", networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
					Ports: []networkingv1.NetworkPolicyPort{tcpPort(intstr.FromInt32(53)), tcpPort(intstr.FromString("client"))}}}})},
			want: []PodRules{{Namespace: "other", Name: "client", IP: "10.244.1.9", EgressIsolated: true, Egress: []Rule{
				{Peers: []Peer{{CIDR: "10.244.1.2/32"}, {CIDR: "10.244.2.3/32"}, {CIDR: "10.244.1.9/32"}, {CIDR: "10.244.2.7/32"}},
					Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 53}}},
				{Peers: []Peer{{CIDR: "10.244.1.2/32"}}, Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 2379}}},
			}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(tc.node, State{Pods: pods, Namespaces: namespaces, Policies: tc.policies})
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("rules (-want +got):\n%s", d)
			}
		})
	}
}

func TestRuleset(t *testing.T) {
	pods := []PodRules{
		{Namespace: "cp", Name: "etcd-0", IP: "10.244.1.2", IngressIsolated: true, Ingress: []Rule{
			{Peers: []Peer{{CIDR: "10.244.1.2/32"}, {CIDR: "10.244.2.3/32"}, {CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
				Ports: []Port{{Protocol: corev1.ProtocolTCP, Port: 2379}, {Protocol: corev1.ProtocolTCP, Port: 2380, EndPort: 2381}, {Protocol: corev1.ProtocolUDP}}},
		}},
		{Namespace: "other", Name: "client", IP: "10.244.1.9", EgressIsolated: true, Egress: []Rule{{AnyPeer: true}}},
	}
	fake := knftables.NewFake(knftables.InetFamily, Table)
	tx := fake.NewTransaction()
	Ruleset(tx, pods)
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	got := fake.Dump()
	for _, want := range []string{
		"add rule inet hcp-network-policy ingress-0 ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } meta l4proto tcp th dport { 2379, 2380-2381 } accept",
		"add rule inet hcp-network-policy ingress-0 ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } meta l4proto udp accept",
		"add rule inet hcp-network-policy ingress-0 ip saddr { 10.244.1.2/32, 10.244.2.3/32 } meta l4proto tcp th dport { 2379, 2380-2381 } accept",
		"add rule inet hcp-network-policy ingress-0 drop",
		"add element inet hcp-network-policy ingress { 10.244.1.2 : jump ingress-0 }",
		"add rule inet hcp-network-policy egress-1 return",
		"add element inet hcp-network-policy egress { 10.244.1.9 : jump egress-1 }",
		"add rule inet hcp-network-policy forward ip daddr vmap @ingress",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	// The kernel's own parser accepts it (a check, nothing is written).
	nft, err := knftables.New(knftables.InetFamily, Table)
	if err != nil {
		t.Fatalf("nft (Debian's nftables package): %v", err)
	}
	real := nft.NewTransaction()
	Ruleset(real, pods)
	if err := nft.Check(context.Background(), real); err != nil {
		t.Fatalf("nft refuses the ruleset: %v\n%s", err, real)
	}
}
