package kubernetes

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
