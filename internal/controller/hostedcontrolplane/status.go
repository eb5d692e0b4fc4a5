package hostedcontrolplane

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
)

// Condition reasons.
const (
	ReasonAsExpected          = "AsExpected"
	ReasonWaitingForEtcd      = "EtcdQuorumUnavailable"
	ReasonWaitingForAPIServer = "KubeAPIServerUnavailable"
	ReasonUnavailableReplicas = "UnavailableReplicas"
	// ReasonComponentsUnhealthy: every replica answers, but one has a problem
	// (its data volume is full).
	ReasonComponentsUnhealthy = "ComponentsUnhealthy"
	ReasonDeploying           = "Deploying"
	// ReasonWaitingForGuest: the control plane serves, but the hosted
	// cluster's ClusterVersion and ClusterOperators are not there yet.
	ReasonWaitingForGuest = "WaitingForClusterOperators"
	ReasonInvalidConfig   = "InvalidConfiguration"
	// ReasonUpgrading: a new release is rolling out.
	ReasonUpgrading = "UpgradeInProgress"
)

func component(components []hyperv1.ComponentStatus, name string) hyperv1.ComponentStatus {
	for _, c := range components {
		if c.Name == name {
			return c
		}
	}
	return hyperv1.ComponentStatus{Name: name}
}

// setHealthConditions sets EtcdAvailable, KubeAPIServerAvailable, Available,
// Progressing and Degraded from the components' readiness. deployed says
// whether every replica has been ready since the release was applied: until
// then, replicas not ready are still starting (Progressing), after it they
// are missing (Degraded). guestWait, when not empty, is why the hosted
// cluster's own resources (ClusterVersion, ClusterOperators) are not there
// yet: the control plane is not Available before they are. It reads nothing
// but its arguments.
func setHealthConditions(hcp *hyperv1.HostedControlPlane, components []hyperv1.ComponentStatus, deployed bool, guestWait string) {
	gen := hcp.Generation
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	etcd := component(components, controlplane.Etcd)
	kas := component(components, controlplane.KubeAPIServer)
	etcdOK := etcd.Replicas > 0 && etcd.ReadyReplicas > etcd.Replicas/2
	kasOK := kas.ReadyReplicas > 0
	if etcdOK {
		msg := fmt.Sprintf("%d of %d etcd members are ready", etcd.ReadyReplicas, etcd.Replicas)
		if etcd.Message != "" {
			msg += "; " + etcd.Message
		}
		set(hyperv1.ConditionEtcdAvailable, true, "QuorumAvailable", msg)
	} else {
		msg := fmt.Sprintf("%d of %d etcd members are ready; a quorum needs %d", etcd.ReadyReplicas, etcd.Replicas, etcd.Replicas/2+1)
		if etcd.Message != "" {
			msg += "; " + etcd.Message
		}
		set(hyperv1.ConditionEtcdAvailable, false, ReasonWaitingForEtcd, msg)
	}
	if kasOK {
		set(hyperv1.ConditionKubeAPIServerAvailable, true, ReasonAsExpected, fmt.Sprintf("%d of %d kube-apiservers are ready", kas.ReadyReplicas, kas.Replicas))
	} else {
		set(hyperv1.ConditionKubeAPIServerAvailable, false, ReasonWaitingForAPIServer, "no kube-apiserver answers /readyz yet")
	}
	switch {
	case etcdOK && kasOK && guestWait != "":
		set(hyperv1.ConditionAvailable, false, ReasonWaitingForGuest, "Waiting for the hosted cluster's ClusterVersion and ClusterOperators: "+guestWait)
	case etcdOK && kasOK:
		set(hyperv1.ConditionAvailable, true, ReasonAsExpected, "The hosted control plane is available")
	case !etcdOK:
		set(hyperv1.ConditionAvailable, false, ReasonWaitingForEtcd, "Waiting for etcd to reach quorum")
	default:
		set(hyperv1.ConditionAvailable, false, ReasonWaitingForAPIServer, "Waiting for kube-apiserver to be ready")
	}
	// short are the components not all of whose replicas are ready, or whose
	// ready replicas have a problem (a full data volume).
	var short []string
	degraded := ReasonComponentsUnhealthy
	for _, c := range components {
		if c.ReadyReplicas < c.Replicas {
			degraded = ReasonUnavailableReplicas
		}
		if c.ReadyReplicas < c.Replicas || c.Message != "" {
			s := fmt.Sprintf("%s %d/%d ready", c.Name, c.ReadyReplicas, c.Replicas)
			if c.Message != "" {
				s += " (" + c.Message + ")"
			}
			short = append(short, s)
		}
	}
	switch {
	case len(short) == 0:
		set(hyperv1.ConditionProgressing, false, ReasonAsExpected, "All components are ready")
		set(hyperv1.ConditionDegraded, false, ReasonAsExpected, "All components are ready")
	case !deployed:
		set(hyperv1.ConditionProgressing, true, ReasonDeploying, "Starting: "+strings.Join(short, ", "))
		set(hyperv1.ConditionDegraded, false, ReasonAsExpected, "The control plane is starting")
	default:
		set(hyperv1.ConditionProgressing, false, ReasonAsExpected, "The control plane is deployed")
		set(hyperv1.ConditionDegraded, true, degraded, strings.Join(short, ", "))
	}
}

// serving reports whether the control plane answers requests: an etcd quorum
// and a kube-apiserver are ready.
func serving(components []hyperv1.ComponentStatus) bool {
	etcd := component(components, controlplane.Etcd)
	return etcd.Replicas > 0 && etcd.ReadyReplicas > etcd.Replicas/2 && component(components, controlplane.KubeAPIServer).ReadyReplicas > 0
}

// deployed reports whether every replica has been ready since the control
// plane's current release was applied (its update history says Completed).
func deployed(hcp *hyperv1.HostedControlPlane) bool {
	vs := hcp.Status.VersionStatus
	return vs != nil && len(vs.History) > 0 && vs.History[0].State == hyperv1.CompletedUpdate
}

// allReady reports whether every replica of every component is ready.
func allReady(components []hyperv1.ComponentStatus) bool {
	if len(components) == 0 {
		return false
	}
	for _, c := range components {
		if c.ReadyReplicas < c.Replicas {
			return false
		}
	}
	return true
}
