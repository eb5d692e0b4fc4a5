package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// density starts SingleReplica hosted clusters one after another on hcp up
// until max are running, the machine has less than reserve memory available,
// or one takes longer than a minute to become Available (the machine is
// saturated; that one is deleted and not counted). It reports how many fit, their memory idle and after a light
// load (requests GET /api/v1/namespaces to every cluster in turn), and the
// p99 latency of those requests. The baseline is the bare etcd + kube-apiserver
// pair's memory and a GET on the management plane under the same load.
func density(bin string, rel *release.Release, max int, reserve int64, floor sample) error {
	up, err := startUpForClusters(bin)
	if err != nil {
		return err
	}
	defer up.stop()
	c, dir := up.client, up.dir
	ctx := context.Background()
	running, stopped := 0, ""
	var creates []time.Duration
	for running < max {
		if avail := memAvailable(); avail < reserve {
			stopped = fmt.Sprintf("%d MiB of memory left", avail>>20)
			break
		}
		name := fmt.Sprintf("d-%03d", running)
		d, _, err := createCluster(ctx, c, rel, name, hyperv1.SingleReplica, dir)
		if err != nil {
			stopped = err.Error()
			break
		}
		if d > time.Minute {
			// The machine is saturated: this cluster is not counted, and
			// goes before anything is measured.
			stopped = fmt.Sprintf("cluster %d took %.0fs to become Available (not counted, deleted)", running+1, d.Seconds())
			if _, err := deleteCluster(ctx, c, name, dir); err != nil {
				return err
			}
			break
		}
		creates = append(creates, d)
		running++
	}
	if stopped == "" {
		stopped = fmt.Sprintf("the limit of %d", max)
	}
	if running == 0 {
		return fmt.Errorf("no hosted cluster started: %s", stopped)
	}
	time.Sleep(30 * time.Second)
	idleRSS, idlePSS := densityMemory(dir, running)

	mgmtCfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	lat, base, failed, err := lightLoad(ctx, c, mgmtCfg, "d-%03d", running)
	if err != nil {
		return err
	}
	loadRSS, loadPSS := densityMemory(dir, running)
	p := func(d []time.Duration, q float64) float64 {
		if len(d) == 0 {
			return 0
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	c50, c90 := percentiles(creates)
	fmt.Printf("\n## Density: SingleReplica control planes started one after another (stopped at %s)\n\n", stopped)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| control planes running and serving | %d |\n", running)
	fmt.Printf("| create → Available over the run: p50 / p90 | %.2fs / %.2fs |\n", c50.Seconds(), c90.Seconds())
	fmt.Printf("| baseline: bare etcd + kube-apiserver start, before the run (the machine's speed) / RSS | %.2f s / %d MiB |\n", floor.ready.Seconds(), floor.rss>>20)
	fmt.Printf("| per control plane, idle: RSS / PSS | %d / %d MiB |\n", idleRSS>>20, idlePSS>>20)
	fmt.Printf("| per control plane, after the light load: RSS / PSS | %d / %d MiB |\n", loadRSS>>20, loadPSS>>20)
	fmt.Printf("| GET /api/v1/namespaces on each, %d requests: p50 / p99 (failed) | %.1f / %.1f ms (%d) |\n", len(lat)+failed, p(lat, 0.5), p(lat, 0.99), failed)
	fmt.Printf("| baseline: the same GET on the management plane meanwhile: p50 / p99 | %.1f / %.1f ms |\n\n", p(base, 0.5), p(base, 0.99))
	fmt.Printf("density: %d control planes serving, %d MiB PSS each idle (%.2fx the bare pair's RSS), GET p99 %.1f ms vs %.1f ms on the management plane: %.2fx\n",
		running, idlePSS>>20, ratio(float64(idlePSS), float64(floor.rss)), p(lat, 0.99), p(base, 0.99), ratio(p(lat, 0.99), p(base, 0.99)))
	return nil
}

// densityMemory is the median RSS and PSS of the running control planes.
func densityMemory(dir string, n int) (rssMedian, pssMedian int64) {
	var rs, ps []int64
	for i := range n {
		r, p := controlPlaneMemory(filepath.Join(dir, "controlplanes", fmt.Sprintf("clusters-d-%03d", i)))
		rs, ps = append(rs, r), append(ps, p)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return rs[len(rs)/2], ps[len(ps)/2]
}

// guestConfig is the admin client configuration of a hosted cluster, from the
// kubeconfig Secret its HostedCluster names.
func guestConfig(ctx context.Context, c client.Client, name string) (*rest.Config, error) {
	hc := &hyperv1.HostedCluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name}, hc); err != nil {
		return nil, err
	}
	if hc.Status.KubeConfig == nil {
		return nil, fmt.Errorf("%s has no kubeconfig yet", name)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: hc.Status.KubeConfig.Name}, s); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["kubeconfig"])
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return cfg, nil
}

// lightLoad sends 20 rounds of one GET /api/v1/namespaces to each of n
// hosted clusters (names from format and 0..n-1) and one to the management
// API, and returns their latencies and how many to the clusters failed.
func lightLoad(ctx context.Context, c client.Client, mgmtCfg *rest.Config, format string, n int) (lat, base []time.Duration, failed int, err error) {
	clients := make([]*http.Client, n)
	urls := make([]string, n)
	for i := range n {
		cfg, err := guestConfig(ctx, c, fmt.Sprintf(format, i))
		if err != nil {
			return nil, nil, 0, err
		}
		if clients[i], err = rest.HTTPClientFor(cfg); err != nil {
			return nil, nil, 0, err
		}
		urls[i] = cfg.Host + "/api/v1/namespaces"
	}
	mgmt, err := rest.HTTPClientFor(mgmtCfg)
	if err != nil {
		return nil, nil, 0, err
	}
	for range 20 {
		for i := range n {
			d, err := timedGet(clients[i], urls[i])
			if err != nil {
				failed++
				continue
			}
			lat = append(lat, d)
		}
		if d, err := timedGet(mgmt, mgmtCfg.Host+"/api/v1/namespaces"); err == nil {
			base = append(base, d)
		}
	}
	return lat, base, failed, nil
}

func timedGet(c *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	buf := make([]byte, 32<<10)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	return time.Since(start), nil
}

// memAvailable is the kernel's estimate of memory available for new work.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
