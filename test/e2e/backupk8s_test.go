package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcp-dev/hcp/internal/controlplane"
)

// On the Kubernetes runtime (control planes on management nodes) a backup,
// by hand or scheduled, is a Job in the control plane namespace that writes
// the archive to S3, and a cluster created from it restores each etcd member
// in an init container of its pod.
func TestBackupAndRestoreOnManagementNodes(t *testing.T) {
	ctx := context.Background()
	s3 := s3WithBucket(t, "mgmt")
	up := startUp(t, t.TempDir(), "--management-nodes", "1")
	dumpPodsOnFailure(t, up, "clusters-kb")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustKubectl("", "create", "namespace", "clusters-example")
	create := func(extra ...string) {
		t.Helper()
		up.mustHCP(append([]string{"create", "cluster", "agent", "--name", "kb", "--pull-secret", pull, "--agent-namespace", "clusters-example",
			"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0"}, extra...)...)
	}
	create("--wait", "--timeout", "8m")
	oldKubeconfig := up.adminKubeconfig(t, "kb")
	cs := guestClient(t, oldKubeconfig)
	const objects = 100
	for i := 1; i <= objects; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i)}, Data: map[string]string{"i": fmt.Sprint(i)}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", cm.Name, err)
		}
	}
	guestKubectl(t, oldKubeconfig, "create", "secret", "generic", "keep-me", "--from-literal=password=s3cr3t")

	// The secret encryption key is rotated to one of the user's: the API
	// server Deployment rolls to learn it, then to write with it, and every
	// Secret is rewritten.
	encKey := make([]byte, 32)
	if _, err := rand.Read(encKey); err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "enc-key", string(encKey))
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "kb-key-2", "--from-file=key="+keyFile)
	second := controlplane.NewEncryptionKey(encKey).Name
	rotating := time.Now()
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "kb", "--type", "merge", "-p",
		`{"spec":{"secretEncryption":{"type":"aescbc","aescbc":{"activeKey":{"name":"kb-key-2"}}}}}`)
	eventually(t, 5*time.Minute, "every Secret rewritten with the user's key", func() error {
		if c := up.condition("hc", "clusters", "kb", "SecretsEncrypted"); !strings.HasPrefix(c, "True/") || !strings.Contains(c, second) {
			return errorf("SecretsEncrypted=%q", c)
		}
		return nil
	})
	t.Logf("key rotation to %s done in %.1fs", second, time.Since(rotating).Seconds())
	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "kb", "-o", "jsonpath={.spec.infraID}")

	// A directory on the management plane is no target for a Job.
	out, err := up.hcp("create", "etcd-backup", "--name", "kb", "--backup-name", "kb-local", "--wait")
	if err == nil || !strings.Contains(out, "back up to S3 only") {
		t.Errorf("a Local backup on the Kubernetes runtime: %v\n%s", err, out)
	}
	// Wrong credentials fail with the reason.
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-wrong",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key=not-the-secret")
	out, err = up.hcp("create", "etcd-backup", "--name", "kb", "--backup-name", "kb-wrong", "--to", "s3://mgmt", "--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-wrong", "--wait")
	if err == nil || !strings.Contains(out, "refused the credentials") {
		t.Errorf("a backup with wrong credentials: %v\n%s", err, out)
	}

	// The backup: a Job in the control plane namespace, gone once its
	// archive is in the bucket.
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-creds",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key="+s3.secret)
	key, presigned := backupToS3(t, up, s3, "kb", "kb-1", "mgmt")
	st, err := s3.client(t, s3.accessKey, s3.secret).StatObject(ctx, "mgmt", key, minio.StatObjectOptions{})
	if err != nil || st.Size == 0 {
		t.Fatalf("the archive %s in the bucket: %v %+v", key, err, st)
	}
	// The archive's snapshot holds the Secrets as etcd stores them: encrypted
	// with the new key, never in plain text.
	archive := filepath.Join(t.TempDir(), "kb-1.tar.gz")
	if err := s3.client(t, s3.accessKey, s3.secret).FGetObject(ctx, "mgmt", key, archive, minio.GetObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	snapshot, err := os.ReadFile(readArchive(t, archive).SnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(snapshot, []byte("s3cr3t")) {
		t.Errorf("the snapshot holds secret keep-me in plain text")
	}
	if !bytes.Contains(snapshot, []byte("k8s:enc:aescbc:v1:"+second+":")) {
		keys := map[string]int{}
		for _, m := range regexp.MustCompile(`k8s:enc:aescbc:v1:([a-z0-9-]+):`).FindAllSubmatch(snapshot, -1) {
			keys[string(m[1])]++
		}
		t.Errorf("the snapshot holds no Secret encrypted with %s; values by key: %v", second, keys)
	}
	eventually(t, time.Minute, "the backup Jobs gone", func() error {
		if out, _ := up.kubectl("", "-n", "clusters-kb", "get", "jobs,secrets", "-l", "app=etcd-backup", "-o", "name"); strings.TrimSpace(out) != "" {
			return errorf("left: %s", out)
		}
		return nil
	})

	// Scheduled backups go through the same Jobs.
	scheduledBackups(t, up, s3, "kb", "mgmt", "")
	eventually(t, time.Minute, "the scheduled backups' Jobs gone", func() error {
		if out, _ := up.kubectl("", "-n", "clusters-kb", "get", "jobs,secrets", "-l", "app=etcd-backup", "-o", "name"); strings.TrimSpace(out) != "" {
			return errorf("left: %s", out)
		}
		return nil
	})

	// The cluster goes and comes back from the archive; a file:// archive
	// is refused, pods cannot read it.
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "kb", "--wait=true", "--timeout=5m")
	up.mustKubectl("", "wait", "--for=delete", "namespace/clusters-kb", "--timeout=3m")
	create("--infra-id", infraID, "--restore-from", "file:///var/lib/hcp/backups/kb.tar.gz")
	eventually(t, time.Minute, "a file:// archive refused", func() error {
		if c := up.condition("hc", "clusters", "kb", "ValidConfiguration"); !strings.HasPrefix(c, "False/") || !strings.Contains(c, "use an http(s) URL") {
			return errorf("ValidConfiguration=%q", c)
		}
		return nil
	})
	if out, err := up.kubectl("", "get", "namespace", "clusters-kb"); err == nil {
		t.Errorf("the control plane namespace was created: %s", out)
	}
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "kb", "--wait=true", "--timeout=2m")
	start := time.Now()
	create("--infra-id", infraID, "--restore-from", presigned, "--wait", "--timeout", "5m")
	t.Logf("restored cluster Available %.1fs after it was created", time.Since(start).Seconds())
	if msg := up.mustKubectl("", "-n", "clusters-kb", "get", "pods", "-l", "app=etcd", "-o",
		"jsonpath={.items[0].status.initContainerStatuses[0].state.terminated.message}"); !strings.Contains(msg, "restored from etcd revision") {
		t.Errorf("etcd's restore init container said %q", msg)
	}
	server := guestKubectl(t, up.adminKubeconfig(t, "kb"), "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")
	got := guestKubectl(t, oldKubeconfig, "--server", server, "get", "configmaps", "-o", "name")
	if n := strings.Count(got, "configmap/cm-"); n != objects {
		t.Errorf("%d of %d ConfigMaps after the restore", n, objects)
	}
	if v := guestKubectl(t, oldKubeconfig, "--server", server, "get", "secret", "keep-me", "-o", "jsonpath={.data.password}"); v != "czNjcjN0" {
		t.Errorf("secret keep-me holds %q", v)
	}
}

// A HighlyAvailable cluster on three management nodes, backed up by a Job and
// restored from the archive: every etcd member restores the snapshot in its
// init container, the three form one cluster (every member ready, which
// needs a leader and a quorum read) and the data is there.
func TestHighlyAvailableRestoreOnManagementNodes(t *testing.T) {
	s3 := s3WithBucket(t, "mgmt-ha")
	up := startUp(t, t.TempDir(), "--management-nodes", "3")
	dumpPodsOnFailure(t, up, "clusters-kh")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustKubectl("", "create", "namespace", "clusters-example")
	create := func(extra ...string) {
		t.Helper()
		up.mustHCP(append([]string{"create", "cluster", "agent", "--name", "kh", "--pull-secret", pull, "--agent-namespace", "clusters-example",
			"--control-plane-availability-policy", "HighlyAvailable", "--release-image", rel.Image, "--node-pool-replicas", "0",
			"--wait", "--timeout", "10m"}, extra...)...)
	}
	create()
	oldKubeconfig := up.adminKubeconfig(t, "kh")
	const objects = 20
	for i := 1; i <= objects; i++ {
		guestKubectl(t, oldKubeconfig, "create", "configmap", fmt.Sprintf("cm-%02d", i), fmt.Sprintf("--from-literal=i=%d", i))
	}
	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "kh", "-o", "jsonpath={.spec.infraID}")
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-creds",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key="+s3.secret)
	_, presigned := backupToS3(t, up, s3, "kh", "kh-1", "mgmt-ha")
	up.mustKubectl("", "-n", "clusters", "delete", "hc", "kh", "--wait=true", "--timeout=5m")
	up.mustKubectl("", "wait", "--for=delete", "namespace/clusters-kh", "--timeout=3m")

	start := time.Now()
	create("--infra-id", infraID, "--restore-from", presigned)
	t.Logf("restored HighlyAvailable cluster Available %.1fs after it was created", time.Since(start).Seconds())
	// Available needs a quorum; every member is ready soon after.
	eventually(t, 3*time.Minute, "three restored etcd members ready", func() error {
		out := up.mustKubectl("", "-n", "clusters-kh", "get", "pods", "-l", "app=etcd", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.status.initContainerStatuses[0].state.terminated.message}{"\n"}{end}`)
		members := strings.Split(strings.TrimSpace(out), "\n")
		if len(members) != 3 {
			return errorf("etcd pods:\n%s", out)
		}
		for _, m := range members {
			if f := strings.Fields(m); len(f) < 2 || f[1] != "True" || !strings.Contains(m, "restored from etcd revision") {
				return errorf("etcd member: %s (want Ready and restored from the snapshot)", m)
			}
		}
		if c := up.mustKubectl("", "-n", "clusters-kh", "get", "hcp", "kh", "-o", `jsonpath={.status.components[?(@.name=="etcd")].readyReplicas}`); c != "3" {
			return errorf("etcd ready replicas %q, want 3", c)
		}
		return nil
	})
	t.Logf("three etcd members ready %.1fs after the restored cluster was created", time.Since(start).Seconds())
	server := guestKubectl(t, up.adminKubeconfig(t, "kh"), "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")
	got := guestKubectl(t, oldKubeconfig, "--server", server, "get", "configmaps", "-o", "name")
	if n := strings.Count(got, "configmap/cm-"); n != objects {
		t.Errorf("%d of %d ConfigMaps after the restore", n, objects)
	}
	// The restored cluster takes writes.
	guestKubectl(t, oldKubeconfig, "--server", server, "create", "configmap", "after-restore", "--from-literal=a=b")
}

// s3WithBucket starts an S3 server on this machine's address, which pods on
// management nodes reach, with one bucket.
func s3WithBucket(t *testing.T, bucket string) *s3Server {
	t.Helper()
	s3 := startS3On(t, machineAddress(t))
	if err := s3.client(t, s3.accessKey, s3.secret).MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return s3
}

// dumpPodsOnFailure prints the pods and events of a control plane namespace
// when the test fails.
func dumpPodsOnFailure(t *testing.T, up *upProcess, namespace string) {
	t.Cleanup(func() {
		if t.Failed() {
			pods, _ := up.kubectl("", "-n", namespace, "get", "pods", "-o",
				`jsonpath={range .items[*]}{.metadata.name}: {.status.phase} init={.status.initContainerStatuses} containers={.status.containerStatuses}{"\n"}{end}`)
			events, _ := up.kubectl("", "-n", namespace, "get", "events", "--sort-by", ".lastTimestamp")
			t.Logf("pods of %s:\n%s\nevents:\n%s", namespace, pods, tail(events, 4000))
		}
	})
}
