package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// hostedClusters runs hcp up, creates SingleReplica HostedClusters one after
// another and measures create→Available and each control plane's idle memory,
// then deletes them one by one (delete → HostedCluster gone and every process
// of its control plane ended); then the same create and delete, one cluster at
// a time, for HighlyAvailable. Every create is paired with a bare start of the
// same shape just before it (etcd + kube-apiserver for SingleReplica, with the
// same control planes running; for HighlyAvailable, three etcd members with one
// API server for Available and with three for every replica ready), so each
// ratio compares like with like on a shared machine.
func hostedClusters(bin string, rel *release.Release, n int, settle time.Duration, floor sample) error {
	up, err := startUpForClusters(bin)
	if err != nil {
		return err
	}
	defer up.stop()
	c, dir := up.client, up.dir
	ctx := context.Background()
	// Each create is paired with the bare pair started just before it, on
	// the same machine with the same control planes running.
	var times, floors []time.Duration
	var deletes []deletion
	for i := range n {
		f, err := bareControlPlane(rel, 0, 1, 1)
		if err != nil {
			return err
		}
		floors = append(floors, f.ready)
		d, _, err := createCluster(ctx, c, rel, fmt.Sprintf("bench-%d", i), hyperv1.SingleReplica, dir)
		if err != nil {
			return err
		}
		times = append(times, d)
	}
	time.Sleep(settle)
	var mems, psses []int64
	for i := range n {
		r, p := controlPlaneMemory(filepath.Join(dir, "controlplanes", fmt.Sprintf("clusters-bench-%d", i)))
		mems, psses = append(mems, r), append(psses, p)
	}
	// Where an idle control plane's CPU goes, by program.
	idleCPU := componentCPU(filepath.Join(dir, "controlplanes", "clusters-bench-0"), 30*time.Second)
	for i := range n {
		d, err := deleteCluster(ctx, c, fmt.Sprintf("bench-%d", i), dir)
		if err != nil {
			return err
		}
		deletes = append(deletes, d)
	}
	// HighlyAvailable is Available with an etcd quorum and one API server
	// ready; every replica follows. Each has its own bare floor: three etcd
	// members and one API server, and three of each.
	var haTimes, haAll, haFloors, haAllFloors []time.Duration
	var haDeletes []deletion
	for i := range n {
		f, err := bareControlPlane(rel, 0, 3, 1)
		if err != nil {
			return err
		}
		haFloors = append(haFloors, f.ready)
		if f, err = bareControlPlane(rel, 0, 3, 3); err != nil {
			return err
		}
		haAllFloors = append(haAllFloors, f.ready)
		name := fmt.Sprintf("ha-%d", i)
		d, all, err := createCluster(ctx, c, rel, name, hyperv1.HighlyAvailable, dir)
		if err != nil {
			return err
		}
		haTimes, haAll = append(haTimes, d), append(haAll, all)
		del, err := deleteCluster(ctx, c, name, dir)
		if err != nil {
			return err
		}
		haDeletes = append(haDeletes, del)
	}
	p50, p90 := percentiles(times)
	d50, d90 := percentiles(when(deletes, func(x deletion) time.Duration { return x.total }))
	h50, h90 := percentiles(haTimes)
	f50, f90 := percentiles(floors)
	hf50, hf90 := percentiles(haFloors)
	ha50, ha90 := percentiles(haAll)
	haf50, haf90 := percentiles(haAllFloors)
	hd50, hd90 := percentiles(when(haDeletes, func(x deletion) time.Duration { return x.total }))
	dp, _ := percentiles(when(append(deletes, haDeletes...), func(x deletion) time.Duration { return x.processes }))
	dn, _ := percentiles(when(append(deletes, haDeletes...), func(x deletion) time.Duration { return x.namespace }))
	sort.Slice(mems, func(i, j int) bool { return mems[i] < mems[j] })
	sort.Slice(psses, func(i, j int) bool { return psses[i] < psses[j] })
	mem, ps := mems[len(mems)/2], psses[len(psses)/2]
	fmt.Printf("| hosted control plane, %d of each policy | p50 | p90 | idle RSS | idle PSS |\n|---|---|---|---|---|\n", n)
	fmt.Printf("| baseline: bare etcd + kube-apiserver start, idle machine | %.2fs | | %d MiB | |\n", floor.ready.Seconds(), floor.rss>>20)
	fmt.Printf("| baseline: the same, just before each SingleReplica create (as many control planes running) | %.2fs | %.2fs | | |\n", f50.Seconds(), f90.Seconds())
	fmt.Printf("| SingleReplica create → Available (one after another, all kept) | %.2fs | %.2fs | %d MiB | %d MiB |\n", p50.Seconds(), p90.Seconds(), mem>>20, ps>>20)
	fmt.Printf("| baseline: bare 3-member etcd + 1 kube-apiserver start, just before each HighlyAvailable create | %.2fs | %.2fs | | |\n", hf50.Seconds(), hf90.Seconds())
	fmt.Printf("| HighlyAvailable create → Available (one at a time) | %.2fs | %.2fs | | |\n", h50.Seconds(), h90.Seconds())
	fmt.Printf("| baseline: bare 3-member etcd + 3 kube-apiservers start, all ready | %.2fs | %.2fs | | |\n", haf50.Seconds(), haf90.Seconds())
	fmt.Printf("| HighlyAvailable create → every replica of every component ready | %.2fs | %.2fs | | |\n", ha50.Seconds(), ha90.Seconds())
	fmt.Printf("| baseline: bare etcd + kube-apiserver stop (SIGTERM → exited) | %.3fs | | | |\n", floor.stop.Seconds())
	fmt.Printf("| SingleReplica delete → HostedCluster gone, processes ended | %.2fs | %.2fs | | |\n", d50.Seconds(), d90.Seconds())
	fmt.Printf("| HighlyAvailable delete → HostedCluster gone, processes ended | %.2fs | %.2fs | | |\n", hd50.Seconds(), hd90.Seconds())
	fmt.Printf("| delete, both policies: every process ended / control plane namespace gone (in the background) | %.2fs / %.2fs | | | |\n\n", dp.Seconds(), dn.Seconds())
	var progs []string
	total := 0.0
	for prog, share := range idleCPU {
		progs = append(progs, fmt.Sprintf("%s %.1f%%", prog, 100*share))
		total += share
	}
	sort.Strings(progs)
	fmt.Printf("Idle CPU of one SingleReplica control plane over 30 s (share of a core): %s; total %.1f%%.\n\n", strings.Join(progs, ", "), 100*total)
	fmt.Printf("RSS counts the component binaries' pages in every control plane; PSS shares them among the %d running, which is what one more control plane costs.\n\n", n)
	fmt.Printf("hosted control plane create→Available p50 vs the bare start of the same shape just before it: SingleReplica %.2fx (%.2fs/%.2fs; %.2fx the idle machine's %.2fs), HighlyAvailable %.2fx (%.2fs/%.2fs; every replica ready %.2fx, %.2fs/%.2fs) (target ≤1.3x); delete p50 %.2fs/%.2fs vs stopping the bare pair %.3fs; idle memory PSS %d MiB, RSS %d MiB (RSS %.2fx the bare pair)\n",
		ratio(p50.Seconds(), f50.Seconds()), p50.Seconds(), f50.Seconds(), ratio(p50.Seconds(), floor.ready.Seconds()), floor.ready.Seconds(),
		ratio(h50.Seconds(), hf50.Seconds()), h50.Seconds(), hf50.Seconds(), ratio(ha50.Seconds(), haf50.Seconds()), ha50.Seconds(), haf50.Seconds(),
		d50.Seconds(), hd50.Seconds(), floor.stop.Seconds(), ps>>20, mem>>20, ratio(float64(mem), float64(floor.rss)))
	return nil
}

// startUpForClusters runs hcp up with the namespace clusters and its
// pull-secret, where createCluster makes HostedClusters.
func startUpForClusters(bin string) (*upInstance, error) {
	up, err := startUp(bin)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := up.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusters"}}); err != nil {
		up.stop()
		return nil, err
	}
	if err := up.client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: "pull-secret"},
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}); err != nil {
		up.stop()
		return nil, err
	}
	return up, nil
}

func percentiles(d []time.Duration) (p50, p90 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*9)/10]
}

// createCluster creates a HostedCluster and returns the time until it is
// Available; it returns once the cluster has settled (no longer Progressing),
// so that each figure is one create, not a pile-up of startups.
func createCluster(ctx context.Context, c client.Client, rel *release.Release, name string, policy hyperv1.AvailabilityPolicy, dir string) (available, allReady time.Duration, err error) {
	return createClusterWith(ctx, c, rel, name, policy, dir, nil)
}

// createClusterWith is createCluster with the HostedCluster changed by
// change first.
func createClusterWith(ctx context.Context, c client.Client, rel *release.Release, name string, policy hyperv1.AvailabilityPolicy, dir string,
	change func(*hyperv1.HostedCluster)) (available, allReady time.Duration, err error) {
	hc := &hyperv1.HostedCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: name},
		Spec: hyperv1.HostedClusterSpec{
			Release:                      hyperv1.Release{Image: rel.Image},
			PullSecret:                   corev1.LocalObjectReference{Name: "pull-secret"},
			ControllerAvailabilityPolicy: policy,
			Platform:                     hyperv1.PlatformSpec{Type: hyperv1.NonePlatform},
			Services: []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer,
				ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{Type: hyperv1.NodePort,
					NodePort: &hyperv1.NodePortPublishingStrategy{Address: "127.0.0.1"}}}},
		},
	}
	if change != nil {
		change(hc)
	}
	start := time.Now()
	if err := c.Create(ctx, hc); err != nil {
		return 0, 0, err
	}
	deadline := start.Add(3 * time.Minute)
	for {
		got := &hyperv1.HostedCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil &&
			meta.IsStatusConditionTrue(got.Status.Conditions, hyperv1.ConditionAvailable) {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%s not Available within 3 minutes", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if os.Getenv("BENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "%s created %s, Available after %.2fs (%s)\n", name, start.Format("15:04:05.000"), took.Seconds(), dir)
	}
	for {
		got := &hyperv1.HostedCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil &&
			meta.IsStatusConditionFalse(got.Status.Conditions, hyperv1.ConditionProgressing) {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%s still progressing after 3 minutes", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	settled := time.Since(start)
	time.Sleep(2 * time.Second)
	return took, settled, nil
}

// deleteCluster deletes a HostedCluster and returns the time until it is gone
// and no process of its control plane runs, and until its control plane
// namespace (which terminates in the background) is gone too.
func deleteCluster(ctx context.Context, c client.Client, name, dir string) (deletion, error) {
	start := time.Now()
	hc := &hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: name}}
	if err := c.Delete(ctx, hc); err != nil {
		return deletion{}, err
	}
	cpDir := filepath.Join(dir, "controlplanes", "clusters-"+name)
	var d deletion
	for deadline := start.Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return d, fmt.Errorf("%s not deleted within 3 minutes", name)
		}
		if d.processes == 0 && len(controlPlanePids(cpDir)) == 0 {
			d.processes = time.Since(start)
		}
		if d.namespace == 0 && apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: "clusters-" + name}, &corev1.Namespace{})) {
			d.namespace = time.Since(start)
		}
		if d.total == 0 && d.processes != 0 && apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(hc), &hyperv1.HostedCluster{})) {
			d.total = time.Since(start)
		}
		if d.total != 0 && d.namespace != 0 {
			return d, nil
		}
	}
}

// when lists one of the times of each deletion.
func when(d []deletion, of func(deletion) time.Duration) (out []time.Duration) {
	for _, x := range d {
		out = append(out, of(x))
	}
	return out
}

// deletion is when, after the delete call, a cluster's processes had ended,
// its control plane namespace was gone, and the HostedCluster was gone.
type deletion struct{ processes, namespace, total time.Duration }

// controlPlanePids are the processes of a control plane: its components (they
// name its directory on their command lines) and the balancers that publish
// its services (they run in it).
func controlPlanePids(dir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && (strings.Contains(string(b), dir+"/") || strings.HasPrefix(cwd, dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}

// componentCPU is the share of a core each of a control plane's programs uses
// over window, by program name.
func componentCPU(dir string, window time.Duration) map[string]float64 {
	pids := controlPlanePids(dir)
	before := map[int]time.Duration{}
	for _, p := range pids {
		before[p] = cpuTime(p)
	}
	time.Sleep(window)
	out := map[string]float64{}
	for _, p := range pids {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "comm"))
		if err != nil {
			continue
		}
		out[strings.TrimSpace(string(comm))] += (cpuTime(p) - before[p]).Seconds() / window.Seconds()
	}
	return out
}

// controlPlaneMemory sums the RSS and PSS of the processes of a control plane.
func controlPlaneMemory(dir string) (rssTotal, pssTotal int64) {
	for _, pid := range controlPlanePids(dir) {
		rssTotal += rss(pid)
		pssTotal += pss(pid)
	}
	return rssTotal, pssTotal
}
