package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/install"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/release"
	k8sruntime "github.com/hcp-dev/hcp/internal/runtime/kubernetes"
	"github.com/hcp-dev/hcp/test/sim"
)

// kubernetesRuntime creates n SingleReplica HostedClusters on a management
// cluster with simulated nodes, with the operator's Kubernetes runtime, and
// reports the time until all are Available and the operator's CPU and memory.
// The baseline is the floor the management cluster sets: the same workloads,
// rendered by the same code, applied directly (no operator, no PKI, no
// HostedCluster), until all are ready.
func kubernetesRuntime(bin string, rel *release.Release, n, agentCount int, settle time.Duration) error {
	dir, err := os.MkdirTemp("", "bench-k8s-")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "bench: keeping", dir)
	}
	ctx := context.Background()
	mc, err := sim.Start(ctx, dir, rel, logr.Discard())
	if err != nil {
		return err
	}
	defer mc.Stop()
	cfg := mc.Hub.RESTConfig()
	cfg.QPS, cfg.Burst = 500, 1000
	scheme, err := operator.Scheme()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	objs, err := install.Objects(install.Options{Namespace: operator.DefaultNamespace, Image: "hcp.dev/hcp-operator:bench", Replicas: 1})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := apply.Object(ctx, c, o, "bench"); err != nil {
			return err
		}
	}
	// Ten control plane nodes in three zones, room for 110 pods each; a
	// StorageClass without a provisioner and a volume for every etcd.
	for i := range 10 {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cp-%d", i),
			Annotations: map[string]string{sim.NodeAnnotation: "fake"},
			Labels: map[string]string{hyperv1.ControlPlaneLabel: "true", corev1.LabelTopologyZone: fmt.Sprintf("zone%d", i%3),
				corev1.LabelHostname: fmt.Sprintf("cp-%d", i)}},
			Status: corev1.NodeStatus{Capacity: nodeCapacity(), Allocatable: nodeCapacity()}}
		if err := c.Create(ctx, node); err != nil {
			return err
		}
	}
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	if err := c.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Provisioner: "kubernetes.io/no-provisioner",
		VolumeBindingMode: &wffc}); err != nil {
		return err
	}
	for i := range 2 * n {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("etcd-%d", i)}, Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: "bench", PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/var/lib/etcd-%d", i)}}}}
		if err := c.Create(ctx, pv); err != nil {
			return err
		}
	}
	if err := waitFor(2*time.Minute, "simulated nodes Ready", func() (bool, error) {
		nodes := &corev1.NodeList{}
		if err := c.List(ctx, nodes); err != nil {
			return false, err
		}
		ready := 0
		for _, nd := range nodes.Items {
			for _, cond := range nd.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == 10, nil
	}); err != nil {
		return err
	}

	base, err := directWorkloads(ctx, c, rel, n)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}

	// The operator, as hcp install runs it, outside the cluster, with its
	// infrastructure service for the simulated agents.
	infra := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort()))
	op, err := spawn(dir, filepath.Join(bin, "hcp-operator"), "--runtime=kubernetes", "--kubeconfig="+mc.Hub.KubeconfigPath(),
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0", "--console-bind-address=0",
		"--infra-bind-address="+infra, "--infra-url=https://"+infra,
		"--release-dir="+filepath.Join(bin, "release"), "--data-dir="+filepath.Join(dir, "operator"))
	if err != nil {
		return err
	}
	defer stopProcess(op)
	time.Sleep(3 * time.Second)
	rssIdle, cpuStart := rss(op.Process.Pid), cpuTime(op.Process.Pid)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusters"}}); err != nil {
		return err
	}
	pull := filepath.Join(dir, "pull-secret.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{}}`), 0o600); err != nil {
		return err
	}
	start := time.Now()
	created := make([]time.Time, n)
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			created[i] = time.Now()
			cmd := exec.Command(filepath.Join(bin, "hcp"), "create", "cluster", "agent", "--name", fmt.Sprintf("k%03d", i), "--pull-secret", pull,
				"--agent-namespace", "clusters", "--api-server-address", "192.0.2.10", "--release-image", rel.Image, "--etcd-storage-class", "bench",
				"--control-plane-availability-policy", "SingleReplica", "--node-pool-replicas", "-1")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+mc.Hub.KubeconfigPath())
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("hcp create cluster: %v: %s", err, out)
			}
			took[i] = time.Since(created[i])
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	available := map[string]time.Duration{}
	if err := waitFor(15*time.Minute, fmt.Sprintf("%d HostedClusters Available", n), func() (bool, error) {
		list := &hyperv1.HostedClusterList{}
		if err := c.List(ctx, list, client.InNamespace("clusters")); err != nil {
			return false, err
		}
		for _, hc := range list.Items {
			if _, seen := available[hc.Name]; !seen && meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable) {
				i, _ := strconv.Atoi(strings.TrimPrefix(hc.Name, "k"))
				available[hc.Name] = time.Since(created[i])
			}
		}
		return len(available) == n, nil
	}); err != nil {
		return err
	}
	total := time.Since(start)
	cpuBusy := cpuTime(op.Process.Pid) - cpuStart
	// Past the first minute of availability, when the operator stops retrying
	// the (unreachable, simulated) hosted API servers often.
	time.Sleep(max(settle, 65*time.Second))
	rssLoaded := rss(op.Process.Pid)
	idleStart := cpuTime(op.Process.Pid)
	time.Sleep(30 * time.Second)
	idleCPU := (cpuTime(op.Process.Pid) - idleStart).Seconds() / 30
	// Then the agents: registered, inventoried and known-unbound next to the
	// clusters, and the operator at rest again with both.
	var withAgents struct {
		run       agentRun
		rss       int64
		cpu       float64
		reconcile time.Duration
	}
	if agentCount > 0 {
		cpuBefore := cpuTime(op.Process.Pid)
		if withAgents.run, err = simulateAgents(ctx, c, "bench-agents", agentCount, 50); err != nil {
			return fmt.Errorf("agents: %w", err)
		}
		withAgents.reconcile = cpuTime(op.Process.Pid) - cpuBefore
		time.Sleep(15 * time.Second)
		withAgents.rss = rss(op.Process.Pid)
		idleStart := cpuTime(op.Process.Pid)
		time.Sleep(30 * time.Second)
		withAgents.cpu = (cpuTime(op.Process.Pid) - idleStart).Seconds() / 30
	}
	var each []time.Duration
	for _, d := range available {
		each = append(each, d)
	}
	sort.Slice(each, func(i, j int) bool { return each[i] < each[j] })
	p := func(q float64) float64 { return each[int(q*float64(len(each)-1))].Seconds() }
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	pt := func(q float64) float64 { return took[int(q*float64(len(took)-1))].Seconds() }

	fmt.Printf("\n## Kubernetes runtime: %d SingleReplica HostedClusters on a management cluster with 10 simulated nodes\n\n", n)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| baseline: the same %d x 5 workloads applied directly, all ready | %.1fs |\n", n, base.Seconds())
	fmt.Printf("| hcp: %d HostedClusters created (4 at a time) to all Available | %.1fs |\n", n, total.Seconds())
	fmt.Printf("| per cluster, create to Available: p50 / p90 / max | %.1fs / %.1fs / %.1fs |\n", p(0.5), p(0.9), p(1))
	fmt.Printf("| each hcp create cluster command: p50 / p90 / max | %.1fs / %.1fs / %.1fs |\n", pt(0.5), pt(0.9), pt(1))
	fmt.Printf("| operator CPU while reconciling | %.1f CPU-seconds (%.2f cores) |\n", cpuBusy.Seconds(), cpuBusy.Seconds()/total.Seconds())
	fmt.Printf("| operator CPU at rest with %d clusters | %.3f cores |\n", n, idleCPU)
	fmt.Printf("| operator resident memory: empty / with %d clusters | %d MiB / %d MiB (%.2f MiB per cluster) |\n",
		n, rssIdle>>20, rssLoaded>>20, float64(rssLoaded-rssIdle)/float64(n)/(1<<20))
	agentsNote := ""
	if agentCount > 0 {
		r := withAgents.run
		fmt.Printf("| then %d simulated agents (50 in flight): registrations/s, polls/s (p99) | %.0f/s, %.0f/s (%s); %d of %d known-unbound %.1fs after the last request |\n",
			agentCount, r.regs.rate, r.polls.rate, r.polls.p99.Round(time.Millisecond), r.known, agentCount, r.caughtUp.Seconds())
		fmt.Printf("| operator CPU taking in the agents | %.1f CPU-seconds |\n", withAgents.reconcile.Seconds())
		fmt.Printf("| operator with %d clusters and %d Agents: resident memory, CPU at rest | %d MiB, %.3f cores |\n",
			n, agentCount, withAgents.rss>>20, withAgents.cpu)
		agentsNote = fmt.Sprintf(", %d MiB and %.3f cores at rest with %d Agents too", withAgents.rss>>20, withAgents.cpu, agentCount)
	}
	fmt.Println()
	fmt.Printf("kubernetes runtime: %d HostedClusters Available in %.1fs vs the same workloads applied directly in %.1fs: %.2fx; operator %d MiB%s\n",
		n, total.Seconds(), base.Seconds(), ratio(total.Seconds(), base.Seconds()), rssLoaded>>20, agentsNote)
	return nil
}

func nodeCapacity() corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
}

// directWorkloads applies, for n namespaces, what the runtime renders for a
// SingleReplica control plane and waits until every workload is ready; then
// removes them.
func directWorkloads(ctx context.Context, c client.Client, rel *release.Release, n int) (time.Duration, error) {
	start := time.Now()
	for i := range n {
		ns := fmt.Sprintf("direct-%03d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return 0, err
		}
		hcp := &hyperv1.HostedControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "direct"}}
		hcp.Spec.ControllerAvailabilityPolicy = hyperv1.SingleReplica
		hcp.Spec.InfraID = ns
		hcp.Spec.Services = []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer,
			ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: "192.0.2.10"}}}}
		cp, err := controlplane.Build(controlplane.Input{HCP: hcp, Release: rel, Network: k8sruntime.PodsIn(ns), StorageClass: "bench"})
		if err != nil {
			return 0, err
		}
		objs, err := k8sruntime.Render(k8sruntime.Input{ControlPlane: cp, Image: rel.ImageRef(images.DefaultRepository, images.ControlPlaneImage), UID: k8sruntime.UIDFor(ns, nil), DedicatedNodes: true})
		if err != nil {
			return 0, err
		}
		for _, o := range objs {
			if err := apply.Object(ctx, c, o, "bench"); err != nil {
				return 0, err
			}
		}
	}
	err := waitFor(10*time.Minute, "directly applied workloads ready", func() (bool, error) {
		deps := &appsv1.DeploymentList{}
		sts := &appsv1.StatefulSetList{}
		if err := c.List(ctx, deps); err != nil {
			return false, err
		}
		if err := c.List(ctx, sts); err != nil {
			return false, err
		}
		ready := 0
		for _, d := range deps.Items {
			if strings.HasPrefix(d.Namespace, "direct-") && d.Status.ReadyReplicas == *d.Spec.Replicas {
				ready++
			}
		}
		for _, s := range sts.Items {
			if strings.HasPrefix(s.Namespace, "direct-") && s.Status.ReadyReplicas == *s.Spec.Replicas {
				ready++
			}
		}
		return ready == 5*n, nil
	})
	took := time.Since(start)
	for i := range n {
		_ = c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("direct-%03d", i)}})
	}
	return took, err
}
