package agent

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// runPods gives the node's pods KWOK semantics until ctx ends: a pod bound
// here is reported Running and Ready, a deleted one is finalized.
func (n *node) runPods(ctx context.Context) {
	n.pods = map[string]*corev1.Pod{}
	sel := fields.OneTermEqualSelector("spec.nodeName", n.o.Name).String()
	for ctx.Err() == nil {
		w, err := n.cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			n.o.Log.Info("watching the node's pods failed", "error", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			key := p.Namespace + "/" + p.Name
			if ev.Type == watch.Deleted {
				n.mu.Lock()
				delete(n.pods, key)
				n.mu.Unlock()
				continue
			}
			n.mu.Lock()
			n.pods[key] = p
			n.mu.Unlock()
			n.syncPod(ctx, p)
		}
		w.Stop()
	}
}

func (n *node) syncPod(ctx context.Context, p *corev1.Pod) {
	pods := n.cs.CoreV1().Pods(p.Namespace)
	if p.DeletionTimestamp != nil {
		// Nothing runs: the pod's containers are stopped at once.
		_ = pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &p.UID}})
		return
	}
	if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return
	}
	now := metav1.Now()
	ip := n.podIP(p)
	st := &p.Status
	st.Phase, st.HostIP, st.PodIP, st.StartTime = corev1.PodRunning, n.ip, ip, &now
	st.HostIPs, st.PodIPs = []corev1.HostIP{{IP: n.ip}}, []corev1.PodIP{{IP: ip}}
	st.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodScheduled, corev1.ContainersReady, corev1.PodReady} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	st.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr.To(true),
			ContainerID: "simulated://" + string(p.UID) + "-" + c.Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		n.o.Log.Info("reporting a pod running failed", "pod", p.Namespace+"/"+p.Name, "error", err.Error())
	}
}

// podIP is the node's address for host-network pods, else an address derived
// from the pod's UID in 10.128.0.0/14.
func (n *node) podIP(p *corev1.Pod) string {
	if p.Spec.HostNetwork {
		return n.ip
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(p.UID))
	v := h.Sum32()
	return fmt.Sprintf("10.%d.%d.%d", 128+(v>>16)%4, (v>>8)&0xff, 1+(v&0xff)%254)
}
