package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// upgrades measures a control plane upgrade from the release before the
// default one to the default one, for each availability policy: the time
// from the change of spec.release to the history's Completed entry, next to
// the bare etcd and kube-apiservers of the same shape stopped and started
// again on the new release's binaries; and, while it rolls, a client's writes
// and reads through the published endpoint every 100 ms.
func upgrades(bin string) error {
	all, err := release.Store{Dir: filepath.Join(bin, "release")}.List()
	if err != nil {
		return err
	}
	if len(all) < 2 {
		return fmt.Errorf("the upgrade benchmark needs two releases; the payload has %d", len(all))
	}
	from, to := all[len(all)-2], all[len(all)-1]
	fmt.Printf("\n## Control plane upgrade %s -> %s\n\n", from.Name, to.Name)
	fmt.Printf("| policy | hcp: spec.release changed -> Completed | baseline: bare etcd + kube-apiserver restarted on the new binaries | ratio | API requests failed during the upgrade |\n|---|---|---|---|---|\n")
	var summary []string
	for _, tc := range []struct {
		policy     hyperv1.AvailabilityPolicy
		members    int
		apiservers int
	}{{hyperv1.SingleReplica, 1, 1}, {hyperv1.HighlyAvailable, 3, 3}} {
		base, err := bareRestart(from, to, tc.members, tc.apiservers)
		if err != nil {
			return fmt.Errorf("%s baseline: %w", tc.policy, err)
		}
		took, load, err := hcpUpgrade(bin, from, to, tc.policy)
		if err != nil {
			return fmt.Errorf("%s upgrade: %w", tc.policy, err)
		}
		failed, total, outage, slowest := load.failed, load.total, load.longest, load.slowest
		if failed > 0 {
			fmt.Fprintf(os.Stderr, "bench: %s upgrade: failed requests: %s\n", tc.policy, strings.Join(load.errors, "; "))
		}
		fmt.Printf("| %s | %.1fs | %.1fs | %.2fx | %d of %d (longest outage %.1fs, slowest write+read %.1fs) |\n", tc.policy, took.Seconds(), base.Seconds(),
			ratio(took.Seconds(), base.Seconds()), failed, total, outage.Seconds(), slowest.Seconds())
		summary = append(summary, fmt.Sprintf("%s %.2fx (%.1fs/%.1fs), %d of %d requests failed, slowest write+read %.1fs", tc.policy, ratio(took.Seconds(), base.Seconds()),
			took.Seconds(), base.Seconds(), failed, total, slowest.Seconds()))
	}
	fmt.Printf("\nRequests that wait (client-go retries a 429 Retry-After; a stopped API server's balancer sends new connections elsewhere) count as slow, not failed. The bare restart stops every process at once and starts them on the new binaries: it is down from the stop until its API servers are ready. hcp rolls etcd first, then the API servers, then the controllers, one replica at a time, each ready before the next (Kamaji's published blue/green upgrade figure: 10 s).\n\n")
	fmt.Printf("control plane upgrade %s -> %s vs a bare restart on the new binaries: %s\n", from.Name, to.Name, strings.Join(summary, "; "))
	return nil
}

// bareRestart starts etcd members and API servers on from's binaries, waits
// until they serve, then measures stopping them all and starting them on to's
// binaries until every API server is ready again.
func bareRestart(from, to *release.Release, members, apiservers int) (time.Duration, error) {
	b, err := newBarePair(members, apiservers)
	if err != nil {
		return 0, err
	}
	defer b.remove()
	if err := b.start(from); err != nil {
		return 0, err
	}
	if err := b.waitReady(); err != nil {
		return 0, err
	}
	start := time.Now()
	b.stop()
	if err := b.start(to); err != nil {
		return 0, err
	}
	if err := b.waitReady(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// hcpUpgrade creates a cluster on from under hcp up, and measures changing
// its release to to until the version history says Completed, with a client
// on the hosted API all along.
func hcpUpgrade(bin string, from, to *release.Release, policy hyperv1.AvailabilityPolicy) (took time.Duration, load *writerReader, err error) {
	up, err := startUpForClusters(bin)
	if err != nil {
		return 0, nil, err
	}
	defer up.stop()
	ctx := context.Background()
	name := "upgrade"
	if _, _, err := createCluster(ctx, up.client, from, name, policy, up.dir); err != nil {
		return 0, nil, err
	}
	sec := &corev1.Secret{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name + "-admin-kubeconfig"}, sec); err != nil {
		return 0, nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(sec.Data["kubeconfig"])
	if err != nil {
		return 0, nil, err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, nil, err
	}
	load = &writerReader{cs: cs, stop: make(chan struct{}), done: make(chan struct{})}
	go load.run()

	hc := &hyperv1.HostedCluster{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name}, hc); err != nil {
		load.finish()
		return 0, nil, err
	}
	patch := client.MergeFrom(hc.DeepCopy())
	hc.Spec.Release.Image = to.Image
	start := time.Now()
	if err := up.client.Patch(ctx, hc, patch); err != nil {
		load.finish()
		return 0, nil, err
	}
	for deadline := start.Add(10 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		got := &hyperv1.HostedCluster{}
		if err := up.client.Get(ctx, client.ObjectKeyFromObject(hc), got); err == nil && got.Status.Version != nil &&
			len(got.Status.Version.History) > 0 && got.Status.Version.History[0].Version == to.Name &&
			got.Status.Version.History[0].State == hyperv1.CompletedUpdate {
			break
		}
		if time.Now().After(deadline) {
			load.finish()
			return 0, nil, fmt.Errorf("the upgrade of %s to %s did not complete in 10 minutes", name, to.Name)
		}
	}
	took = time.Since(start)
	load.finish()
	return took, load, nil
}

// writerReader creates a ConfigMap and reads it back every 100 ms, counting
// the requests that fail and the longest span in which all did.
type writerReader struct {
	cs            *kubernetes.Clientset
	mu            sync.Mutex
	total, failed int
	longest       time.Duration
	// slowest is the longest round (a write and its read), failed or not.
	slowest   time.Duration
	downSince time.Time
	// errors are the first failures, with when they happened.
	errors     []string
	stop, done chan struct{}
}

func (w *writerReader) run() {
	defer close(w.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		name := fmt.Sprintf("load-%06d", i)
		began := time.Now()
		_, err := w.cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		w.mu.Lock()
		w.total++
		if err == nil {
			_, err = w.cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
			w.total++
		}
		cancel()
		w.slowest = max(w.slowest, time.Since(began))
		if err != nil {
			w.failed++
			if len(w.errors) < 3 {
				w.errors = append(w.errors, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			if w.downSince.IsZero() {
				w.downSince = time.Now()
			}
		} else if !w.downSince.IsZero() {
			w.longest = max(w.longest, time.Since(w.downSince))
			w.downSince = time.Time{}
		}
		w.mu.Unlock()
	}
}

func (w *writerReader) finish() {
	close(w.stop)
	<-w.done
}
