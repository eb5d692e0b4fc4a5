package nodepool

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// upgradeInPlace moves an InPlace NodePool's nodes to its release, one node
// at a time (at most one cordoned). It returns what it is doing ("" when
// every node runs the release).
func (r *Reconciler) upgradeInPlace(ctx context.Context, s machineScope) (string, error) {
	list := &clusterv1.MachineList{}
	if err := r.Client.List(ctx, list, client.InNamespace(s.cpns), client.MatchingLabels(s.labels())); err != nil {
		return "", err
	}
	var pending []clusterv1.Machine
	for _, m := range list.Items {
		if m.DeletionTimestamp.IsZero() && m.Spec.Version != s.version && m.Status.NodeRef.Name != "" {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return "", nil
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Name < pending[j].Name })
	kc := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.cpns, Name: controlplane.SecretLocalhostKubecfg}, kc); err != nil {
		return "", err
	}
	gc, err := r.guests.Get(s.cpns, kc.Data[controlplane.KeyKubeconfig])
	if err != nil {
		return "", err
	}
	// The node being upgraded, if any; else the first pending one.
	var m *clusterv1.Machine
	node := &corev1.Node{}
	for i := range pending {
		n := &corev1.Node{}
		if err := gc.Get(ctx, client.ObjectKey{Name: pending[i].Status.NodeRef.Name}, n); err != nil {
			continue
		}
		if n.Annotations[hosted.UpgradingAnnotation] != "" {
			m, node = &pending[i], n
			break
		}
	}
	if m == nil {
		m = &pending[0]
		if err := gc.Get(ctx, client.ObjectKey{Name: m.Status.NodeRef.Name}, node); err != nil {
			return "", fmt.Errorf("node %s: %w", m.Status.NodeRef.Name, err)
		}
	}
	step := fmt.Sprintf("node %s (%d of %d left)", node.Name, len(pending), len(list.Items))
	// Done: the node runs the new kubelet and is Ready.
	if node.Annotations[hosted.DesiredReleaseAnnotation] == s.release && node.Status.NodeInfo.KubeletVersion == s.version && nodeIsReady(node) {
		patch := client.MergeFrom(node.DeepCopy())
		node.Spec.Unschedulable = false
		delete(node.Annotations, hosted.UpgradingAnnotation)
		if err := gc.Patch(ctx, node, patch); err != nil {
			return "", fmt.Errorf("uncordoning %s: %w", node.Name, err)
		}
		mp := client.MergeFrom(m.DeepCopy())
		m.Spec.Version = s.version
		if err := r.Client.Patch(ctx, m, mp); err != nil {
			return "", fmt.Errorf("machine %s: %w", m.Name, err)
		}
		return "uncordoned " + step, nil
	}
	// Cordon.
	if !node.Spec.Unschedulable || node.Annotations[hosted.UpgradingAnnotation] == "" {
		patch := client.MergeFrom(node.DeepCopy())
		node.Spec.Unschedulable = true
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[hosted.UpgradingAnnotation] = "true"
		if err := gc.Patch(ctx, node, patch); err != nil {
			return "", fmt.Errorf("cordoning %s: %w", node.Name, err)
		}
	}
	if node.Annotations[hosted.DesiredReleaseAnnotation] == s.release {
		return "waiting for the kubelet of " + s.version + " on " + step, nil
	}
	// Drain: evict what is not a DaemonSet's or a static pod.
	pods := &corev1.PodList{}
	if err := gc.List(ctx, pods, client.MatchingFields{"spec.nodeName": node.Name}); err != nil {
		return "", err
	}
	left := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || daemonOrStatic(p) {
			continue
		}
		left++
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
		if err := gc.SubResource("eviction").Create(ctx, p, ev); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsTooManyRequests(err) {
			return "", fmt.Errorf("evicting %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	if left > 0 {
		return fmt.Sprintf("draining %s: %d pods left", step, left), nil
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Annotations[hosted.DesiredReleaseAnnotation] = s.release
	if err := gc.Patch(ctx, node, patch); err != nil {
		return "", fmt.Errorf("node %s: %w", node.Name, err)
	}
	return "drained; moving to " + s.release + ": " + step, nil
}

func daemonOrStatic(p *corev1.Pod) bool {
	if _, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return true
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
