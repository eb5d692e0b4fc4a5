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

// etcd's data on a small tmpfs fills up: writes are refused, the hosted cluster
// says that the disk is full, and once space returns it serves again with every
// write it acknowledged.
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

	// Writes of 256 KiB until the cluster refuses one.
	payload := writeFile(t, "payload", strings.Repeat("x", 256<<10))
	var acked []string
	refused := ""
	for i := range 400 {
		fill()
		name := fmt.Sprintf("w-%03d", i)
		cmd := exec.Command(kubectl, "--kubeconfig", kc, "--request-timeout=20s", "create", "configmap", name, "--from-file=data="+payload)
		out, err := cmd.CombinedOutput()
		if err != nil {
			refused = string(out)
			break
		}
		acked = append(acked, name)
	}
	if refused == "" {
		t.Fatalf("400 writes of 256 KiB were accepted on a full volume")
	}
	t.Logf("%d writes accepted, then: %s", len(acked), strings.TrimSpace(refused))
	// How the write failed: today etcd stops when it cannot write its data
	// ("failed to commit tx: ... no space left on device") and the API server
	// holds the request until the client gives up, so the client times out,
	// or it answers that etcd is unavailable; no answer from the server
	// refuses it for lack of space. A failure of any other kind (a
	// refusal, or something else) is a change of behaviour this test must be
	// told about.
	switch {
	case strings.Contains(refused, "Client.Timeout exceeded") || strings.Contains(refused, "context deadline exceeded") ||
		strings.Contains(refused, "the server was unable to return a response in the time allotted"):
		t.Logf("the write timed out (etcd stopped on the full volume)")
	case strings.Contains(refused, "code = Unavailable"):
		t.Logf("the API server lost etcd (it stopped on the full volume)")
	case strings.Contains(refused, "database space exceeded") || strings.Contains(refused, "no space left on device"):
		t.Fatalf("the write was refused for lack of space; this test expects the known timeout, update it: %s", refused)
	default:
		t.Fatalf("the write failed neither by a timeout nor by a refusal for lack of space: %s", refused)
	}
	var reported string
	eventually(t, 2*time.Minute, "the full disk reported", func() error {
		fill()
		reported = up.condition("hc", "clusters", "full", "EtcdAvailable") + " " + up.condition("hc", "clusters", "full", "Degraded")
		if !strings.Contains(reported, "no space left on device") {
			return fmt.Errorf("EtcdAvailable and Degraded say %q", reported)
		}
		return nil
	})
	t.Logf("reported: %s", reported)

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
	out := guestKubectl(t, kc, "get", "configmaps", "-o", "name")
	for _, name := range acked {
		if !strings.Contains(out, "configmap/"+name+"\n") {
			t.Errorf("acknowledged write %s is lost", name)
		}
	}
}
