package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// restoredCluster is hostedCluster with an infraID and a backup to start
// from.
func restoredCluster(name, infraID, url string) string {
	return restoredClusterOf(name, "SingleReplica", infraID, url)
}

func restoredClusterOf(name, policy, infraID, url string) string {
	y := hostedCluster(name, policy, "local", rel.Image)
	y = strings.Replace(y, "spec:\n", "spec:\n  infraID: "+infraID+"\n", 1)
	return strings.Replace(y, "      storage:\n", "      storage:\n        restoreSnapshotURL:\n        - \""+url+"\"\n", 1)
}

func guestClient(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	return guestClientAt(t, kubeconfig, "")
}

// guestClientAt uses a kubeconfig's credentials against server ("": the
// kubeconfig's own).
func guestClientAt(t *testing.T, kubeconfig, server string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags(server, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 200, 400, 30*time.Second
	return kubernetes.NewForConfigOrDie(cfg)
}

func TestRestoreFromBackup(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("rs", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "rs")
	oldKubeconfig := up.adminKubeconfig(t, "rs")
	cs := guestClient(t, oldKubeconfig)
	ctx := context.Background()

	// 1000 ConfigMaps, a Secret and a service account token.
	const objects = 1000
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= objects; i = next.Add(1) {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i)}, Data: map[string]string{"i": fmt.Sprint(i)}}
				if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					t.Errorf("creating %s: %v", cm.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	guestKubectl(t, oldKubeconfig, "create", "secret", "generic", "keep-me", "--from-literal=password=s3cr3t")
	guestKubectl(t, oldKubeconfig, "create", "serviceaccount", "robot")
	token := strings.TrimSpace(guestKubectl(t, oldKubeconfig, "create", "token", "robot", "--duration=2h"))
	before, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "rs", "-o", "jsonpath={.spec.infraID}")
	up.mustHCP("create", "etcd-backup", "--name", "rs", "--backup-name", "rs-1", "--wait")
	archive := strings.TrimPrefix(up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "rs-1", "-o", "jsonpath={.status.url}"), "file://")
	// The same to a real S3 server; the cluster comes back from there.
	s3 := startS3(t)
	if err := s3.client(t, s3.accessKey, s3.secret).MakeBucket(ctx, "restore", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-creds",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key="+s3.secret)
	_, presigned := backupToS3(t, up, s3, "rs", "rs-s3", "restore")

	// Bad archives are refused before anything is created.
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	truncated, tampered := filepath.Join(bad, "truncated.tar.gz"), filepath.Join(bad, "tampered.tar.gz")
	_ = os.WriteFile(truncated, raw[:len(raw)/2], 0o600)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)*3/4] ^= 0xff
	_ = os.WriteFile(tampered, flipped, 0o600)
	for _, tc := range []struct{ name, infraID, url, want string }{
		{"bad-truncated", infraID, "file://" + truncated, "truncated"},
		{"bad-tampered", infraID, "file://" + tampered, "corrupt"},
		{"bad-infra", "someone-else", "file://" + archive, "infraID"},
		{"bad-missing", infraID, "file://" + filepath.Join(bad, "none.tar.gz"), "no such file"},
	} {
		up.mustKubectl(restoredCluster(tc.name, tc.infraID, tc.url), "apply", "-f", "-")
		eventually(t, time.Minute, tc.name+" refused", func() error {
			c := up.condition("hc", "clusters", tc.name, "ValidConfiguration")
			if !strings.HasPrefix(c, "False/") || !strings.Contains(c, "restoreSnapshotURL") || !strings.Contains(c, tc.want) {
				return fmt.Errorf("ValidConfiguration=%q", c)
			}
			return nil
		})
		if out, err := up.kubectl("", "get", "namespace", "clusters-"+tc.name); err == nil {
			t.Errorf("%s: the control plane namespace was created: %s", tc.name, out)
		}
		up.mustKubectl("", "-n", "clusters", "delete", "hc", tc.name, "--wait=true", "--timeout=2m")
	}

	// The cluster goes, and comes back from the archive.
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "rs", "--wait=true", "--timeout=5m")
	start := time.Now()
	up.mustKubectl(restoredCluster("rs", infraID, presigned), "apply", "-f", "-")
	eventually(t, 5*time.Minute, "the restored cluster Available", func() error {
		if c := up.condition("hc", "clusters", "rs", "Available"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("Available=%q", c)
		}
		return nil
	})
	t.Logf("restored cluster Available %.1fs after it was created", time.Since(start).Seconds())
	server := guestKubectl(t, up.adminKubeconfig(t, "rs"), "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")

	// The old admin kubeconfig still authenticates (its address aside: the
	// new control plane may be published on another port).
	got := guestKubectl(t, oldKubeconfig, "--server", server, "get", "configmaps", "-o", "name")
	n := strings.Count(got, "configmap/cm-")
	if n != objects {
		t.Errorf("%d of %d ConfigMaps after the restore", n, objects)
	}
	if v := guestKubectl(t, oldKubeconfig, "--server", server, "get", "configmap", "cm-0777", "-o", "jsonpath={.data.i}"); v != "777" {
		t.Errorf("cm-0777 holds %q", v)
	}
	if v := guestKubectl(t, oldKubeconfig, "--server", server, "get", "secret", "keep-me", "-o", "jsonpath={.data.password}"); v != base64.StdEncoding.EncodeToString([]byte("s3cr3t")) {
		t.Errorf("secret keep-me holds %q", v)
	}
	// The token issued before the backup still authenticates.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	caData := guestKubectl(t, oldKubeconfig, "config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	caPEM, _ := base64.StdEncoding.DecodeString(caData)
	_ = os.WriteFile(ca, caPEM, 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	who, err := runKubectl(empty, "", "--server", server, "--certificate-authority", ca, "--token", token, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || who != "system:serviceaccount:default:robot" {
		t.Errorf("the service account token after the restore: %v: %s", err, who)
	}
	// A watch from a revision before the backup starts over (410), rather
	// than replaying revisions.
	restored := guestClientAt(t, oldKubeconfig, server)
	w, err := restored.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: before.ResourceVersion})
	if err == nil {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Error || !apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)) && !apierrors.IsGone(apierrors.FromObject(ev.Object)) {
				t.Errorf("a watch from revision %s after the restore got %s %v, want 410 Gone", before.ResourceVersion, ev.Type, ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("a watch from revision %s after the restore got nothing", before.ResourceVersion)
		}
		w.Stop()
	} else if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) && !errors.Is(err, context.Canceled) {
		t.Errorf("a watch from revision %s after the restore: %v, want 410 Gone", before.ResourceVersion, err)
	}
}

func TestRestoreHighlyAvailable(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("rha", "HighlyAvailable", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "rha")
	kc := up.adminKubeconfig(t, "rha")
	for i := range 20 {
		guestKubectl(t, kc, "create", "configmap", fmt.Sprintf("ha-%02d", i), "--from-literal=i="+fmt.Sprint(i))
	}
	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "rha", "-o", "jsonpath={.spec.infraID}")
	up.mustHCP("create", "etcd-backup", "--name", "rha", "--backup-name", "rha-1", "--wait")
	url := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "rha-1", "-o", "jsonpath={.status.url}")
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "rha", "--wait=true", "--timeout=5m")

	up.mustKubectl(restoredClusterOf("rha", "HighlyAvailable", infraID, url), "apply", "-f", "-")
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-rha")
	eventually(t, 5*time.Minute, "the restored HighlyAvailable cluster with three healthy etcd members", func() error {
		if c := up.condition("hc", "clusters", "rha", "Available"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("Available=%q", c)
		}
		ready := up.mustKubectl("", "-n", "clusters-rha", "get", "hcp", "rha", "-o", `jsonpath={.status.components[?(@.name=="etcd")].readyReplicas}`)
		if ready != "3" {
			return fmt.Errorf("etcd ready replicas %q", ready)
		}
		return nil
	})
	// Each member answers healthy and they agree on one leader.
	leaders := map[string]bool{}
	for _, m := range etcdMembers(t, cpDir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := m.client.PostJSON(ctx, m.url+"/v3/maintenance/status", "{}")
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", m.replica, err)
		}
		var st struct {
			Leader string `json:"leader"`
		}
		_ = json.Unmarshal(out, &st)
		leaders[st.Leader] = true
	}
	if len(leaders) != 1 || leaders[""] {
		t.Errorf("the restored members name leaders %v, want one", leaders)
	}
	got := guestKubectl(t, up.adminKubeconfig(t, "rha"), "get", "configmaps", "-o", "name")
	if n := strings.Count(got, "configmap/ha-"); n != 20 {
		t.Errorf("%d of 20 ConfigMaps after the restore:\n%s", n, got)
	}
}

// A cluster with a real node, restored from its backup after the
// HostedCluster was deleted: the lab host, unbound with its cluster, boots
// into discovery by itself; the restored cluster's NodePool binds it again,
// its kubelet joins as the Node the snapshot holds (same name and UID), and
// the pod the snapshot holds for that node runs there again.
func TestRestoredClusterGetsItsNodeBack(t *testing.T) {
	up := startUp(t, t.TempDir(), "--agents", "1", agentFlags)
	gw := gatewayOf(t, up)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.waitAgentsKnown(t, 1)
	create := func(extra ...string) {
		t.Helper()
		up.mustHCP(append([]string{"create", "cluster", "agent", "--name", "nr", "--pull-secret", pull, "--agent-namespace", "clusters-example",
			"--api-server-address", gw, "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
			"--node-pool-replicas", "1", "--wait", "--timeout", "5m"}, extra...)...)
	}
	create()
	oldKubeconfig := up.adminKubeconfig(t, "nr")
	nodeReady := func(kubeconfig, server string) string {
		t.Helper()
		var node string
		eventually(t, 3*time.Minute, "the node Ready", func() error {
			args := []string{"get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`}
			if server != "" {
				args = append([]string{"--server", server}, args...)
			}
			out, _ := runKubectl(kubeconfig, "", args...)
			f := strings.Fields(out)
			if len(f) != 1 || !strings.HasSuffix(f[0], "=True") {
				return errorf("nodes %q", out)
			}
			node = strings.TrimSuffix(f[0], "=True")
			return nil
		})
		return node
	}
	node := nodeReady(oldKubeconfig, "")
	nodeUID := guestKubectl(t, oldKubeconfig, "get", "node", node, "-o", "jsonpath={.metadata.uid}")
	agnhost := "registry.hcp.test/e2e-test-images/agnhost:" + rel.Components["agnhost"]
	guestKubectl(t, oldKubeconfig, "run", "keep", "--image="+agnhost, "--", "pause")
	guestKubectl(t, oldKubeconfig, "wait", "--for=condition=Ready", "pod/keep", "--timeout=3m")

	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "nr", "-o", "jsonpath={.spec.infraID}")
	up.mustHCP("create", "etcd-backup", "--name", "nr", "--backup-name", "nr-1", "--wait")
	archive := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "nr-1", "-o", "jsonpath={.status.url}")
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "nr", "--wait=true", "--timeout=5m")
	up.waitAgentsKnown(t, 1)

	create("--infra-id", infraID, "--restore-from", archive)
	server := guestKubectl(t, up.adminKubeconfig(t, "nr"), "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")
	if again := nodeReady(oldKubeconfig, server); again != node {
		t.Errorf("the restored cluster's node is %s, want %s back", again, node)
	}
	if uid := guestKubectl(t, oldKubeconfig, "--server", server, "get", "node", node, "-o", "jsonpath={.metadata.uid}"); uid != nodeUID {
		t.Errorf("node %s has UID %s, want the snapshot's %s", node, uid, nodeUID)
	}
	eventually(t, 3*time.Minute, "pod keep running on "+node+" again", func() error {
		out, _ := runKubectl(oldKubeconfig, "", "--server", server, "get", "pod", "keep", "-o",
			`jsonpath={.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[0].restartCount}`)
		if f := strings.Fields(out); len(f) != 3 || f[0] != node || f[1] != "True" {
			return errorf("pod keep: %q", out)
		}
		return nil
	})
}
