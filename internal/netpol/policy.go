// Package netpol enforces NetworkPolicies on hcp's nodes. For the pods of one
// node it turns the policies that select them into nftables rules in the
// node's network namespace (table inet hcp-network-policy, on the forward
// hook), so a connection's first packet is checked against the policies of
// its source (egress) and of its destination (ingress); replies of allowed
// connections pass. Traffic from the node itself (the kubelet's probes) is
// not filtered, as with other CNIs.
package netpol

import (
	"cmp"
	"net"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Port is a protocol and a port range; Port 0 is every port of the protocol.
type Port struct {
	Protocol      corev1.Protocol
	Port, EndPort int32
}

// Peer is an address range less some ranges inside it.
type Peer struct {
	CIDR   string
	Except []string
}

// Rule allows traffic with a peer of Peers (any address when AnyPeer) on a
// port of Ports (any port when empty).
type Rule struct {
	AnyPeer bool
	Peers   []Peer
	Ports   []Port
}

// PodRules are what one pod of the node may receive and send. A direction
// not isolated by any policy allows everything; an isolated one allows only
// its rules.
type PodRules struct {
	Namespace, Name, IP string
	IngressIsolated     bool
	Ingress             []Rule
	EgressIsolated      bool
	Egress              []Rule
}

// State is what the rules are computed from.
type State struct {
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// Compute returns the rules of the node's pods that some policy isolates,
// ordered by address.
func Compute(node string, s State) []PodRules {
	nsLabels := map[string]labels.Set{}
	for _, ns := range s.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	var out []PodRules
	for _, pod := range s.Pods {
		ip := podIP(pod)
		if pod.Spec.NodeName != node || ip == "" {
			continue
		}
		pr := PodRules{Namespace: pod.Namespace, Name: pod.Name, IP: ip}
		for _, pol := range s.Policies {
			if pol.Namespace != pod.Namespace || !selects(&pol.Spec.PodSelector, pod.Labels) {
				continue
			}
			ingress, egress := directions(pol)
			if ingress {
				pr.IngressIsolated = true
				for _, r := range pol.Spec.Ingress {
					pr.Ingress = append(pr.Ingress, rules(s, nsLabels, pol.Namespace, r.From, r.Ports, pod)...)
				}
			}
			if egress {
				pr.EgressIsolated = true
				for _, r := range pol.Spec.Egress {
					pr.Egress = append(pr.Egress, rules(s, nsLabels, pol.Namespace, r.To, r.Ports, nil)...)
				}
			}
		}
		if pr.IngressIsolated || pr.EgressIsolated {
			out = append(out, pr)
		}
	}
	slices.SortFunc(out, func(a, b PodRules) int { return cmp.Compare(a.IP, b.IP) })
	return out
}

// directions says which directions a policy isolates: those it lists, or,
// when it lists none, ingress and (if it has egress rules) egress.
func directions(pol *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	return slices.Contains(pol.Spec.PolicyTypes, networkingv1.PolicyTypeIngress),
		slices.Contains(pol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// podIP is a running pod's IPv4 address on the pod network; empty for pods
// on the host's network, without an address, or finished.
func podIP(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil {
		return ""
	}
	for _, a := range pod.Status.PodIPs {
		if ip := net.ParseIP(a.IP); ip != nil && ip.To4() != nil {
			return a.IP
		}
	}
	if ip := net.ParseIP(pod.Status.PodIP); ip != nil && ip.To4() != nil {
		return pod.Status.PodIP
	}
	return ""
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		// A selector the API server admitted but we cannot read selects
		// nothing: it allows nothing rather than everything.
		return false
	}
	return s.Matches(labels.Set(l))
}

// peer is an address range, or a pod (whose named ports can be resolved).
type peer struct {
	Peer
	pod *corev1.Pod
}

// rules turns one ingress or egress rule of a policy in namespace ns into
// Rules. For ingress, named ports are the target pod's; for egress (target
// nil), each peer pod's.
func rules(s State, nsLabels map[string]labels.Set, ns string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, target *corev1.Pod) []Rule {
	anyPeer := len(peers) == 0
	var resolved []peer
	for _, p := range peers {
		resolved = append(resolved, resolvePeer(s, nsLabels, ns, p)...)
	}
	if !anyPeer && len(resolved) == 0 {
		return nil
	}
	var numeric []Port
	var named []networkingv1.NetworkPolicyPort
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		switch {
		case p.Port == nil:
			numeric = append(numeric, Port{Protocol: proto})
		case p.Port.StrVal != "":
			named = append(named, p)
		default:
			end := int32(0)
			if p.EndPort != nil {
				end = *p.EndPort
			}
			numeric = append(numeric, Port{Protocol: proto, Port: p.Port.IntVal, EndPort: end})
		}
	}
	allPorts := len(ports) == 0
	peersOf := func(ps []peer) []Peer {
		var out []Peer
		for _, p := range ps {
			out = append(out, p.Peer)
		}
		return out
	}
	var out []Rule
	if target != nil || len(named) == 0 {
		// Ingress: named ports are the target's, the same for every peer.
		all := numeric
		for _, p := range named {
			if port, ok := namedPort(target, p); ok {
				all = append(all, port)
			}
		}
		if allPorts || len(all) > 0 {
			out = append(out, Rule{AnyPeer: anyPeer, Peers: peersOf(resolved), Ports: all})
		}
		return out
	}
	// Egress with named ports: numeric ports for every peer, each named
	// port for the peer pods that have it.
	if len(numeric) > 0 {
		out = append(out, Rule{AnyPeer: anyPeer, Peers: peersOf(resolved), Ports: numeric})
	}
	candidates := resolved
	if anyPeer {
		candidates = nil
		for _, pod := range s.Pods {
			if ip := podIP(pod); ip != "" {
				candidates = append(candidates, peer{Peer: Peer{CIDR: ip + "/32"}, pod: pod})
			}
		}
	}
	for _, c := range candidates {
		if c.pod == nil {
			continue
		}
		var found []Port
		for _, p := range named {
			if port, ok := namedPort(c.pod, p); ok {
				found = append(found, port)
			}
		}
		if len(found) > 0 {
			out = append(out, Rule{Peers: []Peer{c.Peer}, Ports: found})
		}
	}
	return out
}

// resolvePeer is the addresses a policy peer selects.
func resolvePeer(s State, nsLabels map[string]labels.Set, ns string, p networkingv1.NetworkPolicyPeer) []peer {
	if p.IPBlock != nil {
		return []peer{{Peer: Peer{CIDR: p.IPBlock.CIDR, Except: slices.Clone(p.IPBlock.Except)}}}
	}
	var out []peer
	for _, pod := range s.Pods {
		ip := podIP(pod)
		if ip == "" {
			continue
		}
		if p.NamespaceSelector == nil {
			if pod.Namespace != ns {
				continue
			}
		} else if !selects(p.NamespaceSelector, nsLabels[pod.Namespace]) {
			continue
		}
		if p.PodSelector != nil && !selects(p.PodSelector, pod.Labels) {
			continue
		}
		out = append(out, peer{Peer: Peer{CIDR: ip + "/32"}, pod: pod})
	}
	return out
}

// namedPort resolves a named port against a pod's containers.
func namedPort(pod *corev1.Pod, p networkingv1.NetworkPolicyPort) (Port, bool) {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			cpProto := cmp.Or(cp.Protocol, corev1.ProtocolTCP)
			if cp.Name == p.Port.StrVal && cpProto == proto {
				return Port{Protocol: proto, Port: cp.ContainerPort}, true
			}
		}
	}
	return Port{}, false
}
