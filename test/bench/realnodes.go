package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/release"
)

// realNodes measures real nodes (kubelet, containerd, runc in lab hosts'
// namespaces), at hcp up's defaults: a NodePool scaled from 0 to n against the
// baseline of the same hosts' discovery; the memory of each node; and pod
// start latency (create → Running, one pod at a time) against the same pods
// on a bare control plane with one node of the same kubelet and containerd.
func realNodes(bin string, rel *release.Release, n, pods int, settle time.Duration) error {
	start := time.Now()
	up, err := startUp(bin, "--agents", strconv.Itoa(n))
	if err != nil {
		return err
	}
	defer up.stop()
	ctx := context.Background()
	if err := waitFor(3*time.Minute, fmt.Sprintf("%d lab hosts known-unbound", n), func() (bool, error) {
		return countAgents(ctx, up.client, "clusters-example", "known-unbound") == n, nil
	}); err != nil {
		return err
	}
	discovery := time.Since(start)
	script, err := scriptURL(ctx, up.client, "clusters-example", "lab")
	if err != nil {
		return err
	}
	u, err := url.Parse(script)
	if err != nil {
		return err
	}
	gw := u.Hostname()
	hcp := func(args ...string) (string, error) { return up.hcp(bin, args...) }
	pull := filepath.Join(up.dir, "pull-secret.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{}}`), 0o600); err != nil {
		return err
	}
	if _, err := hcp("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", gw, "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "0", "--wait"); err != nil {
		return err
	}
	start = time.Now()
	if err := scale(ctx, up.client, "clusters", "example", n); err != nil {
		return err
	}
	if err := waitFor(10*time.Minute, fmt.Sprintf("NodePool with %d real nodes Ready", n), func() (bool, error) {
		return nodePoolReady(ctx, up.client, "clusters", "example", n), nil
	}); err != nil {
		return err
	}
	scaleUp := time.Since(start)
	kc, err := hcp("create", "kubeconfig", "--namespace", "clusters", "--name", "example")
	if err != nil {
		return err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kc))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	var mem []string
	var total int64
	for i := range n {
		root := filepath.Join(up.dir, "lab", fmt.Sprintf("lab-host-%d", i), "root")
		var sum int64
		for _, pid := range nodePids(root) {
			sum += rss(pid)
		}
		total += sum
		mem = append(mem, fmt.Sprintf("%d", sum>>20))
	}

	// Pod start latency through the cluster: one pause pod at a time.
	pause := images.Reference("pause", rel.Name)
	viaCluster, err := podStarts(ctx, cs, pause, pods)
	if err != nil {
		return err
	}
	// The same pods on the same kubelet and containerd under a bare control
	// plane, with hcp stopped.
	up.stop()
	bare, err := startBareCluster(bin, rel, n)
	if err != nil {
		return fmt.Errorf("the bare baseline: %w", err)
	}
	viaBare, err := podStarts(ctx, bare.cs, pause, pods)
	bare.stop()
	if err != nil {
		return fmt.Errorf("the bare baseline: %w", err)
	}

	scaleRatio := ratio(scaleUp.Seconds(), discovery.Seconds())
	fmt.Printf("| real nodes, %d lab hosts (hcp up's defaults) | value |\n|---|---|\n", n)
	fmt.Printf("| baseline: the hosts' discovery (hcp up start → all known-unbound) | %.1f s |\n", discovery.Seconds())
	fmt.Printf("| NodePool replicas 0 → %d: bound, installed, kubelets joined, nodes Ready | %.1f s |\n", n, scaleUp.Seconds())
	fmt.Printf("| memory per node (RSS of the processes in its mount namespace: kubelet, containerd, kube-proxy, konnectivity agent, shims, hcp-agent node-namespace), after %s idle | %s MiB (mean %d) |\n", settle, strings.Join(mem, ", "), total/int64(n)>>20)
	fmt.Printf("| baseline: pause pod on a bare control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler by hand; one node with the same kubelet, containerd and worker config), p50 / p99 of %d | %s / %s |\n", pods, pct(viaBare, 50), pct(viaBare, 99))
	fmt.Printf("| pause pod through the hosted cluster (create → Running), p50 / p99 of %d | %s / %s |\n\n", pods, pct(viaCluster, 50), pct(viaCluster, 99))
	fmt.Printf("NodePool 0 → %d real nodes Ready: %.1fs (%.2fx the %.1fs the hosts take to be discovered)\n", n, scaleUp.Seconds(), scaleRatio, discovery.Seconds())
	fmt.Printf("Pod start (create → Running, %d pods one at a time): p50 %s (%.2fx the bare %s), p99 %s (%.2fx the bare %s)\n\n", pods,
		pct(viaCluster, 50), ratio(percentile(viaCluster, 50).Seconds(), percentile(viaBare, 50).Seconds()), pct(viaBare, 50),
		pct(viaCluster, 99), ratio(percentile(viaCluster, 99).Seconds(), percentile(viaBare, 99).Seconds()), pct(viaBare, 99))
	return nil
}

// podStarts creates pause pods one at a time and measures each from create
// to Running; they are deleted at the end.
func podStarts(ctx context.Context, cs kubernetes.Interface, image string, pods int) ([]time.Duration, error) {
	var out []time.Duration
	defer func() {
		_ = cs.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	}()
	for i := range pods {
		name := fmt.Sprintf("bench-%d", i)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64), Containers: []corev1.Container{{Name: "pause", Image: image}}}}
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			return nil, err
		}
		deadline := time.After(2 * time.Minute)
	wait:
		for {
			select {
			case ev := <-w.ResultChan():
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Status.Phase == corev1.PodRunning {
					break wait
				}
			case <-deadline:
				w.Stop()
				return nil, fmt.Errorf("pod %s not Running within 2 minutes", name)
			}
		}
		w.Stop()
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func pct(d []time.Duration, p int) string {
	return percentile(d, p).Round(time.Millisecond).String()
}

// nodePids are the processes of a lab host's node: those whose mount
// namespace holds the host's run/containerd.
func nodePids(root string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		mi, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err == nil && strings.Contains(string(mi), filepath.Join(root, "run/containerd")+" /run/containerd ") {
			out = append(out, pid)
		}
	}
	return out
}
