// Package backup makes and reads a hosted cluster's backup archive: an etcd
// snapshot together with the Secrets that make the restored data usable (the
// root CA, the service account signing key, the secret encryption keys), and
// a manifest that says what the archive holds.
//
// An archive is a gzip-compressed tar file: manifest.json first, then
// snapshot.db, then secrets/<name>.json. The manifest names the cluster, its
// infrastructure ID and release, the snapshot's revision, and the size and
// SHA-256 of every other member, so a truncated, corrupted or foreign archive
// is refused before anything is restored from it.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Format is the archive format this package writes and reads.
const Format = 1

// Member names inside an archive.
const (
	ManifestName = "manifest.json"
	SnapshotName = "snapshot.db"
	secretsDir   = "secrets/"
)

// Manifest describes an archive.
type Manifest struct {
	Format int `json:"format"`
	// Cluster is the HostedCluster, <namespace>/<name>.
	Cluster string `json:"cluster"`
	InfraID string `json:"infraID"`
	Release string `json:"release"`
	// Revision is the etcd revision of the snapshot.
	Revision int64     `json:"revision"`
	Keys     int64     `json:"keys"`
	Time     time.Time `json:"time"`
	Snapshot File      `json:"snapshot"`
	Secrets  []File    `json:"secrets"`
}

// File is a member of an archive.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Write writes an archive of the snapshot file at snapshotPath and the
// Secrets to w, filling in m's Format, Snapshot and Secrets.
func Write(w io.Writer, m *Manifest, snapshotPath string, secrets []*corev1.Secret) error {
	m.Format = Format
	f, err := os.Open(snapshotPath)
	if err != nil {
		return err
	}
	defer f.Close()
	m.Snapshot = File{Name: SnapshotName}
	if m.Snapshot.Size, m.Snapshot.SHA256, err = digest(f); err != nil {
		return err
	}
	blobs := map[string][]byte{}
	m.Secrets = nil
	for _, s := range secrets {
		b, err := json.Marshal(&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: s.Labels, Annotations: s.Annotations}, Type: s.Type, Data: s.Data})
		if err != nil {
			return err
		}
		name := secretsDir + s.Name + ".json"
		sum := sha256.Sum256(b)
		blobs[name] = b
		m.Secrets = append(m.Secrets, File{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.Time, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := put(ManifestName, int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := put(SnapshotName, m.Snapshot.Size, f); err != nil {
		return err
	}
	for _, s := range m.Secrets {
		if err := put(s.Name, s.Size, strings.NewReader(string(blobs[s.Name]))); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Contents is what Read found in an archive.
type Contents struct {
	Manifest *Manifest
	// SnapshotPath is the snapshot, written under the directory given to
	// Read.
	SnapshotPath string
	Secrets      []*corev1.Secret
}

// Read reads and checks an archive, writing its snapshot into dir. Every
// member must be the size and SHA-256 the manifest says, and all of them
// must be there; a truncated or corrupted archive is an error that says so.
func Read(r io.Reader, dir string) (*Contents, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a backup archive (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	next := func() (*tar.Header, error) {
		h, err := tr.Next()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("the archive is truncated")
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the archive is corrupted: %w", err)
		}
		return h, err
	}
	h, err := next()
	if err != nil || h.Name != ManifestName {
		return nil, fmt.Errorf("the archive does not start with %s; is it an hcp backup?", ManifestName)
	}
	m := &Manifest{}
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(m); err != nil {
		return nil, fmt.Errorf("%s is unreadable: %w", ManifestName, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %d; this hcp reads format %d", ManifestName, m.Format, Format)
	}
	want := map[string]File{m.Snapshot.Name: m.Snapshot}
	for _, s := range m.Secrets {
		want[s.Name] = s
	}
	out := &Contents{Manifest: m}
	seen := map[string]bool{}
	for {
		h, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		f, ok := want[h.Name]
		if !ok || seen[h.Name] {
			return nil, fmt.Errorf("the archive holds %s, which its manifest does not list", h.Name)
		}
		seen[h.Name] = true
		var body io.Reader = tr
		var blob strings.Builder
		var file *os.File
		if h.Name == SnapshotName {
			out.SnapshotPath = filepath.Join(dir, SnapshotName)
			if file, err = os.OpenFile(out.SnapshotPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600); err != nil {
				return nil, err
			}
			body = io.TeeReader(tr, file)
		} else {
			body = io.TeeReader(io.LimitReader(tr, 1<<20), &blob)
		}
		size, sum, err := digest(body)
		if file != nil {
			if cerr := file.Close(); err == nil {
				err = cerr
			}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("the archive is truncated in %s", h.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
		if size != f.Size || sum != f.SHA256 {
			return nil, fmt.Errorf("%s does not match its checksum in the manifest (%d bytes, sha256 %s; the manifest says %d bytes, sha256 %s): the archive is corrupted",
				h.Name, size, short(sum), f.Size, short(f.SHA256))
		}
		if h.Name != SnapshotName {
			s := &corev1.Secret{}
			if err := json.Unmarshal([]byte(blob.String()), s); err != nil {
				return nil, fmt.Errorf("%s is unreadable: %w", h.Name, err)
			}
			out.Secrets = append(out.Secrets, s)
		}
	}
	var missing []string
	for name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("the archive is truncated: %s missing", strings.Join(missing, ", "))
	}
	return out, nil
}

func digest(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
