package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostedCluster renders a HostedCluster in namespace clusters whose API server is
// published on 127.0.0.1, so its admin kubeconfig works on this machine.
func hostedCluster(name, policy, storageClass, releaseImage string) string {
	return fmt.Sprintf(`apiVersion: hypershift.openshift.io/v1beta1
kind: HostedCluster
metadata:
  name: %s
  namespace: clusters
spec:
  release:
    image: %s
  pullSecret:
    name: pull-secret
  controllerAvailabilityPolicy: %s
  dns:
    baseDomain: krnl.es
  etcd:
    managementType: Managed
    managed:
      storage:
        type: PersistentVolume
        persistentVolume:
          storageClassName: %s
  networking:
    clusterNetwork:
    - cidr: 10.132.0.0/14
    serviceNetwork:
    - cidr: 172.31.0.0/16
  platform:
    type: Agent
    agent:
      agentNamespace: clusters
  services:
  - service: APIServer
    servicePublishingStrategy:
      type: NodePort
      nodePort:
        address: 127.0.0.1
  - service: Konnectivity
    servicePublishingStrategy:
      type: NodePort
      nodePort:
        address: 127.0.0.1
`, name, releaseImage, policy, storageClass)
}

// prepareClusters creates the clusters namespace and its pull secret.
func prepareClusters(up *upProcess) {
	up.mustKubectl("", "create", "namespace", "clusters")
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "pull-secret", `--from-literal=.dockerconfigjson={"auths":{}}`)
}

func (u *upProcess) condition(kind, ns, name, cond string) string {
	out, _ := u.kubectl("", "-n", ns, "get", kind, name, "-o", fmt.Sprintf(`jsonpath={.status.conditions[?(@.type=="%s")].status}/{.status.conditions[?(@.type=="%s")].message}`, cond, cond))
	return out
}

// restarts is the restart count the HostedControlPlane of cluster name (in
// namespace clusters) reports for the component whose name starts with comp
// (process names are cut to 15 characters).
func (u *upProcess) restarts(name, comp string) int {
	out, _ := u.kubectl("", "-n", "clusters-"+name, "get", "hcp", name, "-o",
		`jsonpath={range .status.components[*]}{.name}={.restarts}{"\n"}{end}`)
	for _, line := range strings.Split(out, "\n") {
		if c, n, ok := strings.Cut(line, "="); ok && strings.HasPrefix(c, comp) {
			v, _ := strconv.Atoi(n)
			return v
		}
	}
	return 0
}

func (u *upProcess) waitAvailable(t *testing.T, name string) {
	t.Helper()
	eventually(t, 3*time.Minute, "HostedCluster "+name+" Available", func() error {
		if c := u.condition("hc", "clusters", name, "Available"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("Available=%q", c)
		}
		return nil
	})
}

// adminKubeconfig extracts <name>-admin-kubeconfig as the documentation shows.
func (u *upProcess) adminKubeconfig(t *testing.T, name string) string {
	t.Helper()
	data := u.mustKubectl("", "-n", "clusters", "get", "secret", name+"-admin-kubeconfig", "-o", "jsonpath={.data.kubeconfig}")
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig-"+name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func guestKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := runKubectl(kubeconfig, "", args...)
	if err != nil {
		t.Fatalf("kubectl (hosted cluster) %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestHostedClusterLifecycle(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("example", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "example")

	kc := up.adminKubeconfig(t, "example")
	guestKubectl(t, kc, "get", "ns")
	guestKubectl(t, kc, "create", "configmap", "hello", "--from-literal=a=b")
	if got := guestKubectl(t, kc, "get", "configmap", "hello", "-o", "jsonpath={.data.a}"); got != "b" {
		t.Errorf("configmap in the hosted cluster: %q", got)
	}
	eventually(t, time.Minute, "cluster operators Available", func() error {
		out, err := runKubectl(kc, "", "get", "clusteroperators", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Available")].status} {end}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "konnectivity-server"} {
			if !strings.Contains(out, c+"=True") {
				return fmt.Errorf("%s not Available: %s", c, out)
			}
		}
		return nil
	})
	if out := guestKubectl(t, kc, "get", "clusterversion", "version", "-o", "jsonpath={.status.desired.version}"); out != rel.Name {
		t.Errorf("ClusterVersion reports %q, want %q", out, rel.Name)
	}
	hcp := up.mustKubectl("", "-n", "clusters-example", "get", "hcp", "example", "-o", "yaml")
	for _, want := range []string{"name: kube-apiserver", "readyReplicas: 1", "type: EtcdAvailable", "kubeConfig:"} {
		if !strings.Contains(hcp, want) {
			t.Errorf("HostedControlPlane status lacks %q:\n%s", want, hcp)
		}
	}
	if out := up.mustKubectl("", "-n", "clusters", "get", "hc", "example"); !strings.Contains(out, "example-admin-kubeconfig") || !strings.Contains(out, "Completed") {
		t.Errorf("kubectl get hc:\n%s", out)
	}

	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-example")
	if pids := componentProcesses(cpDir); len(pids) != 5 {
		t.Errorf("SingleReplica control plane runs %d processes, want 5", len(pids))
	}
	port := up.mustKubectl("", "-n", "clusters", "get", "hc", "example", "-o", "jsonpath={.status.controlPlaneEndpoint.port}")
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "example", "--timeout=2m")
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("the published API server port %s still accepts connections after delete", port)
	}
	if pids := processesUsing(cpDir); len(pids) != 0 {
		t.Errorf("processes left after delete: %v", pids)
	}
	// Deleting returns once the control plane is gone; its namespace finishes
	// terminating in the background. The same cluster created again at once
	// waits for that and starts fresh: nothing of the old one's data.
	up.mustKubectl(hostedCluster("example", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "example")
	kc = up.adminKubeconfig(t, "example")
	if out, err := runKubectl(kc, "", "get", "configmap", "hello", "--ignore-not-found", "-o", "name"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the cluster created again sees the old one's data: %q %v", out, err)
	}
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "example", "--timeout=2m")
	eventually(t, time.Minute, "control plane namespace to go", func() error {
		if out, err := up.kubectl("", "get", "ns", "clusters-example"); err == nil {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
	for _, dir := range []string{cpDir, filepath.Join(dataDir, "volumes", "local", "clusters-example")} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left after delete (%v)", dir, err)
		}
	}
	if out, err := up.kubectl("", "-n", "clusters", "get", "secret", "example-admin-kubeconfig"); err == nil {
		t.Errorf("admin kubeconfig left after delete: %s", out)
	}
}

// pidOf returns the pid of the process whose command line has all the parts.
func pidOf(t *testing.T, parts ...string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(string(b), p)
		}
		if ok {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			return pid
		}
	}
	return 0
}

func TestHighlyAvailableSurvivesLosingAMember(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("ha", "HighlyAvailable", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "ha")
	// Available comes with the first API server; the other replicas follow.
	allReady := func() error {
		for _, typ := range []string{"Progressing", "Degraded"} {
			if c := up.condition("hcp", "clusters-ha", "ha", typ); !strings.HasPrefix(c, "False/") {
				return fmt.Errorf("%s=%q", typ, c)
			}
		}
		return nil
	}
	eventually(t, 2*time.Minute, "every replica ready", allReady)
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-ha")
	pids := componentPids(cpDir)
	if len(pids["etcd"]) != 3 || len(pids["kube-apiserver"]) != 3 {
		t.Fatalf("HighlyAvailable runs %v, want 3 etcd and 3 kube-apiserver", pids)
	}
	members := up.mustKubectl("", "-n", "clusters-ha", "get", "hcp", "ha", "-o", `jsonpath={.status.components[?(@.name=="etcd")].readyReplicas}`)
	if members != "3" {
		t.Fatalf("etcd ready members: %q", members)
	}

	kc := up.adminKubeconfig(t, "ha")
	etcd1 := pidOf(t, cpDir, "--name=etcd-1")
	kas0 := pidOf(t, cpDir, "kube-apiserver-0")
	if etcd1 == 0 || kas0 == 0 {
		t.Fatalf("etcd-1 pid %d, kube-apiserver-0 pid %d", etcd1, kas0)
	}
	_ = syscall.Kill(etcd1, syscall.SIGKILL)
	_ = syscall.Kill(kas0, syscall.SIGKILL)
	// Writes go on. A request in flight when the etcd leader dies may time out
	// (etcd says so); like any client, retry it.
	for i := range 10 {
		name := fmt.Sprintf("after-kill-%d", i)
		eventually(t, 20*time.Second, "write "+name, func() error {
			out, err := runKubectl(kc, "", "create", "configmap", name)
			if err != nil && !strings.Contains(out, "AlreadyExists") && !strings.Contains(out, "already exists") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	if out := guestKubectl(t, kc, "get", "configmaps", "-o", "name"); strings.Count(out, "configmap/after-kill-") != 10 {
		t.Errorf("writes after losing a member:\n%s", out)
	}
	eventually(t, 2*time.Minute, "killed replicas back and ready", func() error {
		e, k := pidOf(t, cpDir, "--name=etcd-1"), pidOf(t, cpDir, "kube-apiserver-0")
		if e == 0 || e == etcd1 || k == 0 || k == kas0 {
			return fmt.Errorf("etcd-1 pid %d (was %d), kube-apiserver-0 pid %d (was %d)", e, etcd1, k, kas0)
		}
		return allReady()
	})

	// Two of three etcd members gone (stopped): no quorum. The cluster says so,
	// and comes back with every write once they return.
	e1, e2 := pidOf(t, cpDir, "--name=etcd-1"), pidOf(t, cpDir, "--name=etcd-2")
	_ = syscall.Kill(e1, syscall.SIGSTOP)
	_ = syscall.Kill(e2, syscall.SIGSTOP)
	resumed := false
	resume := func() {
		if !resumed {
			_ = syscall.Kill(e1, syscall.SIGCONT)
			_ = syscall.Kill(e2, syscall.SIGCONT)
			resumed = true
		}
	}
	t.Cleanup(resume)
	eventually(t, 2*time.Minute, "the lost quorum reported", func() error {
		e := up.condition("hc", "clusters", "ha", "EtcdAvailable")
		d := up.condition("hc", "clusters", "ha", "Degraded")
		if !strings.HasPrefix(e, "False/") || !strings.Contains(e, "a quorum needs 2") || !strings.HasPrefix(d, "True/") || !strings.Contains(d, "etcd") {
			return fmt.Errorf("EtcdAvailable=%q Degraded=%q", e, d)
		}
		return nil
	})
	resume()
	eventually(t, 2*time.Minute, "quorum back", func() error {
		if c := up.condition("hc", "clusters", "ha", "Degraded"); !strings.HasPrefix(c, "False/") {
			return fmt.Errorf("Degraded=%q", c)
		}
		if out, err := runKubectl(kc, "", "create", "configmap", "after-quorum"); err != nil && !strings.Contains(out, "already exists") {
			return fmt.Errorf("write: %v %s", err, out)
		}
		return nil
	})
	if out := guestKubectl(t, kc, "get", "configmaps", "-o", "name"); strings.Count(out, "configmap/after-kill-") != 10 || !strings.Contains(out, "configmap/after-quorum") {
		t.Errorf("writes after the quorum came back:\n%s", out)
	}
}

func TestRestartKeepsClustersRunningWithoutDuplicates(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("example", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "example")
	kc := up.adminKubeconfig(t, "example")
	guestKubectl(t, kc, "create", "configmap", "before-restart")
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-example")
	before := componentProcesses(cpDir)
	if len(before) != 5 {
		t.Fatalf("%d control plane processes before the restart, want 5", len(before))
	}

	up.kill() // the operator crashes; the control plane keeps running
	if after := componentProcesses(cpDir); len(after) != 5 {
		t.Fatalf("control plane processes after the operator died: %v", after)
	}
	// ...and keeps serving through its published port while no operator runs.
	guestKubectl(t, kc, "create", "configmap", "while-the-operator-is-down")
	up = startUp(t, dataDir)
	if c := up.condition("hc", "clusters", "example", "Available"); !strings.HasPrefix(c, "True/") {
		t.Errorf("Available after restart: %q", c)
	}
	eventually(t, time.Minute, "the hosted API server to answer through the restarted operator", func() error {
		if out, err := runKubectl(kc, "", "get", "configmap", "before-restart"); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	after := componentProcesses(cpDir)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("processes changed across the restart: before %v, after %v", before, after)
	}
	if c := up.condition("hc", "clusters", "example", "Available"); !strings.HasPrefix(c, "True/") {
		t.Errorf("Available a while after restart: %q", c)
	}
	// Ctrl-C of hcp up stops everything, the published port included.
	port := up.mustKubectl("", "-n", "clusters", "get", "hc", "example", "-o", "jsonpath={.status.controlPlaneEndpoint.port}")
	up.stop()
	if pids := processesUsing(cpDir); len(pids) != 0 {
		t.Errorf("control plane processes left after Ctrl-C: %v", pids)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("the published port %s still accepts connections after Ctrl-C", port)
	}
}

func TestInvalidHostedClustersSayWhatToChange(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl("", "create", "namespace", "others")
	up.mustKubectl("", "-n", "others", "create", "secret", "generic", "pull-secret", `--from-literal=.dockerconfigjson={"auths":{}}`)
	up.mustKubectl(hostedCluster("taken", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "taken")

	cases := []struct {
		name, manifest, condition, want string
	}{
		{"nostorage", hostedCluster("nostorage", "SingleReplica", "fast-ssd", rel.Image), "ValidConfiguration", `StorageClass "fast-ssd" does not exist`},
		{"norelease", hostedCluster("norelease", "SingleReplica", "local", "quay.io/openshift-release-dev/ocp-release:4.99.0-x86_64"), "ValidReleaseImage", "release not found"},
		{"clusters", hostedCluster("clusters", "SingleReplica", "local", rel.Image), "ValidConfiguration", `metadata.name "clusters" is reserved`},
		{"taken", strings.Replace(hostedCluster("taken", "SingleReplica", "local", rel.Image), "namespace: clusters", "namespace: others", 1), "ValidConfiguration", `a HostedCluster named "taken" already exists in namespace "clusters"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := "clusters"
			if strings.Contains(tc.manifest, "namespace: others") {
				ns = "others"
			}
			up.mustKubectl(tc.manifest, "apply", "-f", "-")
			eventually(t, time.Minute, tc.condition+" False", func() error {
				c := up.condition("hc", ns, tc.name, tc.condition)
				if !strings.HasPrefix(c, "False/") || !strings.Contains(c, tc.want) {
					return fmt.Errorf("%s=%q, want False with %q", tc.condition, c, tc.want)
				}
				return nil
			})
			if c := up.condition("hc", ns, tc.name, "Available"); !strings.HasPrefix(c, "False/") {
				t.Errorf("Available=%q", c)
			}
			if out, err := up.kubectl("", "get", "ns", ns+"-"+tc.name); err == nil {
				t.Errorf("control plane namespace created for an invalid cluster: %s", out)
			}
			if pids := processesUsing(filepath.Join(dataDir, "controlplanes", ns+"-"+tc.name)); len(pids) != 0 {
				t.Errorf("processes running for an invalid cluster: %v", pids)
			}
			up.mustKubectl("", "-n", ns, "delete", "hc", tc.name, "--timeout=1m")
		})
	}
	// The valid cluster is untouched by its invalid namesake.
	if c := up.condition("hc", "clusters", "taken", "Available"); !strings.HasPrefix(c, "True/") {
		t.Errorf("the first cluster named taken: Available=%q", c)
	}
}

// componentPids maps each process name (/proc/<pid>/comm) under dir to its pids.
// componentProcesses lists the pids of a control plane's components, without
// the balancers that publish its services.
func componentProcesses(dir string) []int {
	var out []int
	for _, pid := range processesUsing(dir) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if name := strings.TrimSpace(string(b)); name != "hcp" && name != "hcp-operator" {
			out = append(out, pid)
		}
	}
	return out
}

// waitOneOfEach waits until a SingleReplica control plane runs exactly one
// process of each component.
func waitOneOfEach(t *testing.T, cpDir string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "one process of each component", func() error {
		pids := componentPids(cpDir)
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "konnectivity-se"} {
			if len(pids[c]) != 1 {
				return fmt.Errorf("%v, want one of each component", pids)
			}
		}
		return nil
	})
}

func componentPids(dir string) map[string][]int {
	out := map[string][]int{}
	for _, pid := range processesUsing(dir) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		name := strings.TrimSpace(string(b))
		out[name] = append(out[name], pid)
	}
	return out
}

// TestKillEachComponent kills every component of a control plane in turn
// with SIGKILL (one replica of each for HighlyAvailable), writing objects before
// and after each: every component comes back and no acknowledged write is lost.
func TestKillEachComponent(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	for _, tc := range []struct {
		policy   string
		replicas map[string]int
	}{
		{"SingleReplica", map[string]int{"etcd": 1, "kube-apiserver": 1, "kube-controller": 1, "kube-scheduler": 1, "konnectivity-se": 1}},
		{"HighlyAvailable", map[string]int{"etcd": 3, "kube-apiserver": 3, "kube-controller": 2, "kube-scheduler": 2, "konnectivity-se": 3}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			name := "kill-" + strings.ToLower(tc.policy[:6])
			up.mustKubectl(hostedCluster(name, tc.policy, "local", rel.Image), "apply", "-f", "-")
			up.waitAvailable(t, name)
			kc := up.adminKubeconfig(t, name)
			cpDir := filepath.Join(dataDir, "controlplanes", "clusters-"+name)
			written := 0
			write := func(n int) {
				for range n {
					cm := fmt.Sprintf("seq-%d", written)
					eventually(t, time.Minute, "write "+cm, func() error {
						out, err := runKubectl(kc, "", "create", "configmap", cm)
						if err != nil && !strings.Contains(out, "already exists") {
							return fmt.Errorf("%v: %s", err, out)
						}
						return nil
					})
					written++
				}
			}
			eventually(t, time.Minute, "every replica running", func() error {
				for comp, n := range tc.replicas {
					if got := len(componentPids(cpDir)[comp]); got != n {
						return fmt.Errorf("%s: %d processes, want %d", comp, got, n)
					}
				}
				return nil
			})
			for _, comp := range []string{"etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "konnectivity-se"} {
				write(5)
				// A leader-elected replica whose API server was just killed may
				// be restarting; every replica is up before the next kill.
				var pids []int
				eventually(t, time.Minute, "every "+comp+" replica running", func() error {
					if pids = componentPids(cpDir)[comp]; len(pids) != tc.replicas[comp] {
						return fmt.Errorf("%s: pids %v, want %d", comp, pids, tc.replicas[comp])
					}
					return nil
				})
				before := up.restarts(name, comp)
				_ = syscall.Kill(pids[0], syscall.SIGKILL)
				// The control plane's health notices the kill: the component's
				// restart count in the HostedControlPlane's status goes up (a
				// replica that came back before a probe would otherwise hide it).
				eventually(t, 2*time.Minute, comp+" back and the control plane whole", func() error {
					if got := up.restarts(name, comp); got <= before {
						return fmt.Errorf("%s restarts %d in the status, %d before the kill: the kill went unnoticed", comp, got, before)
					}
					now := componentPids(cpDir)[comp]
					if len(now) != tc.replicas[comp] || slices.Contains(now, pids[0]) {
						return fmt.Errorf("%s pids %v (killed %d)", comp, now, pids[0])
					}
					if c := up.condition("hcp", "clusters-"+name, name, "Degraded"); !strings.HasPrefix(c, "False/") {
						return fmt.Errorf("Degraded=%q", c)
					}
					return nil
				})
				write(5)
			}
			out := guestKubectl(t, kc, "get", "configmaps", "-o", "name")
			for i := range written {
				if !strings.Contains(out, fmt.Sprintf("configmap/seq-%d\n", i)) {
					t.Errorf("write seq-%d lost", i)
				}
			}
			up.mustKubectl("", "-n", "clusters", "delete", "hostedcluster", name)
		})
	}
}
