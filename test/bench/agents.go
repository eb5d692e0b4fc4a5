package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
)

// agents simulates n discovery agents against the infrastructure service of
// hcp up: registrations, then polls with one inventory reply each, with
// `workers` requests in flight. The baseline is the same service's /healthz at
// the same concurrency: TLS and HTTP with no work behind them.
func agents(bin string, n, workers int) error {
	up, err := startUp(bin, "--infra-port", strconv.Itoa(freePort()))
	if err != nil {
		return err
	}
	defer up.stop()
	rssBefore := rss(up.cmd.Process.Pid)
	run, err := simulateAgents(context.Background(), up.client, "bench-agents", n, workers)
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	rssAfter := rss(up.cmd.Process.Pid)
	fmt.Printf("| infrastructure service, %d simulated agents, %d in flight | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|\n", n, workers)
	for _, r := range []struct {
		name string
		s    result
	}{{"baseline: GET /healthz", run.healthz}, {"register host", run.regs}, {"inventory step reply", run.replies}, {"poll for steps", run.polls}} {
		fmt.Printf("| %s | %.0f | %s | %s | %d |\n", r.name, r.s.rate, r.s.p50.Round(time.Microsecond*100), r.s.p99.Round(time.Microsecond*100), r.s.errors)
	}
	fmt.Printf("\nAgents known-unbound after the run: %d of %d (%.1fs after the last request). hcp up process (operator and service, without the management plane's own etcd and kube-apiserver): %d MiB before, %d MiB with %d Agents.\n\n",
		run.known, n, run.caughtUp.Seconds(), rssBefore>>20, rssAfter>>20, n)
	fmt.Printf("infrastructure service with %d agents: registrations %.0f/s (%.2fx the /healthz baseline's %.0f/s), polls %.0f/s (%.2fx), poll p99 %s; operator memory +%d MiB\n",
		n, run.regs.rate, ratio(run.regs.rate, run.healthz.rate), run.healthz.rate, run.polls.rate, ratio(run.polls.rate, run.healthz.rate), run.polls.p99.Round(time.Millisecond), (rssAfter-rssBefore)>>20)
	return nil
}

// agentRun is what simulateAgents measured.
type agentRun struct {
	healthz, regs, replies, polls result
	known                         int
	caughtUp                      time.Duration
}

// simulateAgents makes an auto-approving InfraEnv in namespace ns and has n
// simulated hosts register through the operator's infrastructure service,
// report an inventory and poll, workers at a time, then waits until the
// Agent controller has made every one known-unbound.
func simulateAgents(ctx context.Context, c client.Client, ns string, n, workers int) (agentRun, error) {
	var run agentRun
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return run, err
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull-secret"},
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}); err != nil {
		return run, err
	}
	ie := &agentv1.InfraEnv{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench"},
		Spec: agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "pull-secret"}, AgentApproval: &agentv1.AgentApproval{AutoApprove: true}}}
	if err := c.Create(ctx, ie); err != nil {
		return run, err
	}
	var script string
	for deadline := time.Now().Add(time.Minute); script == ""; {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ie), ie); err == nil {
			script = ie.Status.BootArtifacts.ScriptURL
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("no discovery artifacts")
		}
		time.Sleep(100 * time.Millisecond)
	}
	call := agentCaller(script, workers)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = string(uuid.NewUUID())
	}
	hostPath := func(p, id string) string {
		return strings.Replace(strings.Replace(p, "{infra_env_id}", string(ie.UID), 1), "{host_id}", id, 1)
	}
	inventory, _ := json.Marshal(agentv1.HostInventory{Hostname: "sim", ReportTime: &metav1.Time{Time: time.Now()},
		Cpu: agentv1.HostCPU{Count: 4, Architecture: "amd64"}, Memory: agentv1.HostMemory{PhysicalBytes: 16 << 30},
		Disks: []agentv1.HostDisk{{Name: "vda", SizeBytes: 200e9, InstallationEligibility: agentv1.HostInstallationEligibility{Eligible: true}}}})

	run.healthz = measure(n, workers, func(int) error {
		st, err := call(http.MethodGet, "/healthz", nil)
		return check(st, err, 200)
	})
	run.regs = measure(n, workers, func(i int) error {
		st, err := call(http.MethodPost, hostPath(agentapi.RegisterPath, ids[i]), agentapi.HostCreateParams{HostID: ids[i]})
		return check(st, err, 201)
	})
	run.replies = measure(n, workers, func(i int) error {
		inv := strings.Replace(string(inventory), `"hostname":"sim"`, fmt.Sprintf(`"hostname":"sim-%d"`, i), 1)
		st, err := call(http.MethodPost, hostPath(agentapi.InstructionsPath, ids[i]),
			agentapi.StepReply{StepType: agentapi.StepInventory, StepID: "inventory", Output: inv})
		return check(st, err, 204)
	})
	run.polls = measure(3*n, workers, func(i int) error {
		st, err := call(http.MethodGet, hostPath(agentapi.InstructionsPath, ids[i%n]), nil)
		return check(st, err, 200)
	})
	// Wait until the controller has caught up with every Agent.
	settled := time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		list := &agentv1.AgentList{}
		_ = c.List(ctx, list, client.InNamespace(ns))
		run.known = 0
		for _, a := range list.Items {
			if a.Status.DebugInfo.State == "known-unbound" {
				run.known++
			}
		}
		if run.known == n {
			break
		}
	}
	run.caughtUp = time.Since(settled)
	return run, nil
}

type result struct {
	rate     float64
	p50, p99 time.Duration
	errors   int
}

func check(status int, err error, want int) error {
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("status %d, want %d", status, want)
	}
	return nil
}

// measure calls f(0..n-1) with `workers` calls in flight and measures each.
func measure(n, workers int, f func(i int) error) result {
	lat := make([]time.Duration, n)
	var errs int
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				t := time.Now()
				err := f(i)
				lat[i] = time.Since(t)
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return result{rate: float64(n) / total.Seconds(), p50: lat[n/2], p99: lat[n*99/100], errors: errs}
}

// agentCaller returns a function that sends agent API requests (with the
// InfraEnv token of the discovery script's URL) to the service, up to
// `workers` connections kept open, and answers the status code.
func agentCaller(script string, workers int) func(method, path string, body any) (int, error) {
	u, _ := url.Parse(script)
	token, base := u.Query().Get("api_key"), u.Scheme+"://"+u.Host
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: workers}}
	return func(method, path string, body any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set(agentapi.SecretKeyHeader, token)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
}
