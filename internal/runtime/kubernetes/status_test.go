package kubernetes

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodProblem(t *testing.T) {
	pod := func(st corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "etcd-0"}, Status: st}
	}
	waiting := func(reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "etcd", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}
	unready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Message: "containers with unready status: [etcd]"}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"the kubelet cannot pull", pod(corev1.PodStatus{Conditions: []corev1.PodCondition{unready},
			ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff", `Back-off pulling image "registry.example/cp@sha256:00"`)}}),
			`pod etcd-0: container etcd: ImagePullBackOff: Back-off pulling image "registry.example/cp@sha256:00"`},
		{"no node fits", pod(corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}}}),
			"pod etcd-0: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."},
		{"being created is no problem", pod(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating", "")}}), ""},
		{"a crash loop says how the container ended", pod(corev1.PodStatus{Conditions: []corev1.PodCondition{unready},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "etcd", RestartCount: 2,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, Message: "starting\nError: open /var/lib/x: read-only file system\n"}}}}}),
			"pod etcd-0: container etcd: CrashLoopBackOff: back-off 20s (last exit: Error, code 1: Error: open /var/lib/x: read-only file system)"},
		{"a container not ready yet", pod(corev1.PodStatus{Conditions: []corev1.PodCondition{unready}}), "pod etcd-0: containers with unready status: [etcd]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodProblem(tc.pod); got != tc.want {
				t.Errorf("podProblem = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDeploymentReplicas(t *testing.T) {
	dep := func(gen, observed int64, status appsv1.DeploymentStatus) *appsv1.Deployment {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2))}, Status: status}
		d.Generation, d.Status.ObservedGeneration = gen, observed
		return d
	}
	for _, tc := range []struct {
		name                     string
		d                        *appsv1.Deployment
		replicas, ready, updated int32
	}{
		{"rolled out", dep(2, 2, appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2}), 2, 2, 2},
		{"spec not seen yet", dep(3, 2, appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2}), 2, 2, 0},
		{"a surge pod of the old spec left", dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 2}), 2, 3, 1},
		{"an old pod still stopping", dep(2, 2, appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, TerminatingReplicas: ptr.To(int32(1))}), 2, 2, 1},
		{"new pods not ready", dep(2, 2, appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 1, UpdatedReplicas: 2}), 2, 1, 1},
	} {
		r, ready, updated := deploymentReplicas(tc.d)
		if r != tc.replicas || ready != tc.ready || updated != tc.updated {
			t.Errorf("%s: %d/%d/%d, want %d/%d/%d", tc.name, r, ready, updated, tc.replicas, tc.ready, tc.updated)
		}
	}
}
