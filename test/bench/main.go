// Command bench measures hcp and prints each figure next to a baseline measured in
// the same run, ending with the ratio, so runs on different machines compare.
//
//	go run ./test/bench [-runs 3] [-settle 10s]
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hcp-dev/hcp/internal/pki"
	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/up"
)

type sample struct {
	ready time.Duration
	rss   int64
	// stop is how long the processes took to end after SIGTERM.
	stop time.Duration
	// steps are hcp up's steps as it printed them: each with when it began.
	steps []step
}

type step struct {
	name string
	at   time.Duration
}

// stepLine is a step line of hcp up: two spaces, the step, its start in seconds.
var stepLine = regexp.MustCompile(`^  (\S.*?)\s+(\d+\.\d)s$`)

func main() {
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	clusters := flag.Int("clusters", 10, "hosted clusters created one after another, of each availability policy")
	agentCount := flag.Int("agents", 1000, "simulated discovery agents")
	backupObjects := flag.Int("backup-objects", 10000, "ConfigMaps in the hosted cluster the backup benchmark backs up")
	only := flag.String("only", "management,hosted,upgrade,backup,agents,nodes,realnodes,kubernetes,managementnodes", "benchmarks to run (comma-separated; also density, managementdensity)")
	mgmtClusters := flag.Int("management-node-clusters", 3, "SingleReplica clusters created one after another on hcp up's 3 management nodes")
	realNodeCount := flag.Int("real-nodes", 2, "lab hosts that join as real nodes")
	podCount := flag.Int("pods", 100, "pods started one at a time on the real nodes")
	nodeCount := flag.Int("nodes", 10, "hosts that join as nodes in the NodePool scale-up")
	bindCount := flag.Int("bind", 500, "simulated agents a NodePool binds (0: skip)")
	agentPoll := flag.Duration("agent-poll", up.Defaults().AgentPollInterval, "hcp up --agent-poll-interval in the NodePool scale-up (default: hcp up's)")
	k8sClusters := flag.Int("k8s-clusters", 100, "HostedClusters on the Kubernetes runtime benchmark")
	k8sAgents := flag.Int("k8s-agents", 1000, "simulated Agents registered next to the Kubernetes runtime benchmark's clusters (0: none)")
	densityMax := flag.Int("density-max", 100, "most control planes the density benchmark starts")
	densityReserve := flag.Int64("density-reserve-mib", 1024, "memory the density benchmark leaves available (MiB)")
	settle := flag.Duration("settle", 10*time.Second, "idle time before memory is read")
	bin := flag.String("bin", os.Getenv("HCP_BIN"), "directory of the hcp binaries (default ./bin)")
	flag.Parse()
	if *densityMax < 1 || *densityReserve < 0 {
		fmt.Fprintf(os.Stderr, "bench: -density-max %d must be at least 1 and -density-reserve-mib %d at least 0\n", *densityMax, *densityReserve)
		os.Exit(2)
	}
	if *agentPoll < time.Second {
		fmt.Fprintf(os.Stderr, "bench: -agent-poll %s must be at least 1s (hcp up's --agent-poll-interval)\n", *agentPoll)
		os.Exit(2)
	}
	if *realNodeCount < 1 || *podCount < 1 {
		fmt.Fprintf(os.Stderr, "bench: -real-nodes %d and -pods %d must be at least 1\n", *realNodeCount, *podCount)
		os.Exit(2)
	}
	if *nodeCount < 1 || *bindCount < 0 || *k8sClusters < 1 {
		fmt.Fprintf(os.Stderr, "bench: -nodes %d and -k8s-clusters %d must be at least 1, -bind %d at least 0\n", *nodeCount, *k8sClusters, *bindCount)
		os.Exit(2)
	}
	if *bin == "" {
		*bin = "bin"
	}
	*bin, _ = filepath.Abs(*bin)
	selected := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		selected[strings.TrimSpace(s)] = true
	}
	if selected["density"] {
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		var floor sample
		if err == nil {
			floor, err = bareControlPlane(rel, *settle, 1, 1)
		}
		if err == nil {
			err = density(*bin, rel, *densityMax, *densityReserve<<20, floor)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["management"] || selected["hosted"] {
		if err := run(*bin, *runs, *clusters, *settle, selected["hosted"]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["upgrade"] {
		if err := upgrades(*bin); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["backup"] {
		if err := backups(*bin, *backupObjects); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["agents"] {
		if err := agents(*bin, *agentCount, 50); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["kubernetes"] {
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		if err == nil {
			err = kubernetesRuntime(*bin, rel, *k8sClusters, *k8sAgents, *settle)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["managementdensity"] {
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		if err == nil {
			err = managementNodeDensity(*bin, rel, *densityMax, *densityReserve<<20, *settle)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["managementnodes"] {
		if *mgmtClusters < 1 {
			fmt.Fprintf(os.Stderr, "bench: -management-node-clusters %d must be at least 1\n", *mgmtClusters)
			os.Exit(2)
		}
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		if err == nil {
			err = managementNodes(*bin, rel, *mgmtClusters, *settle)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["realnodes"] {
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		if err == nil {
			err = realNodes(*bin, rel, *realNodeCount, *podCount, *settle)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if selected["nodes"] {
		rel, err := release.Store{Dir: filepath.Join(*bin, "release")}.Default()
		if err == nil {
			err = nodePools(*bin, rel, *nodeCount, *bindCount, *agentPoll)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func run(bin string, runs, clusters int, settle time.Duration, hosted bool) error {
	rel, err := release.Store{Dir: filepath.Join(bin, "release")}.Default()
	if err != nil {
		return err
	}
	fmt.Printf("# hcp benchmarks\nmachine: %d CPUs, %s; release %s; %d runs, median; memory read after %s idle\n\n",
		numCPU(), memTotal(), rel.Name, runs, settle)

	var bare, up []sample
	for i := range runs {
		s, err := bareControlPlane(rel, settle, 1, 1)
		if err != nil {
			return fmt.Errorf("baseline run %d: %w", i+1, err)
		}
		bare = append(bare, s)
		s, err = hcpUp(bin, settle)
		if err != nil {
			return fmt.Errorf("hcp up run %d: %w", i+1, err)
		}
		up = append(up, s)
	}
	b, u := median(bare), median(up)
	defer func() {
		fmt.Printf("management plane (hcp up) vs bare etcd+kube-apiserver: ready %.2fx (%.2fs/%.2fs), memory %.2fx (%d/%d MiB)\n",
			ratio(u.ready.Seconds(), b.ready.Seconds()), u.ready.Seconds(), b.ready.Seconds(),
			ratio(float64(u.rss), float64(b.rss)), u.rss>>20, b.rss>>20)
	}()
	fmt.Printf("| management plane | ready | resident memory |\n|---|---|---|\n")
	fmt.Printf("| baseline: bare etcd + kube-apiserver | %.2fs | %d MiB |\n", b.ready.Seconds(), b.rss>>20)
	fmt.Printf("| hcp up to its ready line (API server ready, CRDs served, operator leading; memory with kube-controller-manager) | %.2fs | %d MiB |\n\n", u.ready.Seconds(), u.rss>>20)
	fmt.Printf("every run, in order (ready): baseline %s; hcp up %s; median of each run's ratio %.2fx\n\n", readyTimes(bare), readyTimes(up), pairedRatio(up, bare))
	printSteps(up, u.ready)
	if !hosted {
		return nil
	}
	return hostedClusters(bin, rel, clusters, settle, b)
}

// bareControlPlane starts etcd and kube-apiserver with the fewest flags that
// give a TLS API server, and measures from the first exec to /readyz answering
// 200. members etcd processes form one etcd cluster and apiservers API servers
// use it (1 and 1: the SingleReplica floor; 3 and 1, 3 and 3: HighlyAvailable);
// all start at once and the time is until every API server is ready.
func bareControlPlane(rel *release.Release, settle time.Duration, members, apiservers int) (sample, error) {
	b, err := newBarePair(members, apiservers)
	if err != nil {
		return sample{}, err
	}
	defer b.remove()
	start := time.Now()
	if err := b.start(rel); err != nil {
		return sample{}, err
	}
	if err := b.waitReady(); err != nil {
		return sample{}, err
	}
	ready := time.Since(start)
	time.Sleep(settle)
	var mem int64
	for _, c := range b.procs {
		mem += treeRSS(c.Process.Pid)
	}
	stopStart := time.Now()
	b.stop()
	return sample{ready: ready, rss: mem, stop: time.Since(stopStart)}, nil
}

// barePair is etcd and kube-apiserver started by hand: members etcd
// members and apiservers API servers on loopback ports, with their PKI and
// data in a temporary directory.
type barePair struct {
	dir                         string
	clientURLs, peerURLs, peers []string
	apiPorts                    []int
	check                       *probe.Client
	procs                       []*exec.Cmd
}

func newBarePair(members, apiservers int) (*barePair, error) {
	dir, err := os.MkdirTemp("", "bench-bare-")
	if err != nil {
		return nil, err
	}
	b := &barePair{dir: dir}
	fail := func(err error) (*barePair, error) {
		b.remove()
		return nil, err
	}
	ca, err := pki.NewCA("bench-ca")
	if err != nil {
		return fail(err)
	}
	local := []net.IP{net.ParseIP("127.0.0.1")}
	serving, err := ca.Issue(pki.CertSpec{CommonName: "localhost", IPs: local, DNSNames: []string{"localhost"}, Usage: pki.ServerAuth | pki.ClientAuth})
	if err != nil {
		return fail(err)
	}
	admin, err := ca.Issue(pki.CertSpec{CommonName: "admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth})
	if err != nil {
		return fail(err)
	}
	saKey, saPub, err := pki.NewSigningKey()
	if err != nil {
		return fail(err)
	}
	files := map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM, "sa.key": saKey, "sa.pub": saPub}
	for name, c := range files {
		if err := os.WriteFile(filepath.Join(dir, name), c, 0o600); err != nil {
			return fail(err)
		}
	}
	for i := range members {
		b.clientURLs = append(b.clientURLs, "https://127.0.0.1:"+strconv.Itoa(freePort()))
		b.peerURLs = append(b.peerURLs, "https://127.0.0.1:"+strconv.Itoa(freePort()))
		b.peers = append(b.peers, fmt.Sprintf("m%d=%s", i, b.peerURLs[i]))
	}
	for range apiservers {
		b.apiPorts = append(b.apiPorts, freePort())
	}
	roots, _ := pki.CertPool(ca.CertPEM)
	cert, _ := tls.X509KeyPair(admin.CertPEM, admin.KeyPEM)
	b.check = probe.New(roots, &cert)
	return b, nil
}

// start runs the release's etcd members and API servers (on the data of an
// earlier start, if there was one).
func (b *barePair) start(rel *release.Release) error {
	p := func(n string) string { return filepath.Join(b.dir, n) }
	for i := range b.clientURLs {
		d := p(fmt.Sprintf("etcd-%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		etcd, err := spawn(d, rel.Binary(release.Etcd), "--data-dir="+filepath.Join(d, "data"), fmt.Sprintf("--name=m%d", i),
			"--listen-client-urls="+b.clientURLs[i], "--advertise-client-urls="+b.clientURLs[i],
			"--listen-peer-urls="+b.peerURLs[i], "--initial-advertise-peer-urls="+b.peerURLs[i], "--initial-cluster="+strings.Join(b.peers, ","),
			"--cert-file="+p("tls.crt"), "--key-file="+p("tls.key"), "--trusted-ca-file="+p("ca.crt"), "--client-cert-auth",
			"--peer-cert-file="+p("tls.crt"), "--peer-key-file="+p("tls.key"), "--peer-trusted-ca-file="+p("ca.crt"))
		if err != nil {
			return err
		}
		b.procs = append(b.procs, etcd)
	}
	for i, port := range b.apiPorts {
		d := p(fmt.Sprintf("kube-apiserver-%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		api, err := spawn(d, rel.Binary(release.KubeAPIServer), "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
			"--etcd-servers="+strings.Join(b.clientURLs, ","), "--etcd-cafile="+p("ca.crt"), "--etcd-certfile="+p("tls.crt"), "--etcd-keyfile="+p("tls.key"),
			"--tls-cert-file="+p("tls.crt"), "--tls-private-key-file="+p("tls.key"), "--client-ca-file="+p("ca.crt"),
			"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p("sa.pub"),
			"--service-account-signing-key-file="+p("sa.key"), "--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=RBAC", "--endpoint-reconciler-type=none", "--cert-dir="+filepath.Join(d, "certs"))
		if err != nil {
			return err
		}
		b.procs = append(b.procs, api)
	}
	return nil
}

// waitReady waits until every API server's /readyz answers.
func (b *barePair) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, port := range b.apiPorts {
		if err := probe.Until(ctx, 20*time.Millisecond, "kube-apiserver", func(ctx context.Context) error {
			return b.check.Check(ctx, "https://127.0.0.1:"+strconv.Itoa(port)+"/readyz")
		}); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the processes, API servers first.
func (b *barePair) stop() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		stopProcess(b.procs[i])
	}
	b.procs = nil
}

func (b *barePair) remove() {
	b.stop()
	_ = os.RemoveAll(b.dir)
}

// hcpUp runs hcp up and measures from exec to its "ready" line.
func hcpUp(bin string, settle time.Duration) (sample, error) {
	dir, err := os.MkdirTemp("", "bench-up-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	cmd := exec.Command(filepath.Join(bin, "hcp"), "up", "--data-dir", dir, "--port", strconv.Itoa(freePort()))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer stopProcess(cmd)
	sc := bufio.NewScanner(out)
	var lines []string
	var steps []step
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := stepLine.FindStringSubmatch(sc.Text()); m != nil {
			secs, _ := strconv.ParseFloat(m[2], 64)
			steps = append(steps, step{name: m[1], at: time.Duration(secs * float64(time.Second))})
		}
		if strings.HasPrefix(sc.Text(), "The management plane is ready") {
			ready := time.Since(start)
			go func() {
				for sc.Scan() {
				}
			}()
			time.Sleep(settle)
			return sample{ready: ready, rss: treeRSS(cmd.Process.Pid), steps: steps}, nil
		}
	}
	return sample{}, fmt.Errorf("hcp up ended before it was ready:\n%s", strings.Join(lines, "\n"))
}

func spawn(dir, path string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(dir, filepath.Base(path)+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func freePort() int {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		panic(err)
	}
	return port
}

// printSteps prints when each of hcp up's steps began and how long it took
// until the next began (the last: until ready), medians over the runs.
func printSteps(runs []sample, ready time.Duration) {
	at := map[string][]time.Duration{}
	var order []string
	for _, r := range runs {
		for _, s := range r.steps {
			if _, seen := at[s.name]; !seen {
				order = append(order, s.name)
			}
			at[s.name] = append(at[s.name], s.at)
		}
	}
	med := func(d []time.Duration) time.Duration {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	sort.SliceStable(order, func(i, j int) bool { return med(at[order[i]]) < med(at[order[j]]) })
	fmt.Printf("| hcp up step (as it prints them) | begins | until the next |\n|---|---|---|\n")
	for i, name := range order {
		next := ready
		if i+1 < len(order) {
			next = med(at[order[i+1]])
		}
		fmt.Printf("| %s | %.1fs | %.1fs |\n", name, med(at[name]).Seconds(), (next - med(at[name])).Seconds())
	}
	fmt.Printf("| ready | %.1fs | |\n\n", ready.Seconds())
}

// readyTimes lists the samples' ready times, in the order they were taken.
func readyTimes(s []sample) string {
	var out []string
	for _, x := range s {
		out = append(out, fmt.Sprintf("%.2fs", x.ready.Seconds()))
	}
	return strings.Join(out, " ")
}

// pairedRatio is the median over runs of a's ready time over b's in the same
// run: less swayed than the ratio of medians by a machine whose speed drifts.
func pairedRatio(a, b []sample) float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		r = append(r, ratio(a[i].ready.Seconds(), b[i].ready.Seconds()))
	}
	if len(r) == 0 {
		return 0
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

// median is each figure's median over the samples (each taken on its own).
func median(s []sample) sample {
	r := make([]time.Duration, len(s))
	st := make([]time.Duration, len(s))
	m := make([]int64, len(s))
	for i, x := range s {
		r[i], st[i], m[i] = x.ready, x.stop, x.rss
	}
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	sort.Slice(st, func(i, j int) bool { return st[i] < st[j] })
	sort.Slice(m, func(i, j int) bool { return m[i] < m[j] })
	return sample{ready: r[len(r)/2], stop: st[len(st)/2], rss: m[len(m)/2]}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown memory"
}
