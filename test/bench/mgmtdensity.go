package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcp-dev/hcp/internal/release"
)

// managementNodeDensity starts SingleReplica hosted clusters one after
// another on hcp up's three management nodes until max are running, the
// machine has less than reserve memory available, one is not Available
// within three minutes (it is deleted and not counted; what its pods wait
// for, in the scheduler's or kubelet's words, is the reason printed), or a
// new one leaves any control plane with a pod that is not ready: at
// capacity a new cluster's etcd and API server preempt other clusters'
// lower-priority pods (the seed's priority classes), so that cluster is
// deleted and not counted either. It reports how many serve with every pod
// ready, their memory as the kubelets see it, and the p99 of a GET to each
// through its NodePort next to the same GET on the management API meanwhile.
func managementNodeDensity(bin string, rel *release.Release, max int, reserve int64, settle time.Duration) error {
	up, err := startUp(bin, "--management-nodes", "3")
	if err != nil {
		return err
	}
	defer up.stop()
	ctx := context.Background()
	mgmtCfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(up.dir, "kubeconfig"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(mgmtCfg)
	if err != nil {
		return err
	}
	pull := filepath.Join(up.dir, "pull-secret.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{}}`), 0o600); err != nil {
		return err
	}
	running, stopped := 0, ""
	var creates []time.Duration
	for running < max {
		if avail := memAvailable(); avail < reserve {
			stopped = fmt.Sprintf("%d MiB of memory left", avail>>20)
			break
		}
		name := fmt.Sprintf("m%03d", running)
		t0 := time.Now()
		if _, err := up.hcp(bin, "create", "cluster", "agent", "--name", name, "--pull-secret", pull, "--agent-namespace", "default",
			"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0", "--wait", "--timeout", "3m"); err != nil {
			stopped = fmt.Sprintf("cluster %d was not Available in 3 minutes (not counted, deleted): %s", running+1, waitingPods(ctx, cs, "clusters-"+name))
			if _, err := up.hcp(bin, "destroy", "cluster", "agent", "--name", name); err != nil {
				return fmt.Errorf("destroying %s: %w", name, err)
			}
			break
		}
		d := time.Since(t0)
		if lost := unreadyPods(ctx, cs, running+1); lost != "" {
			stopped = fmt.Sprintf("cluster %d left pods not ready (not counted, deleted): %s", running+1, lost)
			if _, err := up.hcp(bin, "destroy", "cluster", "agent", "--name", name); err != nil {
				return fmt.Errorf("destroying %s: %w", name, err)
			}
			break
		}
		creates = append(creates, d)
		running++
	}
	// What the last cluster preempted is scheduled again once it is gone.
	deadline := time.Now().Add(3 * time.Minute)
	for unreadyPods(ctx, cs, running) != "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
	}
	if lost := unreadyPods(ctx, cs, running); lost != "" {
		return fmt.Errorf("control planes still have pods not ready after the last cluster went: %s", lost)
	}
	if stopped == "" {
		stopped = fmt.Sprintf("the limit of %d", max)
	}
	if running == 0 {
		return fmt.Errorf("no hosted cluster became Available on the management nodes: %s", stopped)
	}
	time.Sleep(settle)
	mem, err := podMemory(ctx, cs)
	if err != nil {
		return err
	}
	var mems []int64
	for i := range running {
		mems = append(mems, mem[fmt.Sprintf("clusters-m%03d", i)])
	}
	sort.Slice(mems, func(i, j int) bool { return mems[i] < mems[j] })

	// Light load through each cluster's NodePort, and on the management API.
	lat, base, failed, err := lightLoad(ctx, up.client, mgmtCfg, "m%03d", running)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	c50, c90 := percentiles(creates)
	fmt.Printf("\n## Density on 3 management nodes: SingleReplica control planes as pods, started one after another (stopped at %s)\n\n", stopped)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| control planes serving, every pod ready (management nodes' allocatable CPU each: %s) | %d |\n", allocatableCPU(ctx, cs), running)
	fmt.Printf("| hcp create cluster --wait → Available over the run: p50 / p90 | %.1f s / %.1f s |\n", c50.Seconds(), c90.Seconds())
	fmt.Printf("| memory per control plane (kubelets' /stats/summary, pods' working set) after %s idle: min / median / max | %d / %d / %d MiB |\n",
		settle, mems[0]>>20, mems[len(mems)/2]>>20, mems[len(mems)-1]>>20)
	fmt.Printf("| GET /api/v1/namespaces on each through its NodePort, %d requests: p50 / p99 (failed) | %.1f / %.1f ms (%d) |\n",
		len(lat)+failed, ms(percentile(lat, 50)), ms(percentile(lat, 99)), failed)
	fmt.Printf("| baseline: the same GET on the management API meanwhile: p50 / p99 | %.1f / %.1f ms |\n\n", ms(percentile(base, 50)), ms(percentile(base, 99)))
	fmt.Printf("management-node density: %d control planes serving on 3 nodes, %d MiB each (median), GET p99 %.1f ms vs %.1f ms on the management API: %.2fx\n\n",
		running, mems[len(mems)/2]>>20, ms(percentile(lat, 99)), ms(percentile(base, 99)), ratio(ms(percentile(lat, 99)), ms(percentile(base, 99))))
	return nil
}

// unreadyPods names the pods of the first n density clusters that are not
// ready 15 seconds after the last became Available, with what they wait for
// ("" when all are).
func unreadyPods(ctx context.Context, cs kubernetes.Interface, n int) string {
	time.Sleep(15 * time.Second)
	var out []string
	for i := range n {
		ns := fmt.Sprintf("clusters-m%03d", i)
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		for _, p := range pods.Items {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			if !ready {
				out = append(out, ns+"/"+p.Labels["app"])
			}
		}
		if len(out) > 0 && i < n-1 {
			// An earlier cluster lost a pod: say what it waits for.
			return strings.Join(out, ", ") + " (" + waitingPods(ctx, cs, ns) + ")"
		}
	}
	return strings.Join(out, ", ")
}

// waitingPods says what a namespace's pods that are not ready wait for.
func waitingPods(ctx context.Context, cs kubernetes.Interface, ns string) string {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var why []string
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
				why = append(why, p.Labels["app"]+" Pending: "+c.Message)
			}
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting != nil && s.State.Waiting.Reason != "" {
				why = append(why, p.Labels["app"]+": "+s.State.Waiting.Reason)
			}
		}
	}
	if len(why) == 0 {
		return "no pod says why"
	}
	return strings.Join(why, "; ")
}

// allocatableCPU is each node's allocatable CPU, as the scheduler counts it.
func allocatableCPU(ctx context.Context, cs kubernetes.Interface) string {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, n := range nodes.Items {
		q := n.Status.Allocatable[corev1.ResourceCPU]
		out = append(out, q.String())
	}
	return strings.Join(out, ", ")
}
