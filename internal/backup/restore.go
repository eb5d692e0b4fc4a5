package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Fetch reads and checks the archive at rawURL (file:///<path>, or http(s)://
// such as a presigned S3 URL) into dir.
func Fetch(ctx context.Context, rawURL, dir string) (*Contents, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", rawURL, err)
	}
	var r io.ReadCloser
	switch u.Scheme {
	case "file":
		if r, err = os.Open(u.Path); err != nil {
			return nil, err
		}
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
		}
		r = resp.Body
	default:
		return nil, fmt.Errorf("%q: use file:///<path> on the management plane or an http(s) URL", rawURL)
	}
	defer r.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return Read(r, dir)
}

// Member is an etcd member a snapshot is restored for.
type Member struct {
	Name, InitialCluster, Token, PeerURL string
}

// MemberOf reads a member from etcd's command-line arguments.
func MemberOf(args []string) Member {
	var m Member
	for _, a := range args {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch k {
		case "name":
			m.Name = v
		case "initial-cluster":
			m.InitialCluster = v
		case "initial-cluster-token":
			m.Token = v
		case "initial-advertise-peer-urls":
			m.PeerURL = v
		}
	}
	return m
}

// bumpRevision is how far a restored etcd's revision jumps past the
// snapshot's: more than any cluster writes between its last backup and a
// restore, so no revision a client saw before is handed out again.
const bumpRevision = 1_000_000_000

// RestoreData restores a snapshot into an etcd member's empty data
// directory with etcdutl: its revision bumped and the old revisions marked
// compacted, so that clients' watches from before start over rather than see
// revisions again. dataDir is left as it was when the restore fails.
func RestoreData(ctx context.Context, etcdutl, snapshot, dataDir string, m Member) error {
	// Restored beside where it goes, on the same file system (a pod's
	// volume is mounted at dataDir), then moved in.
	tmp := filepath.Join(dataDir, ".restore")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, etcdutl, "snapshot", "restore", snapshot, "--data-dir="+tmp,
		"--name="+m.Name, "--initial-cluster="+m.InitialCluster, "--initial-cluster-token="+m.Token,
		"--initial-advertise-peer-urls="+m.PeerURL, fmt.Sprintf("--bump-revision=%d", bumpRevision), "--mark-compacted")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("etcdutl snapshot restore: %v: %s", err, strings.TrimSpace(out.String()))
	}
	defer os.RemoveAll(tmp)
	if _, err := os.Stat(filepath.Join(dataDir, "member")); err == nil {
		return fmt.Errorf("%s already holds a member's data; it is kept", dataDir)
	}
	return os.Rename(filepath.Join(tmp, "member"), filepath.Join(dataDir, "member"))
}

// RestoreDir is where a control plane's archive is unpacked while it is
// created from a backup.
func RestoreDir(dataDir, namespace string) string {
	return filepath.Join(dataDir, "restore", namespace)
}

// RunRestore is an etcd member's init container on the Kubernetes runtime
// (hcp-operator etcd-restore): a member with no data yet gets the snapshot
// of the archive at rawURL, which must be of infraID (when not ""; the
// operator checked the archive before it created anything); a member with data
// keeps it. etcdArgs are the member's own arguments (its name, data
// directory and cluster). It says what it did.
func RunRestore(ctx context.Context, rawURL, infraID, etcdutl, workDir string, etcdArgs []string) (string, error) {
	dataDir := ""
	for _, a := range etcdArgs {
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dataDir = v
		}
	}
	if dataDir == "" {
		return "", fmt.Errorf("the member's arguments name no --data-dir")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member")); err == nil {
		return "the member has data; nothing to restore", nil
	}
	dir := filepath.Join(workDir, "restore")
	defer os.RemoveAll(dir)
	c, err := Fetch(ctx, rawURL, dir)
	if err != nil {
		return "", err
	}
	if infraID != "" && c.Manifest.InfraID != infraID {
		return "", fmt.Errorf("the archive is of infraID %q, not %q", c.Manifest.InfraID, infraID)
	}
	m := MemberOf(etcdArgs)
	if err := RestoreData(ctx, etcdutl, c.SnapshotPath, dataDir, m); err != nil {
		return "", err
	}
	return fmt.Sprintf("member %s restored from etcd revision %d of %s", m.Name, c.Manifest.Revision, c.Manifest.Cluster), nil
}
