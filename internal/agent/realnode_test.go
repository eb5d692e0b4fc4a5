package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/ignition"
)

func TestUnitsFromTheIgnitionRunInOrderWithTheirEnvironment(t *testing.T) {
	root := t.TempDir()
	cfg, err := (ignition.Worker{BootstrapKubeconfig: []byte("x"), CA: []byte("x"), PullSecret: []byte("{}"), Konnectivity: "10.0.0.1:8091",
		PauseImage: "registry.hcp.test/pause:1", ClusterCIDR: "10.132.0.0/14"}).Config()
	if err != nil {
		t.Fatal(err)
	}
	parsed, rpt, err := ign.Parse(cfg)
	if err != nil || rpt.IsFatal() {
		t.Fatalf("%v %s", err, rpt)
	}
	if err := Apply(parsed, root); err != nil {
		t.Fatal(err)
	}
	if err := writeUnder(root, ignition.NodeEnvPath, []byte("NODE_NAME=lab-host-0\nNODE_IP=10.231.1.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	units, err := loadUnits(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range units {
		names = append(names, u.Name)
	}
	want := []string{"containerd.service", "kubelet.service", "konnectivity-agent.service", "kube-proxy.service"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("start order %v, want %v", names, want)
	}
	argv, _, err := units[1].argv(root)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(argv, " ")
	for _, w := range []string{"/usr/local/bin/kubelet ", "--hostname-override=lab-host-0", "--node-ip=10.231.1.10", "--config-dir=" + ignition.KubeletConfigDir} {
		if !strings.Contains(line, w) {
			t.Errorf("kubelet command lacks %q: %s", w, line)
		}
	}
	argv, _, err = units[2].argv(root)
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(argv, " "); !strings.Contains(line, "--proxy-server-host=10.0.0.1") || !strings.Contains(line, "--agent-id=lab-host-0") {
		t.Errorf("konnectivity agent command: %s", line)
	}
	if units[0].RestartSec != 2*time.Second {
		t.Errorf("RestartSec %v", units[0].RestartSec)
	}
	// A unit without its environment file says which.
	_ = os.Remove(filepath.Join(root, ignition.NodeEnvPath))
	if _, _, err := units[1].argv(root); err == nil || !strings.Contains(err.Error(), ignition.NodeEnvPath) {
		t.Errorf("missing environment file: %v", err)
	}
}

func TestParseUnitRefusesWhatItCannotRun(t *testing.T) {
	if _, err := parseUnit("x.service", "[Service]\nRestart=always\n"); err == nil {
		t.Error("a unit without ExecStart was accepted")
	}
	if _, err := parseUnit("x.service", "[Service]\nExecStart=/bin/true\nRestartSec=soon\n"); err == nil || !strings.Contains(err.Error(), "RestartSec") {
		t.Errorf("bad RestartSec: %v", err)
	}
	u, err := parseUnit("x.service", "[Service]\nExecStart=/bin/a \\\n  --b\nEnvironment=\"A=1\" B=2\n")
	if err != nil || strings.Join(strings.Fields(u.ExecStart), " ") != "/bin/a --b" || u.Env["A"] != "1" || u.Env["B"] != "2" {
		t.Errorf("continued line and environment: %+v %v", u, err)
	}
}

func TestReservedLeavesEachNodeItsShare(t *testing.T) {
	inv := &agentv1.HostInventory{Cpu: agentv1.HostCPU{Count: 2}, Memory: agentv1.HostMemory{UsableBytes: 24 << 30}}
	if r := reserved(inv, 1); r != nil {
		t.Errorf("a node alone reserves %v", r)
	}
	if r := reserved(inv, 3); r["cpu"] != "1334m" || r["memory"] != "16384Mi" {
		t.Errorf("a third of the machine: %v", r)
	}
}

func TestSharedDiskDoesNotEvictOnTheMachinesDisk(t *testing.T) {
	for _, root := range []string{"", "/", "//"} {
		if s := sharedDisk(root); s != nil {
			t.Errorf("a node with its own root (%q) changes eviction: %v", root, s)
		}
	}
	s := sharedDisk("/var/lib/hcp/lab/host-0")
	hard, _ := s["evictionHard"].(map[string]string)
	for _, k := range []string{"nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree"} {
		if hard[k] != "0%" {
			t.Errorf("evictionHard[%s] = %q, want 0%%", k, hard[k])
		}
	}
	if hard["memory.available"] != "100Mi" || s["imageGCHighThresholdPercent"] != 100 {
		t.Errorf("memory eviction or image GC: %v", s)
	}
}

// Two nodes of one name under different roots (management-0 of two hcp
// ups started from one shell) get cgroup roots of their own; a node on its
// own root keeps its name.
func TestNodeRootsOfNodesUnderDirectoriesDiffer(t *testing.T) {
	c := &cgroups{own: "/user/session"}
	a, b := c.nodeRoot("management-0", "/tmp/a/management/management-0/root"), c.nodeRoot("management-0", "/tmp/b/management/management-0/root")
	if a == b || !strings.HasPrefix(a, "/user/session/hcp-nodes/management-0-") {
		t.Errorf("cgroup roots %s and %s", a, b)
	}
	if again := c.nodeRoot("management-0", "/tmp/a/management/management-0/root/"); again != a {
		t.Errorf("the same root gives %s, then %s", a, again)
	}
	if r := c.nodeRoot("host-1", "/"); r != "/user/session/hcp-nodes/host-1" {
		t.Errorf("a node on its own root: %s", r)
	}
}

func TestCgroupLayouts(t *testing.T) {
	v1 := t.TempDir()
	for _, h := range []string{"cpu", "cpuset", "memory", "systemd", "unified"} {
		if err := os.MkdirAll(filepath.Join(v1, h), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(v1, "cpuset", "cpuset.cpus"), []byte("0-1\n"), 0o644)
	_ = os.WriteFile(filepath.Join(v1, "cpuset", "cpuset.mems"), []byte("0\n"), 0o644)
	c, err := detectCgroups(v1, "9:name=systemd:/\n4:memory:/hcp/run\n3:cpuset:/\n0::/\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.v2 || c.own != "/hcp/run" || len(c.hierarchies) != 4 {
		t.Fatalf("v1 layout %+v", c)
	}
	root := c.nodeRoot("lab-host-0", "/")
	if root != "/hcp/run/hcp-nodes/lab-host-0" {
		t.Errorf("v1 node root %s", root)
	}
	// A fake cpuset has no kernel to create cpuset files: make them empty as
	// the kernel would.
	for _, d := range []string{"hcp", "hcp/run", "hcp/run/hcp-nodes", "hcp/run/hcp-nodes/lab-host-0"} {
		_ = os.MkdirAll(filepath.Join(v1, "cpuset", d), 0o755)
		_ = os.WriteFile(filepath.Join(v1, "cpuset", d, "cpuset.cpus"), nil, 0o644)
		_ = os.WriteFile(filepath.Join(v1, "cpuset", d, "cpuset.mems"), nil, 0o644)
	}
	if err := c.prepare(root); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"cpu", "memory", "systemd"} {
		if _, err := os.Stat(filepath.Join(v1, h, root)); err != nil {
			t.Errorf("no node cgroup in %s: %v", h, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(v1, "cpuset", root, "cpuset.cpus")); string(b) != "0-1\n" {
		t.Errorf("cpuset.cpus of the node root %q", b)
	}

	v2 := t.TempDir()
	_ = os.WriteFile(filepath.Join(v2, "cgroup.controllers"), []byte("cpu memory pids io\n"), 0o644)
	c, err = detectCgroups(v2, "0::/user.slice/hcp.service\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.v2 || c.nodeRoot("n", "/") != "/user.slice/hcp-nodes/n" {
		t.Errorf("v2 layout %+v, root %s", c, c.nodeRoot("n", "/"))
	}
	// Without the kernel, the node's cgroup lists no controllers: prepare
	// says which is missing.
	if err := c.prepare(c.nodeRoot("n", "/")); err == nil || !strings.Contains(err.Error(), "lacks the cpu controller") {
		t.Errorf("v2 without controllers: %v", err)
	}
}

func TestCNIConfigIsABridgeOnThePodRange(t *testing.T) {
	var cfg struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(cniConfig("10.132.1.0/24")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Plugins[0].Type != "bridge" || cfg.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.132.1.0/24" || cfg.Plugins[1].Type != "portmap" {
		t.Errorf("CNI config %+v", cfg)
	}
}

func TestUnderRootFollowsTheKubeletsLink(t *testing.T) {
	root := t.TempDir()
	pki := filepath.Join(root, "var/lib/kubelet/pki")
	_ = os.MkdirAll(pki, 0o755)
	_ = os.WriteFile(filepath.Join(pki, "kubelet-client-2026.pem"), []byte("x"), 0o600)
	if err := os.Symlink("/var/lib/kubelet/pki/kubelet-client-2026.pem", filepath.Join(pki, "kubelet-client-current.pem")); err != nil {
		t.Fatal(err)
	}
	if got := underRoot(root, "/var/lib/kubelet/pki/kubelet-client-current.pem"); got != filepath.Join(pki, "kubelet-client-2026.pem") {
		t.Errorf("underRoot = %s", got)
	}
	if got := underRoot("/", "/etc/x"); got != "/etc/x" {
		t.Errorf("on / = %s", got)
	}
}

// The nodes of an hcp up that is gone are known by their /run/containerd
// mounts, also when its data directory was deleted or sits on a file system
// of its own.
func TestNodeOf(t *testing.T) {
	for _, tc := range []struct {
		source, dataDir string
		want            bool
	}{
		{"/tmp/up-1/management/management-0/root/run/containerd", "/tmp/up-1", true},
		{"/tmp/up-1/lab/lab-host-2/root/run/containerd", "/tmp/up-1", true},
		{"/alice/.hcp/management/management-1/root/run/containerd", "/home/alice/.hcp", true},
		{"/tmp/up-10/management/management-0/root/run/containerd", "/tmp/up-1", false},
		{"/tmp/up-1/management/management-0/root/var/lib", "/tmp/up-1", false},
		{"/run/containerd", "/tmp/up-1", false},
	} {
		if got := nodeOf(tc.source, tc.dataDir); got != tc.want {
			t.Errorf("nodeOf(%q, %q) = %v, want %v", tc.source, tc.dataDir, got, tc.want)
		}
	}
}
