package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// managementNodes measures control planes as pods on hcp up's three real
// management nodes: hcp create cluster --wait to Available, next to the same
// workloads (the runtime's StatefulSet and Deployments, exported from that
// cluster with its reconciliation paused) applied by hand with kubectl into
// the same namespace, with its Secrets and Services, until the API server
// answers through its NodePort; and each control plane's memory as the
// kubelets report it (/stats/summary, the pods' working set).
func managementNodes(bin string, rel *release.Release, clusters int, settle time.Duration) error {
	start := time.Now()
	up, err := startUp(bin, "--management-nodes", "3")
	if err != nil {
		return err
	}
	defer up.stop()
	ready := time.Since(start)
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(up.dir, "kubeconfig"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pull := filepath.Join(up.dir, "pull-secret.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{}}`), 0o600); err != nil {
		return err
	}
	var creates []time.Duration
	for i := range clusters {
		name := fmt.Sprintf("c%d", i)
		t0 := time.Now()
		if _, err := up.hcp(bin, "create", "cluster", "agent", "--name", name, "--pull-secret", pull, "--agent-namespace", "default",
			"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0", "--wait", "--timeout", "10m"); err != nil {
			return err
		}
		creates = append(creates, time.Since(t0))
	}
	time.Sleep(settle)
	mem, err := podMemory(ctx, cs)
	if err != nil {
		return err
	}

	// The baseline: the first cluster's workloads, by hand.
	byHand, err := applyByHand(ctx, bin, up, cs, rel, "clusters", "c0")
	if err != nil {
		return fmt.Errorf("the by-hand baseline: %w", err)
	}

	var mems []string
	var total int64
	for i := range clusters {
		m := mem["clusters-"+fmt.Sprintf("c%d", i)]
		total += m
		mems = append(mems, fmt.Sprint(m>>20))
	}
	med := percentile(creates, 50)
	fmt.Printf("| control planes as pods on 3 management nodes (hcp up --management-nodes 3; SingleReplica) | value |\n|---|---|\n")
	fmt.Printf("| hcp up --management-nodes 3 to ready (3 real nodes, DNS, volumes) | %.1f s |\n", ready.Seconds())
	fmt.Printf("| baseline: the same StatefulSet and Deployments applied by hand (kubectl apply; Secrets, Services in place) → API server answers on its NodePort | %.1f s |\n", byHand.Seconds())
	fmt.Printf("| hcp create cluster --wait → Available, %d clusters one after another | %s (median %.1f s) |\n", clusters, durations(creates), med.Seconds())
	fmt.Printf("| memory per control plane (the kubelets' /stats/summary, pods' working set), after %s idle | %s MiB (mean %d) |\n\n", settle, strings.Join(mems, ", "), total/int64(clusters)>>20)
	fmt.Printf("Create → Available on management nodes: median %.1fs (%.2fx the %.1fs of the same workloads applied by hand)\n\n", med.Seconds(), ratio(med.Seconds(), byHand.Seconds()), byHand.Seconds())
	return nil
}

func durations(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, fmt.Sprintf("%.1f", x.Seconds()))
	}
	return strings.Join(s, ", ") + " s"
}

// podMemory is the working set of every pod per namespace, summed
// over the nodes' kubelet summaries.
func podMemory(ctx context.Context, cs kubernetes.Interface) (map[string]int64, error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, n := range nodes.Items {
		raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.Name, "proxy", "stats", "summary").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("node %s stats: %w", n.Name, err)
		}
		var summary struct {
			Pods []struct {
				PodRef struct{ Namespace string } `json:"podRef"`
				Memory *struct {
					WorkingSetBytes *int64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"pods"`
		}
		if err := json.Unmarshal(raw, &summary); err != nil {
			return nil, err
		}
		for _, p := range summary.Pods {
			if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
				out[p.PodRef.Namespace] += *p.Memory.WorkingSetBytes
			}
		}
	}
	return out, nil
}

// applyByHand pauses a cluster's reconciliation, exports its StatefulSet and
// Deployments, deletes them (and etcd's volume with them), applies the
// export with kubectl and returns the time until the API server answers
// /readyz through its NodePort.
func applyByHand(ctx context.Context, bin string, up *upInstance, cs kubernetes.Interface, rel *release.Release, ns, name string) (time.Duration, error) {
	hc := &hyperv1.HostedCluster{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hc); err != nil {
		return 0, err
	}
	patch := []byte(`{"spec":{"pausedUntil":"true"}}`)
	if err := up.client.Patch(ctx, hc, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return 0, err
	}
	cpns := ns + "-" + name
	if err := waitFor(time.Minute, "the control plane's reconciliation paused", func() (bool, error) {
		hcp := &hyperv1.HostedControlPlane{}
		if err := up.client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: name}, hcp); err != nil {
			return false, err
		}
		for _, c := range hcp.Status.Conditions {
			if c.Type == hyperv1.ConditionReconciliationActive && c.Status == metav1.ConditionFalse {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return 0, err
	}
	sts, err := cs.AppsV1().StatefulSets(cpns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	deps, err := cs.AppsV1().Deployments(cpns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	var docs []string
	clean := func(m *metav1.ObjectMeta) {
		*m = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels}
	}
	for _, s := range sts.Items {
		clean(&s.ObjectMeta)
		s.Status = appsv1.StatefulSetStatus{}
		s.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}
		for i := range s.Spec.VolumeClaimTemplates {
			s.Spec.VolumeClaimTemplates[i].Status = corev1.PersistentVolumeClaimStatus{}
		}
		b, err := yaml.Marshal(s)
		if err != nil {
			return 0, err
		}
		docs = append(docs, string(b))
	}
	for _, d := range deps.Items {
		clean(&d.ObjectMeta)
		d.Status = appsv1.DeploymentStatus{}
		d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
		b, err := yaml.Marshal(d)
		if err != nil {
			return 0, err
		}
		docs = append(docs, string(b))
	}
	manifest := filepath.Join(up.dir, "by-hand.yaml")
	if err := os.WriteFile(manifest, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		return 0, err
	}
	bg := metav1.DeletePropagationForeground
	for _, s := range sts.Items {
		if err := cs.AppsV1().StatefulSets(cpns).Delete(ctx, s.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return 0, err
		}
	}
	for _, d := range deps.Items {
		if err := cs.AppsV1().Deployments(cpns).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return 0, err
		}
	}
	if err := waitFor(3*time.Minute, "the control plane's pods and volumes gone", func() (bool, error) {
		pods, err := cs.CoreV1().Pods(cpns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pvcs, err := cs.CoreV1().PersistentVolumeClaims(cpns).List(ctx, metav1.ListOptions{})
		return len(pods.Items) == 0 && len(pvcs.Items) == 0, err
	}); err != nil {
		return 0, err
	}
	// The admin kubeconfig names the NodePort on a management node.
	kc, err := up.hcp(bin, "create", "kubeconfig", "--namespace", ns, "--name", name)
	if err != nil {
		return 0, err
	}
	hosted, err := clientcmd.RESTConfigFromKubeConfig([]byte(kc))
	if err != nil {
		return 0, err
	}
	hosted.Timeout = 3 * time.Second
	hcs, err := kubernetes.NewForConfig(hosted)
	if err != nil {
		return 0, err
	}
	kubectl := filepath.Join(rel.Dir, "kubectl")
	t0 := time.Now()
	out, err := exec.Command(kubectl, "--kubeconfig", filepath.Join(up.dir, "kubeconfig"), "apply", "-f", manifest).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("kubectl apply: %w\n%s", err, out)
	}
	if err := waitFor(5*time.Minute, "the API server answering on "+hosted.Host, func() (bool, error) {
		out, err := hcs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(out) == "ok", nil
	}); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
