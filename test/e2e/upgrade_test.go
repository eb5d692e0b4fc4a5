package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcp-dev/hcp/internal/release"
)

// etcdLeader is the replica (etcd-<i>) that leads a control plane's etcd.
func etcdLeader(t *testing.T, cpDir string) string {
	t.Helper()
	for _, m := range etcdMembers(t, cpDir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leads, err := m.client.EtcdLeads(ctx, m.url)
		cancel()
		if err != nil {
			t.Fatalf("asking %s whether it leads: %v", m.replica, err)
		}
		if leads {
			return m.replica
		}
	}
	t.Fatalf("no etcd member of %s leads", cpDir)
	return ""
}

// olderRelease is the release before the default one in the payload: the
// upgrade tests start clusters there.
func olderRelease(t *testing.T) *release.Release {
	t.Helper()
	all, err := release.Store{Dir: filepath.Join(binDir, "release")}.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 {
		t.Fatalf("the release payload has %d release(s); make build builds two", len(all))
	}
	return all[len(all)-2]
}

// availableReleases is how hcp lists the payload's releases: their images,
// oldest first, comma-separated.
func availableReleases(t *testing.T) string {
	t.Helper()
	all, err := release.Store{Dir: filepath.Join(binDir, "release")}.List()
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, r := range all {
		images = append(images, r.Image)
	}
	return strings.Join(images, ", ")
}

// apiClient writes and reads the hosted API through its published endpoint
// every 100 ms: each round creates a ConfigMap and reads it back. Any error
// counts as a failed request.
type apiClient struct {
	cs     *kubernetes.Clientset
	mu     sync.Mutex
	names  []string
	total  int
	failed []string
	// outages are the spans during which every request failed.
	outages   []time.Duration
	downSince time.Time
	stop      chan struct{}
	done      chan struct{}
}

func startAPIClient(t *testing.T, kubeconfig string) *apiClient {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{cs: cs, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *apiClient) run() {
	defer close(c.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		name := fmt.Sprintf("during-%05d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
			Data: map[string]string{"i": fmt.Sprint(i)}}, metav1.CreateOptions{})
		if err == nil {
			_, err = c.cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
		}
		cancel()
		c.mu.Lock()
		c.total += 2
		switch {
		case err != nil:
			c.failed = append(c.failed, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), name, err))
			if c.downSince.IsZero() {
				c.downSince = time.Now()
			}
		default:
			c.names = append(c.names, name)
			if !c.downSince.IsZero() {
				c.outages = append(c.outages, time.Since(c.downSince))
				c.downSince = time.Time{}
			}
		}
		c.mu.Unlock()
	}
}

func (c *apiClient) finish() {
	close(c.stop)
	<-c.done
}

// downtime is the longest span during which every request failed.
func (c *apiClient) downtime() time.Duration {
	if len(c.outages) == 0 {
		return 0
	}
	return slices.Max(c.outages)
}

// firstAt records, for each replica process of a control plane (by the name
// its -<i> suffix or --name gives), when it was first seen running a program
// of the given release directory.
type firstAt struct {
	mu   sync.Mutex
	seen map[string]time.Time
	stop chan struct{}
	done chan struct{}
}

// watchVersions polls the control plane's processes every 100 ms.
func watchVersions(cpDir, releaseDir string) *firstAt {
	w := &firstAt{seen: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			for _, pid := range componentProcesses(cpDir) {
				exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
				if err != nil || !strings.HasPrefix(exe, releaseDir+"/") {
					continue
				}
				key := replicaOf(pid)
				if key == "" {
					continue
				}
				w.mu.Lock()
				if _, ok := w.seen[key]; !ok {
					w.seen[key] = time.Now()
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// replicaOf is a control plane process's replica, e.g. kube-apiserver-1, from
// its working directory (<plane>/<component>-<i>).
func replicaOf(pid int) string {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return ""
	}
	return filepath.Base(cwd)
}

func (w *firstAt) finish() map[string]time.Time {
	close(w.stop)
	<-w.done
	return w.seen
}

// span is the first and last time the replicas of a component moved.
func span(seen map[string]time.Time, component string) (first, last time.Time, n int) {
	for key, at := range seen {
		if strings.TrimRight(key, "0123456789") != component+"-" {
			continue
		}
		n++
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last, n
}

type historyEntry struct {
	State          string  `json:"state"`
	Version        string  `json:"version"`
	StartedTime    string  `json:"startedTime"`
	CompletionTime *string `json:"completionTime"`
}

func (u *upProcess) history(t *testing.T, name string) []historyEntry {
	t.Helper()
	out, err := u.kubectl("", "-n", "clusters", "get", "hc", name, "-o", "jsonpath={.status.version.history}")
	if err != nil || out == "" {
		return nil
	}
	var h []historyEntry
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("history %q: %v", out, err)
	}
	return h
}

func serverVersion(t *testing.T, kubeconfig string) string {
	t.Helper()
	var v struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	out := guestKubectl(t, kubeconfig, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	return v.ServerVersion.GitVersion
}

// upgrade moves cluster name from old to the default release while a client
// writes and reads its API, and checks the rollout's order and status.
func upgrade(t *testing.T, up *upProcess, dataDir, name string, old *release.Release, replicas int, trigger func()) (*apiClient, map[string]time.Time) {
	t.Helper()
	kc := up.adminKubeconfig(t, name)
	if v := serverVersion(t, kc); v != old.KubernetesVersion() {
		t.Fatalf("kubectl version before the upgrade: server %s, want %s", v, old.KubernetesVersion())
	}
	for i := range 20 {
		guestKubectl(t, kc, "create", "configmap", fmt.Sprintf("before-%02d", i), "--from-literal=i="+fmt.Sprint(i))
	}
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-"+name)
	versions := watchVersions(cpDir, rel.Dir)
	client := startAPIClient(t, kc)
	time.Sleep(time.Second)

	start := time.Now()
	trigger()
	var steps []string
	sawPartial := false
	eventually(t, 8*time.Minute, "the upgrade to "+rel.Name+" Completed", func() error {
		if msg := up.condition("hcp", "clusters-"+name, name, "Progressing"); strings.Contains(msg, "pgrading") && !slices.Contains(steps, msg) {
			steps = append(steps, msg)
		}
		h := up.history(t, name)
		if len(h) == 0 || h[0].Version != rel.Name {
			return fmt.Errorf("history %+v", h)
		}
		if h[0].State == "Partial" {
			sawPartial = true
		}
		if h[0].State != "Completed" {
			return fmt.Errorf("history %+v", h)
		}
		return nil
	})
	took := time.Since(start)
	time.Sleep(time.Second)
	client.finish()
	seen := versions.finish()
	t.Logf("upgrade %s -> %s (%d replicas of etcd and kube-apiserver) Completed in %.1fs; steps seen: %q", old.Name, rel.Name, replicas, took.Seconds(), steps)

	h := up.history(t, name)
	if !sawPartial || len(h) < 2 || h[0].State != "Completed" || h[0].CompletionTime == nil || h[1].Version != old.Name || h[1].State != "Completed" {
		t.Errorf("history did not go Partial -> Completed over the old release (Partial seen: %v): %+v", sawPartial, h)
	}
	if len(steps) == 0 {
		t.Errorf("Progressing never said which step the upgrade was at")
	}
	// The order: every etcd member before any API server, every API server
	// before the controller manager or the scheduler.
	etcdFirst, etcdLast, etcdN := span(seen, "etcd")
	kasFirst, kasLast, kasN := span(seen, "kube-apiserver")
	kcmFirst, _, kcmN := span(seen, "kube-controller-manager")
	schedFirst, _, schedN := span(seen, "kube-scheduler")
	if etcdN != replicas || kasN != replicas || kcmN == 0 || schedN == 0 {
		t.Fatalf("replicas seen on the new release: etcd %d, kube-apiserver %d, kcm %d, scheduler %d (want %d etcd and kube-apiserver): %v",
			etcdN, kasN, kcmN, schedN, replicas, seen)
	}
	if !etcdLast.Before(kasFirst) {
		t.Errorf("a kube-apiserver restarted (%s) before the last etcd member reached the new version (%s)", kasFirst.Format("15:04:05.000"), etcdLast.Format("15:04:05.000"))
	}
	if !kasLast.Before(kcmFirst) || !kasLast.Before(schedFirst) {
		t.Errorf("kcm (%s) or the scheduler (%s) restarted before the last kube-apiserver reached the new version (%s)",
			kcmFirst.Format("15:04:05.000"), schedFirst.Format("15:04:05.000"), kasLast.Format("15:04:05.000"))
	}
	t.Logf("etcd %s..%s, kube-apiserver %s..%s, kcm %s, scheduler %s", etcdFirst.Format("15:04:05.0"), etcdLast.Format("15:04:05.0"),
		kasFirst.Format("15:04:05.0"), kasLast.Format("15:04:05.0"), kcmFirst.Format("15:04:05.0"), schedFirst.Format("15:04:05.0"))

	if v := serverVersion(t, kc); v != rel.KubernetesVersion() {
		t.Errorf("kubectl version after the upgrade: server %s, want %s", v, rel.KubernetesVersion())
	}
	// Every object written before and during is there.
	eventually(t, time.Minute, "every object written before and during the upgrade", func() error {
		out, err := runKubectl(kc, "", "get", "configmaps", "-o", "name")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var missing []string
		for i := range 20 {
			if !strings.Contains(out, fmt.Sprintf("configmap/before-%02d\n", i)) {
				missing = append(missing, fmt.Sprintf("before-%02d", i))
			}
		}
		for _, n := range client.names {
			if !strings.Contains(out, "configmap/"+n+"\n") {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing: %v", missing)
		}
		return nil
	})
	// The hosted cluster's ClusterVersion tells the same history.
	cv := guestKubectl(t, kc, "get", "clusterversion", "version", "-o", "jsonpath={.status.history[0].version}/{.status.history[0].state}/{.status.history[1].version}")
	if want := rel.Name + "/Completed/" + old.Name; cv != want {
		t.Errorf("ClusterVersion history %q, want %q", cv, want)
	}
	co := guestKubectl(t, kc, "get", "clusteroperator", "kube-apiserver", "-o", `jsonpath={.status.versions[?(@.name=="kube-apiserver")].version}`)
	if !strings.Contains(co, strings.TrimPrefix(rel.KubernetesVersion(), "v")) {
		t.Errorf("ClusterOperator kube-apiserver versions %q, want %s", co, rel.KubernetesVersion())
	}
	return client, seen
}

// olderCluster runs hcp up and creates cluster name with the availability
// policy on the release before the default one, waiting until it is
// Available; it returns hcp up's data directory and the release.
func olderCluster(t *testing.T, name, policy string) (*upProcess, string, *release.Release) {
	t.Helper()
	old := olderRelease(t)
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster(name, policy, "local", old.Image), "apply", "-f", "-")
	up.waitAvailable(t, name)
	return up, dataDir, old
}

func TestUpgradeHighlyAvailable(t *testing.T) {
	up, dataDir, old := olderCluster(t, "ha", "HighlyAvailable")
	eventually(t, 3*time.Minute, "every replica ready", func() error {
		if c := up.condition("hcp", "clusters-ha", "ha", "Progressing"); !strings.HasPrefix(c, "False/") {
			return fmt.Errorf("Progressing=%q", c)
		}
		return nil
	})
	leader := etcdLeader(t, filepath.Join(dataDir, "controlplanes", "clusters-ha"))
	client, seen := upgrade(t, up, dataDir, "ha", old, 3, func() {
		up.mustKubectl("", "-n", "clusters", "patch", "hc", "ha", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+rel.Image+`"}}}`)
	})
	t.Logf("API requests during the upgrade: %d, failed: %d", client.total, len(client.failed))
	// The member that led restarts last: leadership moves once, to a
	// member already on the new release.
	if _, last, _ := span(seen, "etcd"); !seen[leader].Equal(last) {
		t.Errorf("the etcd leader %s reached the new release at %s, before the last member (%s)", leader,
			seen[leader].Format("15:04:05.000"), last.Format("15:04:05.000"))
	}
	// Upstream etcd drops a write in flight while its leadership moves
	// (answered "request timed out, possibly due to previous leader
	// failure"), and the kube-apiserver does not retry writes: the one
	// move, when the leader restarts last, can fail one. That is reported;
	// any other failure, or more than one, fails the test.
	var other []string
	for _, f := range client.failed {
		if !strings.Contains(f, "etcdserver: request timed out") && !strings.Contains(f, "raft proposal dropped") {
			other = append(other, f)
		}
	}
	if len(other) > 0 || len(client.failed) > 1 {
		t.Errorf("%d of %d requests failed during the HighlyAvailable upgrade:\n%s", len(client.failed), client.total, strings.Join(client.failed, "\n"))
	} else if len(client.failed) == 1 {
		t.Logf("KNOWN: one write failed in etcd as its leadership moved: %s", client.failed[0])
	}
}

func TestUpgradeSingleReplicaAndTheRules(t *testing.T) {
	up, dataDir, old := olderCluster(t, "one", "SingleReplica")
	hcpRelease := func() string {
		return up.mustKubectl("", "-n", "clusters-one", "get", "hcp", "one", "-o", "jsonpath={.spec.releaseImage}")
	}

	// A release that does not exist is refused before anything changes.
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "one", "--type", "merge", "-p", `{"spec":{"release":{"image":"hcp.dev/release:9.9.9"}}}`)
	eventually(t, time.Minute, "the unknown release refused", func() error {
		if c := up.condition("hc", "clusters", "one", "ValidReleaseImage"); !strings.HasPrefix(c, "False/") || !strings.Contains(c, "available: ") {
			return fmt.Errorf("ValidReleaseImage=%q", c)
		}
		return nil
	})
	if got := hcpRelease(); got != old.Image {
		t.Fatalf("the control plane's release became %q after an unknown release was refused", got)
	}

	// The console's cluster page shows the version and the upgrade the rules
	// allow; its button starts it.
	b := newBrowser(t, up, t.TempDir())
	kubeconfig, err := os.ReadFile(up.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b.login("", string(kubeconfig))
	b.run("open the cluster page", chromedp.Navigate(b.base+"/#/clusters/clusters/one"), chromedp.WaitVisible(chromedp.CSS("#version")))
	b.waitText("#cluster-version", old.Name, 30*time.Second)
	button := "#upgrade-" + strings.ReplaceAll(rel.Name, ".", "-")
	b.waitText(button, "Upgrade to "+rel.Name, 30*time.Second)
	b.shot("upgrade-offered")
	client, _ := upgrade(t, up, dataDir, "one", old, 1, func() {
		// The page redraws itself as the cluster changes: click the
		// button as it is now.
		if got := b.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return "missing"; el.click(); return "clicked"; })()`, button)); got != "clicked" {
			t.Fatalf("the upgrade button: %s", got)
		}
	})
	b.waitText("#cluster-version", rel.Name, time.Minute)
	b.shot("upgraded")
	t.Logf("SingleReplica upgrade: %d of %d requests failed; the longest outage was %.1fs", len(client.failed), client.total, client.downtime().Seconds())

	// A downgrade is refused, saying what is allowed; the force annotation
	// lets it through.
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "one", "--type", "merge", "-p", `{"spec":{"release":{"image":"`+old.Image+`"}}}`)
	eventually(t, time.Minute, "the downgrade refused", func() error {
		c := up.condition("hc", "clusters", "one", "ValidReleaseImage")
		if !strings.HasPrefix(c, "False/") || !strings.Contains(c, "downgrade is not supported") || !strings.Contains(c, "hypershift.openshift.io/force-upgrade-to="+old.Image) {
			return fmt.Errorf("ValidReleaseImage=%q", c)
		}
		return nil
	})
	if got := hcpRelease(); got != rel.Image {
		t.Fatalf("the control plane's release became %q after the downgrade was refused", got)
	}
	// The console applies the same rules.
	admin := newConsoleClient(t, up)
	body, _ := json.Marshal(map[string]string{"kubeconfig": string(kubeconfig)})
	admin.login(string(body))
	if code, out := admin.do("POST", "/api/clusters/clusters/one/upgrade", `{"releaseImage":"`+old.Image+`"}`, nil); code != http.StatusUnprocessableEntity || !strings.Contains(out, "downgrade is not supported") {
		t.Errorf("the console's downgrade: %d %s", code, out)
	}
	if code, out := admin.do("POST", "/api/clusters/clusters/one/upgrade", `{"releaseImage":"hcp.dev/release:9.9.9"}`, nil); code != http.StatusUnprocessableEntity || !strings.Contains(out, "release not found") {
		t.Errorf("the console's unknown release: %d %s", code, out)
	}
	if code, out := admin.do("POST", "/api/clusters/clusters/one/upgrade", `{"releaseImage":"`+old.Image+`","force":"yes"}`, nil); code != http.StatusUnprocessableEntity || !strings.Contains(out, `"field":"body"`) {
		t.Errorf("the console's malformed body: %d %s", code, out)
	}
	up.mustKubectl("", "-n", "clusters", "annotate", "hc", "one", "hypershift.openshift.io/force-upgrade-to="+old.Image)
	eventually(t, time.Minute, "the forced downgrade let through", func() error {
		if c := up.condition("hc", "clusters", "one", "ValidReleaseImage"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("ValidReleaseImage=%q", c)
		}
		if got := hcpRelease(); got != old.Image {
			return fmt.Errorf("the control plane's release is %q", got)
		}
		return nil
	})
}
