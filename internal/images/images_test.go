package images

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/release"
)

// The release's images, pushed to hcp's registry over HTTP and pulled back as
// a container runtime would: platform set, entrypoint the payload's binary,
// the binary's bytes in the layer; built twice, the same digest.
func TestReleaseImagesPushAndPull(t *testing.T) {
	releases, err := hubtest.Releases()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := releases.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(t.TempDir())
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := reg.Load(context.Background(), []*release.Release{rel}); err != nil {
		t.Fatal(err)
	}
	// Nobody outside pushes.
	resp, err := http.Post(srv.URL+"/v2/pause/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a push from outside got %s, want 405", resp.Status)
	}
	imgs, err := FromRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	again, err := FromRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		ref, err := name.NewTag(host+"/"+img.Repository+":"+img.Tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		cf, err := pulled.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
			t.Errorf("%s: platform %s/%s", ref, cf.OS, cf.Architecture)
		}
		// The program the image runs is the payload's binary of that name;
		// busybox's image runs its shell.
		entry := "/bin/busybox"
		switch {
		case len(cf.Config.Entrypoint) >= 1:
			entry = cf.Config.Entrypoint[0]
		case !strings.HasSuffix(img.Repository, "/busybox") || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh":
			t.Fatalf("%s: entrypoint %v, command %v", ref, cf.Config.Entrypoint, cf.Config.Cmd)
		}
		if strings.Contains(img.Repository, "busybox") || strings.Contains(img.Repository, "agnhost") {
			if got := linkInImage(t, pulled, "/bin/sh"); got != "/bin/busybox" {
				t.Errorf("%s: /bin/sh links to %q", ref, got)
			}
		}
		want, err := os.ReadFile(rel.Binary(filepath.Base(entry)))
		if err != nil {
			t.Fatal(err)
		}
		if got := fileInImage(t, pulled, entry); !bytes.Equal(got, want) {
			t.Errorf("%s: %s in the image is %d bytes, the payload's %d", ref, entry, len(got), len(want))
		}
		d1, _ := img.Image.Digest()
		d2, _ := again[i].Image.Digest()
		if d1 != d2 {
			t.Errorf("%s: built twice, digests %s and %s", ref, d1, d2)
		}
		if img.Reference() != RegistryHost+"/"+img.Repository+":"+img.Tag {
			t.Errorf("reference %s", img.Reference())
		}
	}
}

// linkInImage is the target of a symbolic link in the image.
func linkInImage(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	h, _ := entryInImage(t, img, path)
	return h.Linkname
}

// fileInImage is the content of a file in the image's flattened file system.
func fileInImage(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	_, b := entryInImage(t, img, path)
	return b
}

// entryInImage is an entry of the image's flattened file system and its content.
func entryInImage(t *testing.T, img v1.Image, path string) (*tar.Header, []byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", path, err)
		}
		if "/"+strings.TrimPrefix(h.Name, "/") == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return h, b
		}
	}
}
