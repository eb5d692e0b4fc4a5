package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

// s3Server is SeaweedFS's S3 gateway (with its master, volume server and
// filer) on loopback, with one identity.
type s3Server struct {
	endpoint          string
	accessKey, secret string
	dir               string
	bind              string
	cmd               *exec.Cmd
	ports             []int
}

func startS3(t *testing.T) *s3Server {
	t.Helper()
	return startS3On(t, "127.0.0.1")
}

// startS3On starts the S3 server on ip: loopback, or an address of this
// machine that pods on the lab network reach.
func startS3On(t *testing.T, ip string) *s3Server {
	t.Helper()
	weed := filepath.Join(binDir, "testtools", "weed")
	if _, err := os.Stat(weed); err != nil {
		t.Fatalf("the S3 server is missing (%v): make build builds it", err)
	}
	s := &s3Server{accessKey: "hcp-backup", secret: "s3cret-" + strconv.Itoa(freePort(t)), dir: t.TempDir(), bind: "127.0.0.1"}
	cfg := fmt.Sprintf(`{"identities":[{"name":"hcp","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, s.accessKey, s.secret)
	if err := os.WriteFile(filepath.Join(s.dir, "s3.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each server also listens on its port + 10000 for gRPC: pick ports
	// whose neighbours are free as well.
	for len(s.ports) < 4 {
		p := freePort(t)
		if p+10000 < 65536 && portFree(p+10000) {
			s.ports = append(s.ports, p)
		}
	}
	s.endpoint = "http://" + net.JoinHostPort(ip, strconv.Itoa(s.ports[3]))
	if ip != "127.0.0.1" {
		// Its parts talk among themselves on loopback (the lab network's
		// rules do not touch it) and listen on every address.
		s.bind = "0.0.0.0"
	}
	s.start(t)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
			t.Logf("the S3 server's log:\n%s", tail(string(b), 4000))
		}
	})
	return s
}

func portFree(p int) bool {
	cmd := exec.Command("sh", "-c", fmt.Sprintf("! ss -ltn 'sport = :%d' | grep -q LISTEN", p))
	return cmd.Run() == nil
}

func (s *s3Server) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "weed.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Each bucket is a collection that grows volumes of its own, as does
	// the filer's metadata log once a minute: room for 32 (not
	// preallocated, at most 64 MB each).
	s.cmd = exec.Command(filepath.Join(binDir, "testtools", "weed"), "server", "-ip=127.0.0.1", "-ip.bind="+s.bind,
		"-dir="+filepath.Join(s.dir, "data"), "-master.port="+strconv.Itoa(s.ports[0]), "-volume.port="+strconv.Itoa(s.ports[1]),
		"-filer", "-filer.port="+strconv.Itoa(s.ports[2]), "-s3", "-s3.port="+strconv.Itoa(s.ports[3]),
		"-s3.config="+filepath.Join(s.dir, "s3.json"), "-volume.max=32", "-master.volumeSizeLimitMB=64")
	_ = os.MkdirAll(filepath.Join(s.dir, "data"), 0o700)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the S3 server answering", func() error {
		_, err := s.client(t, s.accessKey, s.secret).ListBuckets(context.Background())
		return err
	})
}

func (s *s3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *s3Server) client(t *testing.T, id, secret string) *minio.Client {
	t.Helper()
	u, _ := url.Parse(s.endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEtcdBackup(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("bk", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "bk")
	kc := up.adminKubeconfig(t, "bk")
	guestKubectl(t, kc, "create", "configmap", "before-backup", "--from-literal=k=v")
	infraID := up.mustKubectl("", "-n", "clusters", "get", "hc", "bk", "-o", "jsonpath={.spec.infraID}")

	// To the management plane's data directory, from the CLI.
	out, err := up.hcp("create", "etcd-backup", "--name", "bk", "--backup-name", "bk-local", "--wait")
	if err != nil {
		t.Fatalf("hcp create etcd-backup: %v\n%s", err, out)
	}
	t.Logf("hcp create etcd-backup --wait:\n%s", out)
	u := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "bk-local", "-o", "jsonpath={.status.url}")
	if !strings.HasPrefix(u, "file://"+filepath.Join(dataDir, "backups")+"/clusters-bk-") {
		t.Fatalf("status.url %q is not under the data directory's backups/", u)
	}
	contents := readArchive(t, strings.TrimPrefix(u, "file://"))
	if m := contents.Manifest; m.InfraID != infraID || m.Cluster != "clusters/bk" || m.Release != rel.Name || m.Revision <= 0 {
		t.Errorf("manifest %+v: want cluster clusters/bk, infraID %s, release %s", m, infraID, rel.Name)
	}
	names := map[string]bool{}
	for _, s := range contents.Secrets {
		names[s.Name] = true
	}
	for _, want := range backup.ArchivedSecrets {
		if !names[want] {
			t.Errorf("the archive lacks Secret %s (has %v)", want, names)
		}
	}
	rootCA := up.mustKubectl("", "-n", "clusters-bk", "get", "secret", controlplane.SecretRootCA, "-o", "jsonpath={.data.ca\\.crt}")
	for _, s := range contents.Secrets {
		if s.Name == controlplane.SecretRootCA && base64.StdEncoding.EncodeToString(s.Data["ca.crt"]) != rootCA {
			t.Error("the archive's root CA is not the cluster's")
		}
	}
	if _, err := backup.Verify(context.Background(), rel.Binary(release.Etcdutl), contents.SnapshotPath); err != nil {
		t.Errorf("etcdutl on the archived snapshot: %v", err)
	}
	if cols := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "bk-local"); !strings.Contains(cols, "True") || !strings.Contains(cols, "file://") {
		t.Errorf("kubectl get hcpetcdbackup:\n%s", cols)
	}

	// The console lists the backup and takes another with its button.
	b := newBrowser(t, up, t.TempDir())
	kubeconfig, err := os.ReadFile(up.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b.login("", string(kubeconfig))
	b.run("open the cluster page", chromedp.Navigate(b.base+"/#/clusters/clusters/bk"), chromedp.WaitVisible(chromedp.CSS("#backups")))
	b.waitText(`tr[data-backup="bk-local"] .backup-completed`, "BackupCompleted=True", 30*time.Second)
	if got := b.eval(`(() => { const el = document.querySelector("#take-backup"); if (!el) return "missing"; el.click(); return "clicked"; })()`); got != "clicked" {
		t.Fatalf("the backup button: %s", got)
	}
	eventually(t, 2*time.Minute, "the console's backup written", func() error {
		out := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackups", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[0].status}{"\n"}{end}`)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "bk-2") && strings.HasSuffix(line, "=True") {
				return nil
			}
		}
		return fmt.Errorf("backups: %s", out)
	})
	b.waitText("#backup-list", "file://", 30*time.Second)
	b.shot("backups")

	// To a real S3 server.
	s3 := startS3(t)
	if err := s3.client(t, s3.accessKey, s3.secret).MakeBucket(context.Background(), "hcp-backups", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-creds",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key="+s3.secret)
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "s3-wrong",
		"--from-literal=aws_access_key_id="+s3.accessKey, "--from-literal=aws_secret_access_key=not-the-secret")
	out, err = up.hcp("create", "etcd-backup", "--name", "bk", "--backup-name", "bk-s3", "--to", "s3://hcp-backups/daily",
		"--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-creds", "--wait")
	if err != nil {
		t.Fatalf("hcp create etcd-backup to S3: %v\n%s", err, out)
	}
	u = up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "bk-s3", "-o", "jsonpath={.status.url}")
	key, ok := strings.CutPrefix(u, "s3://hcp-backups/")
	if !ok || !strings.HasPrefix(key, "daily/clusters-bk-") {
		t.Fatalf("status.url %q is not in the bucket under daily/", u)
	}
	obj, err := s3.client(t, s3.accessKey, s3.secret).GetObject(context.Background(), "hcp-backups", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := backup.Read(obj, t.TempDir())
	if err != nil {
		t.Fatalf("reading the archive from S3: %v", err)
	}
	if got.Manifest.InfraID != infraID {
		t.Errorf("the S3 archive's infraID %s, want %s", got.Manifest.InfraID, infraID)
	}

	// Bad input: each refused with a condition that says why.
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"wrong credentials", "refused the credentials", []string{"--to", "s3://hcp-backups", "--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-wrong"}},
		{"missing bucket", `bucket "no-such-bucket" does not exist`, []string{"--to", "s3://no-such-bucket", "--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-creds"}},
		{"missing credentials secret", "s3-none", []string{"--to", "s3://hcp-backups", "--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-none"}},
	} {
		name := "bk-" + strings.ReplaceAll(tc.name, " ", "-")
		out, err := up.hcp(append([]string{"create", "etcd-backup", "--name", "bk", "--backup-name", name, "--wait", "--timeout", "2m"}, tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: hcp create etcd-backup: %v, want a failure saying %q:\n%s", tc.name, err, tc.want, out)
		}
	}
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"relative directory", "--to", []string{"--to", "backups"}},
		{"S3 without endpoint", "--s3-endpoint", []string{"--to", "s3://hcp-backups", "--s3-credentials", "s3-creds"}},
		{"S3 without credentials", "--s3-credentials", []string{"--to", "s3://hcp-backups", "--s3-endpoint", s3.endpoint}},
		{"no such cluster", "no HostedCluster", []string{"--name", "nope"}},
	} {
		args := append([]string{"create", "etcd-backup", "--name", "bk"}, tc.args...)
		out, err := up.hcp(args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %v, want an error naming %q:\n%s", tc.name, err, tc.want, out)
		}
	}
	// Scheduled: every 20 seconds, the newest two kept; a stopped store turns
	// EtcdBackupSucceeded False, and it turns True again once it is back.
	// A backup taken by hand where the scheduled ones go is never pruned.
	up.mustHCP("create", "etcd-backup", "--name", "bk", "--backup-name", "bk-by-hand", "--to", "s3://hcp-backups/scheduled",
		"--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-creds", "--wait")
	byHand := strings.TrimPrefix(up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", "bk-by-hand", "-o", "jsonpath={.status.url}"), "s3://hcp-backups/")
	scheduledBackups(t, up, s3, "bk", "hcp-backups", byHand)

	// The backup spec is immutable.
	if out, err := up.kubectl("", "-n", "clusters", "patch", "hcpetcdbackup", "bk-local", "--type", "merge", "-p", `{"spec":{"hostedCluster":{"name":"other"}}}`); err == nil {
		t.Errorf("a backup's spec was changed: %s", out)
	}
}

func readArchive(t *testing.T, path string) *backup.Contents {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := backup.Read(f, t.TempDir())
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return c
}

// scheduledBackups has HostedCluster name (in namespace clusters) back up every
// 20 seconds to prefix "scheduled" of bucket, keeping the newest two, and
// checks: three backups made, two kept, byHand (a key under the prefix, when
// not "") not pruned; a stopped store turns EtcdBackupSucceeded False, and it
// turns True again once the store is back.
func scheduledBackups(t *testing.T, up *upProcess, s3 *s3Server, name, bucket, byHand string) {
	t.Helper()
	up.mustKubectl("", "-n", "clusters", "patch", "hc", name, "--type", "merge", "-p", `{"spec":{"etcd":{"managed":{"backup":{"schedule":"@every 20s","retention":2,`+
		`"storage":{"type":"S3","s3":{"endpoint":"`+s3.endpoint+`","bucket":"`+bucket+`","prefix":"scheduled","credentials":{"name":"s3-creds"}}}}}}}}`)
	seen := map[string]bool{}
	inBucket := func() []string {
		var keys []string
		for o := range s3.client(t, s3.accessKey, s3.secret).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: "scheduled/clusters-" + name + "-scheduled-"}) {
			if o.Err == nil {
				keys = append(keys, o.Key)
			}
		}
		return keys
	}
	eventually(t, 6*time.Minute, "three scheduled backups, the newest two kept", func() error {
		if u := up.mustKubectl("", "-n", "clusters", "get", "hc", name, "-o", "jsonpath={.status.lastSuccessfulEtcdBackupURL}"); u != "" {
			seen[u] = true
		}
		keys := inBucket()
		if c := up.condition("hc", "clusters", name, "EtcdBackupSucceeded"); !strings.HasPrefix(c, "True/") || len(seen) < 3 || len(keys) != 2 {
			return fmt.Errorf("EtcdBackupSucceeded=%q, backups seen %d, in the bucket %v", c, len(seen), keys)
		}
		return nil
	})
	if byHand != "" {
		if _, err := s3.client(t, s3.accessKey, s3.secret).StatObject(context.Background(), bucket, byHand, minio.StatObjectOptions{}); err != nil {
			t.Errorf("the backup taken by hand (%s) was pruned with the scheduled ones: %v", byHand, err)
		}
	}
	s3.stop()
	eventually(t, 3*time.Minute, "a failed scheduled backup reported", func() error {
		if c := up.condition("hc", "clusters", name, "EtcdBackupSucceeded"); !strings.HasPrefix(c, "False/The backup at") || strings.Contains(c, "failed: Error:") {
			return fmt.Errorf("EtcdBackupSucceeded=%q", c)
		}
		return nil
	})
	t.Logf("with the store stopped: %s", up.condition("hc", "clusters", name, "EtcdBackupSucceeded"))
	s3.start(t)
	eventually(t, 3*time.Minute, "scheduled backups succeeding again", func() error {
		if c := up.condition("hc", "clusters", name, "EtcdBackupSucceeded"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("EtcdBackupSucceeded=%q", c)
		}
		return nil
	})
}

// backupToS3 has HostedCluster name (namespace clusters) back up to bucket
// with the credentials Secret s3-creds, and returns the archive's key and a
// presigned URL of it.
func backupToS3(t *testing.T, up *upProcess, s3 *s3Server, name, backupName, bucket string) (key, presigned string) {
	t.Helper()
	up.mustHCP("create", "etcd-backup", "--name", name, "--backup-name", backupName, "--to", "s3://"+bucket, "--s3-endpoint", s3.endpoint, "--s3-credentials", "s3-creds", "--wait")
	u := up.mustKubectl("", "-n", "clusters", "get", "hcpetcdbackup", backupName, "-o", "jsonpath={.status.url}")
	key, ok := strings.CutPrefix(u, "s3://"+bucket+"/")
	if !ok {
		t.Fatalf("status.url %q, want s3://%s/...", u, bucket)
	}
	url, err := s3.client(t, s3.accessKey, s3.secret).PresignedGetObject(context.Background(), bucket, key, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return key, url.String()
}
