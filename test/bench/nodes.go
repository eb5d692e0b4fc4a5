package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/release"
	hcpup "github.com/hcp-dev/hcp/internal/up"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// nodePools measures NodePool scale-up: n real hcp-agent hosts (each
// installing into its own root and joining as a simulated node, sharing this
// machine's network; realNodes measures real ones) going from replicas 0
// to n nodes Ready, against the baseline of the same hosts' discovery (start
// to all known-unbound). Then binding throughput: bindN simulated agents
// bound by a NodePool scaled from 0 to bindN, against the baseline of the raw
// API writes a binding needs (one Agent update each, same concurrency).
func nodePools(bin string, rel *release.Release, n, bindN int, poll time.Duration) error {
	setting := fmt.Sprintf("agent poll interval %s", poll)
	if poll == hcpup.Defaults().AgentPollInterval {
		setting += ", hcp up's default"
	}
	up, err := startUp(bin, "--agent-poll-interval="+poll.String(), "--infra-port", strconv.Itoa(freePort()))
	if err != nil {
		return err
	}
	defer up.stop()
	ctx := context.Background()
	hcp := func(args ...string) (string, error) { return up.hcp(bin, args...) }
	pull := filepath.Join(up.dir, "pull-secret.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{}}`), 0o600); err != nil {
		return err
	}
	if _, err := hcp("create", "infraenv", "--name", "hosts", "--namespace", "clusters-example", "--pull-secret", pull, "--auto-approve"); err != nil {
		return err
	}
	script, err := scriptURL(ctx, up.client, "clusters-example", "hosts")
	if err != nil {
		return err
	}
	start := time.Now()
	var hosts []*exec.Cmd
	defer func() {
		for _, h := range hosts {
			_ = syscall.Kill(-h.Process.Pid, syscall.SIGKILL)
			_, _ = h.Process.Wait()
		}
	}()
	for i := range n {
		dir := filepath.Join(up.dir, fmt.Sprintf("host-%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		cmd := exec.Command("sh", "-c", fmt.Sprintf("curl -fsSk '%s' | sh -s -- --hostname bench-%d --root %s/root --kubelet-port 0 --simulated-node", script, i, dir))
		cmd.Env = append(os.Environ(), "HCP_AGENT_DIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		log, err := os.Create(filepath.Join(dir, "hcp-agent.log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return err
		}
		hosts = append(hosts, cmd)
	}
	if err := waitFor(3*time.Minute, fmt.Sprintf("%d hosts known-unbound", n), func() (bool, error) {
		return countAgents(ctx, up.client, "clusters-example", "known-unbound") == n, nil
	}); err != nil {
		return err
	}
	discovery := time.Since(start)
	if _, err := hcp("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "0", "--wait"); err != nil {
		return err
	}
	start = time.Now()
	if err := scale(ctx, up.client, "clusters", "example", n); err != nil {
		return err
	}
	if err := waitFor(10*time.Minute, fmt.Sprintf("NodePool with %d nodes Ready", n), func() (bool, error) {
		return nodePoolReady(ctx, up.client, "clusters", "example", n), nil
	}); err != nil {
		return err
	}
	scaleUp := time.Since(start)
	fmt.Printf("| NodePool scale-up, %d hosts as simulated nodes (%s) | seconds |\n|---|---|\n| baseline: the hosts' discovery (start → all known-unbound) | %.1f |\n| replicas 0 → %d: agents bound, installed, nodes Ready, NodePool Ready | %.1f |\n\n",
		n, setting, discovery.Seconds(), n, scaleUp.Seconds())
	fmt.Printf("NodePool 0 → %d simulated nodes Ready (%s): %.1fs (%.2fx the %.1fs the same hosts take to be discovered)\n\n", n, setting, scaleUp.Seconds(), ratio(scaleUp.Seconds(), discovery.Seconds()), discovery.Seconds())
	if bindN > 0 {
		return binding(ctx, up, hcp, pull, rel, bindN)
	}
	return nil
}

// binding registers bindN simulated agents and measures how fast a NodePool
// scaled to bindN binds them.
func binding(ctx context.Context, up *upInstance, hcp func(...string) (string, error), pull string, rel *release.Release, n int) error {
	const ns = "bench-bind"
	if _, err := hcp("create", "infraenv", "--name", "sim", "--namespace", ns, "--pull-secret", pull, "--auto-approve"); err != nil {
		return err
	}
	script, err := scriptURL(ctx, up.client, ns, "sim")
	if err != nil {
		return err
	}
	ie := &agentv1.InfraEnv{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sim"}, ie); err != nil {
		return err
	}
	call := agentCaller(script, 50)
	hostPath := func(p, id string) string {
		return strings.Replace(strings.Replace(p, "{infra_env_id}", string(ie.UID), 1), "{host_id}", id, 1)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = string(uuid.NewUUID())
	}
	// Hosts retry, as hcp-agent does (a host just registered may not be
	// known to the service's cache for a moment).
	retry := func(f func() error) error {
		var err error
		for range 50 {
			if err = f(); err == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err
	}
	measure(n, 50, func(i int) error {
		return retry(func() error {
			st, err := call(http.MethodPost, hostPath(agentapi.RegisterPath, ids[i]), agentapi.HostCreateParams{HostID: ids[i]})
			if st == 200 {
				return nil
			}
			return check(st, err, 201)
		})
	})
	measure(n, 50, func(i int) error {
		inv, _ := json.Marshal(agentv1.HostInventory{Hostname: fmt.Sprintf("sim-%d", i), Cpu: agentv1.HostCPU{Count: 4, Architecture: "amd64"},
			Memory: agentv1.HostMemory{PhysicalBytes: 16 << 30}, Disks: []agentv1.HostDisk{{Name: "vda", SizeBytes: 200e9, InstallationEligibility: agentv1.HostInstallationEligibility{Eligible: true}}}})
		return retry(func() error {
			st, err := call(http.MethodPost, hostPath(agentapi.InstructionsPath, ids[i]), agentapi.StepReply{StepType: agentapi.StepInventory, StepID: "inventory", Output: string(inv)})
			return check(st, err, 204)
		})
	})
	// The simulated hosts keep checking in, as discovery agents do.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		for {
			measure(n, 20, func(i int) error {
				st, err := call(http.MethodGet, hostPath(agentapi.InstructionsPath, ids[i]), nil)
				return check(st, err, 200)
			})
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Second):
			}
		}
	})
	known := 0
	if err := waitFor(3*time.Minute, fmt.Sprintf("%d simulated agents known-unbound", n), func() (bool, error) {
		known = countAgents(ctx, up.client, ns, "known-unbound")
		return known == n, nil
	}); err != nil {
		return fmt.Errorf("%w (%d are)", err, known)
	}
	// Baseline: the API writes binding needs, one Agent update each.
	list := &agentv1.AgentList{}
	if err := up.client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return err
	}
	floor := measure(n, 8, func(i int) error {
		a := &list.Items[i]
		patch := client.MergeFrom(a.DeepCopy())
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations["bench.hcp.dev/touched"] = "true"
		return up.client.Patch(ctx, a, patch)
	})
	if _, err := hcp("create", "cluster", "agent", "--name", "bind", "--pull-secret", pull, "--agent-namespace", ns,
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--node-pool-replicas", "0", "--wait"); err != nil {
		return err
	}
	start := time.Now()
	if err := scale(ctx, up.client, "clusters", "bind", n); err != nil {
		return err
	}
	// Counted from metadata only (the reservation label), so watching does
	// not load the API server that does the work.
	bound := 0
	if err := waitFor(10*time.Minute, fmt.Sprintf("%d agents bound", n), func() (bool, error) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(agentv1.GroupVersion.WithKind("AgentList"))
		if err := up.client.List(ctx, list, client.InNamespace(ns), client.HasLabels{capiproviderv1.AgentMachineRefLabel}); err != nil {
			return false, nil
		}
		bound = len(list.Items)
		return bound == n, nil
	}); err != nil {
		return fmt.Errorf("%w (%d bound)", err, bound)
	}
	took := time.Since(start)
	rate := float64(n) / took.Seconds()
	// How fast Cluster API's MachineSet made the Machines: binding cannot
	// run ahead of it.
	machines := &clusterv1.MachineList{}
	if err := up.client.List(ctx, machines, client.MatchingLabels{hyperv1.NodePoolLabel: "bind"}); err != nil {
		return err
	}
	var first, last time.Time
	for _, m := range machines.Items {
		t := m.CreationTimestamp.Time
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	created := float64(len(machines.Items)) / max(last.Sub(first).Seconds()+1, 1)
	fmt.Printf("| binding, %d simulated agents | per second |\n|---|---|\n| baseline: one Agent update each through the API, 8 in flight | %.0f |\n| Cluster API MachineSet creating the %d Machines | %.1f |\n| NodePool 0 → %d: Machines, AgentMachines, agents bound | %.1f (all in %.1fs) |\n\n",
		n, floor.rate, len(machines.Items), created, n, rate, took.Seconds())
	fmt.Printf("binding %d agents: %.1f/s (%.2fx the %.0f/s of the raw Agent updates; Cluster API created the Machines at %.1f/s)\n", n, rate, ratio(rate, floor.rate), floor.rate, created)
	return nil
}

func scriptURL(ctx context.Context, c client.Client, ns, name string) (string, error) {
	var script string
	err := waitFor(time.Minute, "discovery artifacts of "+name, func() (bool, error) {
		ie := &agentv1.InfraEnv{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ie); err == nil {
			script = ie.Status.BootArtifacts.ScriptURL
		}
		return script != "", nil
	})
	return script, err
}

func countAgents(ctx context.Context, c client.Client, ns, state string) int {
	list := &agentv1.AgentList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return -1
	}
	n := 0
	for _, a := range list.Items {
		if a.Status.DebugInfo.State == state {
			n++
		}
	}
	return n
}

func scale(ctx context.Context, c client.Client, ns, name string, replicas int) error {
	np := &hyperv1.NodePool{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, np); err != nil {
		return err
	}
	patch := client.MergeFrom(np.DeepCopy())
	r := int32(replicas)
	np.Spec.Replicas = &r
	return c.Patch(ctx, np, patch)
}

func nodePoolReady(ctx context.Context, c client.Client, ns, name string, n int) bool {
	np := &hyperv1.NodePool{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, np); err != nil {
		return false
	}
	r := meta.FindStatusCondition(np.Status.Conditions, "Ready")
	return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == np.Generation && np.Status.Replicas == int32(n)
}

func waitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
