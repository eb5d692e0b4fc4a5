package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hcp-dev/hcp/internal/runtime/local"
)

// etcd's data on a small tmpfs fills up: the hosted cluster says that the disk
// is full, writes are refused at once with the reason while reads are served,
// and once space returns it takes writes again with every earlier write kept.
func TestEtcdDiskFull(t *testing.T) {
	up := startUp(t, t.TempDir())
	vol := filepath.Join(t.TempDir(), "tiny")
	if err := os.MkdirAll(vol, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m,mode=0700", "tmpfs", vol).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs for etcd's data (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", vol).Run() })
	up.mustKubectl(fmt.Sprintf("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: tiny}\nprovisioner: %s\nparameters: {path: %s}\n",
		local.Provisioner, vol), "apply", "-f", "-")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustKubectl("", "create", "namespace", "clusters-full")
	up.mustHCP("create", "cluster", "agent", "--name", "full", "--pull-secret", pull, "--agent-namespace", "clusters-full",
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--etcd-storage-class", "tiny", "--node-pool-replicas", "-1", "--wait")
	kc := up.adminKubeconfig(t, "full")
	guestKubectl(t, kc, "create", "configmap", "before", "--from-literal=a=b")

	// Fill the volume but for 1 MiB, and keep it so: space etcd frees (a
	// preallocated log segment it drops when it restarts) is taken again.
	var fillers []string
	fill := func() {
		t.Helper()
		var st syscall.Statfs_t
		if err := syscall.Statfs(vol, &st); err != nil {
			t.Fatal(err)
		}
		size := int64(st.Bavail)*st.Bsize - (1 << 20)
		if size < 1<<20 {
			return
		}
		name := filepath.Join(vol, fmt.Sprintf("filler-%d", len(fillers)))
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fillers = append(fillers, name)
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			t.Fatalf("filling the volume: %v", err)
		}
	}
	fill()

	// hcp notices the full volume and has etcd refuse writes (its NOSPACE
	// alarm) before a write stops it.
	var reported string
	eventually(t, time.Minute, "the full disk reported", func() error {
		fill()
		reported = up.condition("hc", "clusters", "full", "EtcdAvailable") + " " + up.condition("hc", "clusters", "full", "Degraded")
		if !strings.Contains(reported, "etcd refuses writes (its NOSPACE alarm is raised)") {
			return fmt.Errorf("EtcdAvailable and Degraded say %q", reported)
		}
		return nil
	})
	t.Logf("reported: %s", reported)

	// A write is refused at once, naming the reason; reads are served.
	payload := writeFile(t, "payload", strings.Repeat("x", 256<<10))
	began := time.Now()
	out, err := exec.Command(kubectl, "--kubeconfig", kc, "--request-timeout=20s", "create", "configmap", "refused", "--from-file=data="+payload).CombinedOutput()
	if err == nil {
		t.Fatalf("a write was accepted on a full volume: %s", out)
	}
	if !strings.Contains(string(out), "database space exceeded") {
		t.Fatalf("the write failed, but not as refused for lack of space (after %s): %s", time.Since(began).Round(time.Millisecond), out)
	}
	t.Logf("refused in %s: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(string(out)))
	if out, err := runKubectl(kc, "", "get", "namespaces", "default"); err != nil {
		t.Fatalf("reads are not served while writes are refused: %v %s", err, out)
	}
	if c := up.condition("hc", "clusters", "full", "EtcdAvailable"); !strings.HasPrefix(c, "True/") {
		t.Errorf("EtcdAvailable = %q while etcd serves reads", c)
	}

	for _, name := range fillers {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 3*time.Minute, "writes served again once space returns", func() error {
		if c := up.condition("hc", "clusters", "full", "Degraded"); !strings.HasPrefix(c, "False/") {
			return fmt.Errorf("Degraded=%q", c)
		}
		if out, err := runKubectl(kc, "", "create", "configmap", "after-space", "--from-literal=a=b"); err != nil && !strings.Contains(out, "already exists") {
			return fmt.Errorf("write: %v %s", err, out)
		}
		return nil
	})
	if out := guestKubectl(t, kc, "get", "configmaps", "-o", "name"); !strings.Contains(out, "configmap/before\n") {
		t.Errorf("the write made before the volume filled is lost: %s", out)
	}
}
