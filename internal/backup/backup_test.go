package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/release"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs the release's etcd on loopback and returns its client URL.
func startEtcd(t *testing.T, rel *release.Release) string {
	t.Helper()
	dir := t.TempDir()
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(rel.Binary(release.Etcd), "--name=m", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=m="+peer, "--log-level=error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return client
}

// etcdWithClient runs the default release's etcd and returns the release,
// the member's client URL and a client (closed when the test ends).
func etcdWithClient(t *testing.T) (*release.Release, string, *clientv3.Client) {
	t.Helper()
	store, err := hubtest.Releases()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := store.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep := startEtcd(t, rel)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return rel, ep, c
}

func TestSnapshotArchiveRoundTrip(t *testing.T) {
	rel, ep, c := etcdWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 100 {
		if _, err := c.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%03d", i), strings.Repeat("x", 100)); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if err := Snapshot(ctx, []string{"http://127.0.0.1:1", ep}, nil, snap); err != nil {
		t.Fatal(err)
	}
	st, err := Verify(ctx, rel.Binary(release.Etcdutl), snap)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision < 101 || st.TotalKey < 100 {
		t.Errorf("snapshot status %+v: want revision >= 101 and 100 keys", st)
	}

	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "root-ca"}, Data: map[string][]byte{"ca.crt": []byte("cert"), "ca.key": []byte("key")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "sa-signing-key", Annotations: map[string]string{"a": "b"}}, Data: map[string][]byte{"service-account.key": []byte("k")}},
	}
	m := &Manifest{Cluster: "clusters/example", InfraID: "example-1", Release: "1.37.2", Revision: st.Revision, Keys: st.TotalKey, Time: time.Now().UTC().Truncate(time.Second)}
	var archive bytes.Buffer
	if err := Write(&archive, m, snap, secrets); err != nil {
		t.Fatal(err)
	}
	out, err := Read(bytes.NewReader(archive.Bytes()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if out.Manifest.InfraID != "example-1" || out.Manifest.Revision != st.Revision || out.Manifest.Snapshot.Size == 0 || len(out.Secrets) != 2 {
		t.Errorf("manifest read back: %+v", out.Manifest)
	}
	if string(out.Secrets[0].Data["ca.key"]) != "key" || out.Secrets[1].Annotations["a"] != "b" {
		t.Errorf("secrets read back: %+v", out.Secrets)
	}
	a, _ := os.ReadFile(snap)
	b, _ := os.ReadFile(out.SnapshotPath)
	if !bytes.Equal(a, b) {
		t.Error("the snapshot read back differs")
	}

	// Bad archives are refused, saying why.
	raw := archive.Bytes()
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0xff
	var mismatch bytes.Buffer
	other := *m
	if err := Write(&mismatch, &other, snap, secrets); err != nil {
		t.Fatal(err)
	}
	mismatched := rewriteManifest(t, mismatch.Bytes(), func(s string) string {
		return strings.Replace(s, other.Snapshot.SHA256, strings.Repeat("0", 64), 1)
	})
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"not an archive", "not a backup archive", []byte("hello")},
		{"truncated", "truncated", raw[:len(raw)/2]},
		{"corrupted", "corrupt", flipped},
		{"checksum mismatch", "does not match its checksum", mismatched},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.data), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := Verify(ctx, rel.Binary(release.Etcdutl), filepath.Join(dir, "nothing")); err == nil {
		t.Error("etcdutl verified a missing file")
	}
	garbage := filepath.Join(dir, "garbage.db")
	_ = os.WriteFile(garbage, bytes.Repeat([]byte("garbage!"), 1024), 0o600)
	if _, err := Verify(ctx, rel.Binary(release.Etcdutl), garbage); err == nil {
		t.Error("etcdutl verified a file that is not a database")
	}
}

// rewriteManifest edits the manifest of an archive and writes the archive
// again, as someone tampering with it would.
func rewriteManifest(t *testing.T, archive []byte, edit func(string) string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest is the first member; its header holds its size, so the
	// edit keeps the length.
	edited := []byte(edit(string(plain)))
	if len(edited) != len(plain) {
		t.Fatal("the edit changed the archive's length")
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(edited)
	_ = zw.Close()
	return out.Bytes()
}

func TestDirPutListPrune(t *testing.T) {
	ctx := context.Background()
	d := Dir(filepath.Join(t.TempDir(), "backups"))
	for i, name := range []string{"ns-a-1.tar.gz", "ns-a-2.tar.gz", "ns-a-3.tar.gz", "ns-b-1.tar.gz"} {
		u, err := d.Put(ctx, name, strings.NewReader(strings.Repeat("x", i+1)), int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "file://") || !strings.HasSuffix(u, "/backups/"+name) {
			t.Errorf("url %s", u)
		}
		// Distinct modification times order the archives.
		at := time.Now().Add(time.Duration(i-10) * time.Minute)
		_ = os.Chtimes(filepath.Join(string(d), name), at, at)
	}
	_ = os.WriteFile(filepath.Join(string(d), "ns-a-4.tar.gz.part"), []byte("half"), 0o600)
	gone, err := Prune(ctx, d, "ns-a-", 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(gone, ",") != "ns-a-1.tar.gz" {
		t.Errorf("pruned %v, want the oldest of ns-a", gone)
	}
	left, _ := d.List(ctx, "ns-")
	var names []string
	for _, o := range left {
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "ns-a-2.tar.gz,ns-a-3.tar.gz,ns-b-1.tar.gz" {
		t.Errorf("left %v", names)
	}
}

func TestRestoreDataBumpsTheRevision(t *testing.T) {
	rel, ep, c := etcdWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put, err := c.Put(ctx, "/registry/secrets/default/keep", "value")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if err := Snapshot(ctx, []string{ep}, nil, snap); err != nil {
		t.Fatal(err)
	}

	// Restored as a member of a new one-member cluster, it starts with the
	// data, past every revision the old cluster handed out.
	peer, client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	args := []string{"--name=etcd-0", "--initial-cluster=etcd-0=" + peer, "--initial-cluster-token=ns", "--initial-advertise-peer-urls=" + peer}
	m := MemberOf(args)
	if m.Name != "etcd-0" || m.Token != "ns" || m.PeerURL != peer {
		t.Fatalf("MemberOf: %+v", m)
	}
	data := filepath.Join(dir, "data")
	if err := RestoreData(ctx, rel.Binary(release.Etcdutl), snap, data, m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, ".restore")); !os.IsNotExist(err) {
		t.Errorf("the restore's scratch directory is left: %v", err)
	}
	cmd := exec.Command(rel.Binary(release.Etcd), append(args, "--data-dir="+data, "--listen-peer-urls="+peer,
		"--listen-client-urls="+client, "--advertise-client-urls="+client, "--log-level=error")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c2, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var got *clientv3.GetResponse
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got, err = c2.Get(ctx, "/registry/secrets/default/keep"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "value" {
		t.Fatalf("the restored member: %v %+v", err, got)
	}
	if got.Header.Revision < put.Header.Revision+bumpRevision {
		t.Errorf("revision %d after the restore, want at least %d", got.Header.Revision, put.Header.Revision+bumpRevision)
	}
	// A watch from a revision of the old cluster is refused as compacted.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for resp := range c2.Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision)) {
		if resp.CompactRevision == 0 {
			t.Errorf("a watch from revision %d was not refused as compacted: %+v", put.Header.Revision, resp)
		}
		break
	}
	// A second restore into a directory with data is refused by etcdutl and
	// leaves the data as it was.
	if err := RestoreData(ctx, rel.Binary(release.Etcdutl), snap, data, m); err == nil {
		t.Error("a restore over existing data succeeded")
	}
}

// An etcd pod's restore init container: a member without data gets the
// archive's snapshot from an http URL; one with data keeps it; an archive of
// another infraID is refused.
func TestRunRestore(t *testing.T) {
	rel, ep, c := etcdWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Put(ctx, "/registry/configmaps/default/a", "1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if err := Snapshot(ctx, []string{ep}, nil, snap); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := Write(&archive, &Manifest{Cluster: "clusters/example", InfraID: "example-abcde", Release: rel.Name}, snap, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(archive.Bytes()) }))
	defer srv.Close()
	data := filepath.Join(dir, "data")
	args := []string{"--name=etcd-0", "--data-dir=" + data, "--initial-cluster=etcd-0=http://127.0.0.1:2380",
		"--initial-cluster-token=ns", "--initial-advertise-peer-urls=http://127.0.0.1:2380"}
	etcdutl := rel.Binary(release.Etcdutl)
	if _, err := RunRestore(ctx, srv.URL, "someone-else", etcdutl, filepath.Join(dir, "work"), args); err == nil || !strings.Contains(err.Error(), "infraID") {
		t.Errorf("an archive of another infraID: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "member")); !os.IsNotExist(err) {
		t.Fatalf("a refused archive left member data: %v", err)
	}
	msg, err := RunRestore(ctx, srv.URL, "example-abcde", etcdutl, filepath.Join(dir, "work"), args)
	if err != nil || !strings.Contains(msg, "member etcd-0 restored from etcd revision") {
		t.Fatalf("restore: %v %q", err, msg)
	}
	if _, err := os.Stat(filepath.Join(data, "member", "snap", "db")); err != nil {
		t.Errorf("no member data: %v", err)
	}
	if msg, err := RunRestore(ctx, srv.URL+"/gone", "example-abcde", etcdutl, filepath.Join(dir, "work"), args); err != nil || !strings.Contains(msg, "has data") {
		t.Errorf("a member with data: %v %q", err, msg)
	}
	if _, err := RunRestore(ctx, srv.URL, "", etcdutl, dir, args[:1]); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("no data directory: %v", err)
	}
}

func TestCheckPodURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://s3.example.com/b/a.tar.gz?X-Amz-Signature=0": true, "http://192.0.2.1:8333/b/a.tar.gz": true,
		"file:///var/lib/hcp/backups/a.tar.gz": false, "s3://b/a.tar.gz": false, "": false,
	} {
		if err := CheckPodURL(u); (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "use an http(s) URL") {
			t.Errorf("CheckPodURL(%q) = %v", u, err)
		}
	}
}
