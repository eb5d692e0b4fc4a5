package hostedcontrolplane

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

func TestHealthConditions(t *testing.T) {
	st := func(name string, ready, replicas int32) hyperv1.ComponentStatus {
		return hyperv1.ComponentStatus{Name: name, ReadyReplicas: ready, Replicas: replicas}
	}
	cases := []struct {
		name       string
		deployed   bool
		guestWait  string
		components []hyperv1.ComponentStatus
		want       map[string]string // condition type → status/reason
		message    string
	}{
		{"starting", false, "", []hyperv1.ComponentStatus{st("etcd", 0, 1), st("kube-apiserver", 0, 1)},
			map[string]string{"Available": "False/EtcdQuorumUnavailable", "Progressing": "True/Deploying", "Degraded": "False/AsExpected", "EtcdAvailable": "False/EtcdQuorumUnavailable"}, "etcd 0/1 ready"},
		{"etcd up, api server starting", false, "", []hyperv1.ComponentStatus{st("etcd", 1, 1), st("kube-apiserver", 0, 1)},
			map[string]string{"Available": "False/KubeAPIServerUnavailable", "EtcdAvailable": "True/QuorumAvailable", "KubeAPIServerAvailable": "False/KubeAPIServerUnavailable"}, ""},
		{"first API server serving, the others starting", false, "", []hyperv1.ComponentStatus{st("etcd", 3, 3), st("kube-apiserver", 1, 3)},
			map[string]string{"Available": "True/AsExpected", "Progressing": "True/Deploying", "Degraded": "False/AsExpected"}, "Starting: kube-apiserver 1/3 ready"},
		{"serving, ClusterOperators not there yet", false, "CRD clusteroperators.config.openshift.io is not established yet", []hyperv1.ComponentStatus{st("etcd", 1, 1), st("kube-apiserver", 1, 1)},
			map[string]string{"Available": "False/WaitingForClusterOperators", "EtcdAvailable": "True/QuorumAvailable", "KubeAPIServerAvailable": "True/AsExpected"}, "is not established yet"},
		{"all ready", false, "", []hyperv1.ComponentStatus{st("etcd", 3, 3), st("kube-apiserver", 3, 3), st("kube-scheduler", 2, 2)},
			map[string]string{"Available": "True/AsExpected", "Progressing": "False/AsExpected", "Degraded": "False/AsExpected"}, ""},
		{"lost one member of three", true, "", []hyperv1.ComponentStatus{st("etcd", 2, 3), st("kube-apiserver", 2, 3)},
			map[string]string{"Available": "True/AsExpected", "Progressing": "False/AsExpected", "Degraded": "True/UnavailableReplicas", "EtcdAvailable": "True/QuorumAvailable"}, "etcd 2/3 ready"},
		{"lost etcd quorum", true, "", []hyperv1.ComponentStatus{st("etcd", 1, 3), st("kube-apiserver", 3, 3)},
			map[string]string{"Available": "False/EtcdQuorumUnavailable", "Degraded": "True/UnavailableReplicas", "EtcdAvailable": "False/EtcdQuorumUnavailable"}, "a quorum needs 2"},
		{"full data volume", true, "", []hyperv1.ComponentStatus{{Name: "etcd", ReadyReplicas: 1, Replicas: 1, Message: "replica 0: its data volume is full"}, st("kube-apiserver", 1, 1)},
			map[string]string{"Available": "True/AsExpected", "Degraded": "True/ComponentsUnhealthy", "EtcdAvailable": "True/QuorumAvailable"}, "etcd 1/1 ready (replica 0: its data volume is full)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hcp := &hyperv1.HostedControlPlane{}
			setHealthConditions(hcp, tc.components, tc.deployed, tc.guestWait)
			var all []string
			for typ, want := range tc.want {
				c := meta.FindStatusCondition(hcp.Status.Conditions, typ)
				if c == nil {
					t.Fatalf("no %s condition", typ)
				}
				if got := string(c.Status) + "/" + c.Reason; got != want {
					t.Errorf("%s = %s (%s), want %s", typ, got, c.Message, want)
				}
			}
			for _, c := range hcp.Status.Conditions {
				all = append(all, c.Message)
			}
			if tc.message != "" && !strings.Contains(strings.Join(all, " | "), tc.message) {
				t.Errorf("no condition says %q: %v", tc.message, all)
			}
		})
	}
}

func TestGuestConditions(t *testing.T) {
	st := func(name string, ready, replicas int32, msg string) hyperv1.ComponentStatus {
		return hyperv1.ComponentStatus{Name: name, ReadyReplicas: ready, Replicas: replicas, Message: msg}
	}
	for _, tc := range []struct {
		name     string
		comp     hyperv1.ComponentStatus
		deployed bool
		want     string // Available Progressing Degraded
	}{
		{"rolling out", st("kube-apiserver", 1, 3, ""), false, "True True False"},
		{"all ready", st("kube-apiserver", 3, 3, ""), true, "True False False"},
		{"lost a replica", st("etcd", 2, 3, ""), true, "True False True"},
		{"none ready", st("etcd", 0, 1, ""), true, "False False True"},
		{"full disk", st("etcd", 1, 1, "replica 0: its data volume is full"), true, "True False True"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range operatorConditions(tc.comp, tc.deployed) {
				got = append(got, string(c.Status))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("conditions %v, want %s", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name       string
		components []hyperv1.ComponentStatus
		want       string // Available Progressing Failing
	}{
		{"rolling out", []hyperv1.ComponentStatus{st("etcd", 3, 3, ""), st("kube-apiserver", 1, 3, "")}, "True True False"},
		{"done", []hyperv1.ComponentStatus{st("etcd", 3, 3, ""), st("kube-apiserver", 3, 3, "")}, "True False False"},
		{"scheduler down", []hyperv1.ComponentStatus{st("etcd", 1, 1, ""), st("kube-scheduler", 0, 1, "")}, "False True True"},
		{"full disk", []hyperv1.ComponentStatus{st("etcd", 1, 1, "replica 0: its data volume is full")}, "True False True"},
	} {
		t.Run("version "+tc.name, func(t *testing.T) {
			var got []string
			for _, c := range versionConditions(tc.components, "1.37.2") {
				got = append(got, string(c.Status))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("conditions %v, want %s", got, tc.want)
			}
		})
	}
}

// A hosted cluster that answered while it is not yet available is tried
// again soon; one that did not answer waits as long as one just available;
// one available for over a minute, half a minute.
func TestGuestRetry(t *testing.T) {
	answered := fmt.Errorf("ClusterOperator: %w", errNotEstablished)
	unreachable := errors.New(`dial tcp: lookup kube-apiserver.clusters-a.svc: no such host`)
	available := func(ago time.Duration) []metav1.Condition {
		return []metav1.Condition{{Type: hyperv1.ConditionAvailable, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Now().Add(-ago))}}
	}
	for _, tc := range []struct {
		name        string
		initialized bool
		conditions  []metav1.Condition
		err         error
		want        time.Duration
	}{
		{"starting, answered", false, nil, answered, 250 * time.Millisecond},
		{"starting, an API status", false, nil, apierrors.NewServiceUnavailable("starting"), 250 * time.Millisecond},
		{"starting, not answered", false, nil, unreachable, 2 * time.Second},
		{"just available, not answered", true, available(10 * time.Second), unreachable, 2 * time.Second},
		{"just available, answered", true, available(10 * time.Second), answered, 2 * time.Second},
		{"available for minutes", true, available(5 * time.Minute), unreachable, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hcp := &hyperv1.HostedControlPlane{}
			hcp.Status.Initialized, hcp.Status.Conditions = tc.initialized, tc.conditions
			if got := guestRetry(hcp, tc.err); got != tc.want {
				t.Errorf("guestRetry = %s, want %s", got, tc.want)
			}
		})
	}
}
