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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// hostedClusters runs hcp up, creates SingleReplica HostedClusters one after
// another and measures create→Available and each control plane's idle memory.
func hostedClusters(bin string, rel *release.Release, n int, settle time.Duration, floor sample) error {
	up, err := startUp(bin)
	if err != nil {
		return err
	}
	defer up.stop()
	c, dir := up.client, up.dir
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clusters"}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: "pull-secret"},
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}); err != nil {
		return err
	}
	var times []time.Duration
	for i := range n {
		name := fmt.Sprintf("bench-%d", i)
		hc := &hyperv1.HostedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: name},
			Spec: hyperv1.HostedClusterSpec{
				Release:                      hyperv1.Release{Image: rel.Image},
				PullSecret:                   corev1.LocalObjectReference{Name: "pull-secret"},
				ControllerAvailabilityPolicy: hyperv1.SingleReplica,
				Platform:                     hyperv1.PlatformSpec{Type: hyperv1.NonePlatform},
				Services: []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer,
					ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{Type: hyperv1.NodePort,
						NodePort: &hyperv1.NodePortPublishingStrategy{Address: "127.0.0.1"}}}},
			},
		}
		start := time.Now()
		if err := c.Create(ctx, hc); err != nil {
			return err
		}
		deadline := start.Add(3 * time.Minute)
		for {
			got := &hyperv1.HostedCluster{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil &&
				meta.IsStatusConditionTrue(got.Status.Conditions, hyperv1.ConditionAvailable) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not Available within 3 minutes", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Fprintf(os.Stderr, "%s created %s, Available after %.2fs (%s)\n", name, start.Format("15:04:05.000"), time.Since(start).Seconds(), dir)
		}
		// The next cluster is created once this one has settled, so each
		// figure is one create, not a pile-up of startups.
		for {
			got := &hyperv1.HostedCluster{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil &&
				meta.IsStatusConditionFalse(got.Status.Conditions, hyperv1.ConditionProgressing) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still progressing after 3 minutes", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(settle)
	var mems, psses []int64
	for i := range n {
		r, p := controlPlaneMemory(filepath.Join(dir, "controlplanes", fmt.Sprintf("clusters-bench-%d", i)))
		mems, psses = append(mems, r), append(psses, p)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	sort.Slice(mems, func(i, j int) bool { return mems[i] < mems[j] })
	sort.Slice(psses, func(i, j int) bool { return psses[i] < psses[j] })
	p50, p90 := times[len(times)/2], times[(len(times)*9)/10]
	mem, ps := mems[len(mems)/2], psses[len(psses)/2]
	fmt.Printf("| hosted control plane (SingleReplica, %d created one after another) | p50 | p90 | idle RSS | idle PSS |\n|---|---|---|---|---|\n", n)
	fmt.Printf("| create → Available | %.2fs | %.2fs | %d MiB | %d MiB |\n", p50.Seconds(), p90.Seconds(), mem>>20, ps>>20)
	fmt.Printf("| baseline: bare etcd + kube-apiserver start | %.2fs | | %d MiB | |\n\n", floor.ready.Seconds(), floor.rss>>20)
	fmt.Printf("RSS counts the component binaries' pages in every control plane; PSS shares them among the %d running, which is what one more control plane costs.\n\n", n)
	fmt.Printf("hosted control plane create→Available p50 vs bare etcd+kube-apiserver start: %.2fx (%.2fs/%.2fs, target ≤1.3x); idle memory PSS %d MiB, RSS %d MiB (target ≤400 MiB; RSS %.2fx the bare pair)\n",
		ratio(p50.Seconds(), floor.ready.Seconds()), p50.Seconds(), floor.ready.Seconds(), ps>>20, mem>>20, ratio(float64(mem), float64(floor.rss)))
	return nil
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
