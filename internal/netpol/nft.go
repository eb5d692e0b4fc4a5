package netpol

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// Table is the nftables table (family inet) of the node's policy rules.
const Table = "hcp-network-policy"

// Ruleset writes the whole table for rules into tx: the table is replaced in
// one transaction, so a packet meets either the old rules or the new.
//
// The forward chain accepts packets of established connections, sends a
// new connection's first packet through its source pod's egress chain
// (which returns when a rule allows it) and its destination pod's ingress
// chain (which accepts when a rule allows it); both end by dropping.
func Ruleset(tx *knftables.Transaction, pods []PodRules) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("NetworkPolicies of this node's pods")})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("NetworkPolicies of this node's pods")})
	tx.Add(&knftables.Map{Name: "ingress", Type: "ipv4_addr : verdict"})
	tx.Add(&knftables.Map{Name: "egress", Type: "ipv4_addr : verdict"})
	for i, p := range pods {
		if p.EgressIsolated {
			podChain(tx, "egress", i, p, p.Egress, "daddr", "return")
		}
		if p.IngressIsolated {
			podChain(tx, "ingress", i, p, p.Ingress, "saddr", "accept")
		}
	}
	tx.Add(&knftables.Chain{Name: "forward", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority + "-5")})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "ct state established,related accept"})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "ip saddr vmap @egress"})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "ip daddr vmap @ingress"})
}

// podChain writes pod i's chain of one direction (named after the map that
// jumps to it): a rule per match of each allowed peer and port, ending with
// verdict; what no rule allows is dropped.
func podChain(tx *knftables.Transaction, direction string, i int, p PodRules, rules []Rule, peerField, verdict string) {
	chain := direction + "-" + strconv.Itoa(i)
	tx.Add(&knftables.Chain{Name: chain, Comment: knftables.PtrTo(p.Namespace + "/" + p.Name)})
	for _, r := range rules {
		for _, m := range matches(r, peerField) {
			tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat(m, verdict)})
		}
	}
	tx.Add(&knftables.Rule{Chain: chain, Rule: "drop"})
	tx.Add(&knftables.Element{Map: direction, Key: []string{p.IP}, Value: []string{"jump " + chain}})
}

// matches are the nftables matches of a rule: one per peer range with
// exceptions (the others share one), times one per protocol.
func matches(r Rule, dir string) []string {
	var addrs []string
	if !r.AnyPeer {
		var plain []string
		for _, p := range r.Peers {
			if len(p.Except) == 0 {
				plain = append(plain, p.CIDR)
				continue
			}
			addrs = append(addrs, fmt.Sprintf("ip %s %s ip %s != %s", dir, set([]string{p.CIDR}), dir, set(p.Except)))
		}
		if len(plain) > 0 {
			addrs = append(addrs, fmt.Sprintf("ip %s %s", dir, set(plain)))
		}
		if len(addrs) == 0 {
			return nil
		}
	} else {
		addrs = []string{""}
	}
	ports := []string{""}
	if len(r.Ports) > 0 {
		ports = nil
		byProto := map[corev1.Protocol][]string{}
		all := map[corev1.Protocol]bool{}
		var protos []corev1.Protocol
		for _, p := range r.Ports {
			if _, seen := byProto[p.Protocol]; !seen && !all[p.Protocol] {
				protos = append(protos, p.Protocol)
			}
			switch {
			case p.Port == 0:
				all[p.Protocol] = true
				byProto[p.Protocol] = nil
			case !all[p.Protocol] && p.EndPort > p.Port:
				byProto[p.Protocol] = append(byProto[p.Protocol], fmt.Sprintf("%d-%d", p.Port, p.EndPort))
			case !all[p.Protocol]:
				byProto[p.Protocol] = append(byProto[p.Protocol], strconv.Itoa(int(p.Port)))
			}
		}
		for _, proto := range protos {
			m := "meta l4proto " + strings.ToLower(string(proto))
			if !all[proto] {
				m += " th dport " + set(byProto[proto])
			}
			ports = append(ports, m)
		}
	}
	var out []string
	for _, a := range addrs {
		for _, p := range ports {
			out = append(out, strings.TrimSpace(a+" "+p))
		}
	}
	return out
}

// set is an nftables anonymous set of distinct values, in order.
func set(values []string) string {
	var v []string
	for _, s := range values {
		if !slices.Contains(v, s) {
			v = append(v, s)
		}
	}
	return "{ " + strings.Join(v, ", ") + " }"
}
