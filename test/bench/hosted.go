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
// a time, for HighlyAvailable.
func hostedClusters(bin string, rel *release.Release, n int, settle time.Duration, floor sample) error {
	up, err := startUpForClusters(bin)
	if err != nil {
		return err
	}
	defer up.stop()
	c, dir := up.client, up.dir
	ctx := context.Background()
	var times, deletes []time.Duration
	for i := range n {
		d, err := createCluster(ctx, c, rel, fmt.Sprintf("bench-%d", i), hyperv1.SingleReplica, dir)
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
	for i := range n {
		d, err := deleteCluster(ctx, c, fmt.Sprintf("bench-%d", i), dir)
		if err != nil {
			return err
		}
		deletes = append(deletes, d)
	}
	var haTimes, haDeletes []time.Duration
	for i := range n {
		name := fmt.Sprintf("ha-%d", i)
		d, err := createCluster(ctx, c, rel, name, hyperv1.HighlyAvailable, dir)
		if err != nil {
			return err
		}
		haTimes = append(haTimes, d)
		if d, err = deleteCluster(ctx, c, name, dir); err != nil {
			return err
		}
		haDeletes = append(haDeletes, d)
	}
	p50, p90 := percentiles(times)
	d50, d90 := percentiles(deletes)
	h50, h90 := percentiles(haTimes)
	hd50, hd90 := percentiles(haDeletes)
	sort.Slice(mems, func(i, j int) bool { return mems[i] < mems[j] })
	sort.Slice(psses, func(i, j int) bool { return psses[i] < psses[j] })
	mem, ps := mems[len(mems)/2], psses[len(psses)/2]
	fmt.Printf("| hosted control plane, %d of each policy | p50 | p90 | idle RSS | idle PSS |\n|---|---|---|---|---|\n", n)
	fmt.Printf("| baseline: bare etcd + kube-apiserver start | %.2fs | | %d MiB | |\n", floor.ready.Seconds(), floor.rss>>20)
	fmt.Printf("| SingleReplica create → Available (one after another, all kept) | %.2fs | %.2fs | %d MiB | %d MiB |\n", p50.Seconds(), p90.Seconds(), mem>>20, ps>>20)
	fmt.Printf("| HighlyAvailable create → Available (one at a time) | %.2fs | %.2fs | | |\n", h50.Seconds(), h90.Seconds())
	fmt.Printf("| baseline: bare etcd + kube-apiserver stop (SIGTERM → exited) | %.2fs | | | |\n", floor.stop.Seconds())
	fmt.Printf("| SingleReplica delete → HostedCluster gone, processes ended | %.2fs | %.2fs | | |\n", d50.Seconds(), d90.Seconds())
	fmt.Printf("| HighlyAvailable delete → HostedCluster gone, processes ended | %.2fs | %.2fs | | |\n\n", hd50.Seconds(), hd90.Seconds())
	fmt.Printf("RSS counts the component binaries' pages in every control plane; PSS shares them among the %d running, which is what one more control plane costs.\n\n", n)
	fmt.Printf("hosted control plane create→Available p50 vs bare etcd+kube-apiserver start: SingleReplica %.2fx (%.2fs/%.2fs), HighlyAvailable %.2fx (%.2fs) (target ≤1.3x); delete p50 %.2fs/%.2fs vs stopping the bare pair %.2fs; idle memory PSS %d MiB, RSS %d MiB (RSS %.2fx the bare pair)\n",
		ratio(p50.Seconds(), floor.ready.Seconds()), p50.Seconds(), floor.ready.Seconds(), ratio(h50.Seconds(), floor.ready.Seconds()), h50.Seconds(),
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
func createCluster(ctx context.Context, c client.Client, rel *release.Release, name string, policy hyperv1.AvailabilityPolicy, dir string) (time.Duration, error) {
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
	start := time.Now()
	if err := c.Create(ctx, hc); err != nil {
		return 0, err
	}
	deadline := start.Add(3 * time.Minute)
	for {
		got := &hyperv1.HostedCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil &&
			meta.IsStatusConditionTrue(got.Status.Conditions, hyperv1.ConditionAvailable) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not Available within 3 minutes", name)
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
			return 0, fmt.Errorf("%s still progressing after 3 minutes", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	return took, nil
}

// deleteCluster deletes a HostedCluster and returns the time until it is gone
// and no process of its control plane runs.
func deleteCluster(ctx context.Context, c client.Client, name, dir string) (time.Duration, error) {
	start := time.Now()
	hc := &hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: name}}
	if err := c.Delete(ctx, hc); err != nil {
		return 0, err
	}
	cpDir := filepath.Join(dir, "controlplanes", "clusters-"+name)
	err := waitFor(3*time.Minute, name+" deleted", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(hc), &hyperv1.HostedCluster{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		r, _ := controlPlaneMemory(cpDir)
		return r == 0, nil
	})
	return time.Since(start), err
}

// controlPlaneMemory sums the RSS and PSS of the processes of a control plane:
// its components and the balancers that publish its services.
func controlPlaneMemory(dir string) (rssTotal, pssTotal int64) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A component names its directory on its command line; a balancer
		// publishing a service runs in its directory.
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || (!strings.Contains(string(b), dir+"/") && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		rssTotal += rss(pid)
		pssTotal += pss(pid)
	}
	return rssTotal, pssTotal
}
