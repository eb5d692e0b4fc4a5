package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/release"
)

// The release's images, pushed to hcp's registry over HTTP and pulled back as
// a container runtime would: platform set, the payload's files in their
// layers, busybox's shell, setuid and user where asked; built twice, the same
// digests; layers shared between images stored once.
func TestReleaseImagesPushAndPull(t *testing.T) {
	rel := defaultRelease(t)
	regDir := t.TempDir()
	reg := NewRegistry(regDir)
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
	imgs, err := FromRelease(rel, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	again, err := FromRelease(rel, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pulled := map[string]v1.Image{}
	layers := map[v1.Hash]bool{}
	for i, img := range imgs {
		ref, err := name.NewTag(host+"/"+img.Repository+":"+img.Tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		p, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		pulled[img.Repository+":"+img.Tag] = p
		cf, err := p.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
			t.Errorf("%s: platform %s/%s", ref, cf.OS, cf.Architecture)
		}
		if len(cf.Config.Entrypoint) == 0 && len(cf.Config.Cmd) == 0 {
			t.Errorf("%s: neither entrypoint nor command", ref)
		}
		ls, err := p.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			d, _ := l.Digest()
			layers[d] = true
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
	// Each layer is one blob in the registry's store.
	blobs, _ := filepath.Glob(filepath.Join(regDir, "sha256", "*"))
	if len(blobs) < len(layers) {
		t.Errorf("%d layers, %d blobs", len(layers), len(blobs))
	}
	image := func(ref string) v1.Image {
		t.Helper()
		img, ok := pulled[ref]
		if !ok {
			t.Fatalf("no image %s", ref)
		}
		return img
	}
	payload := func(name string) []byte {
		b, err := os.ReadFile(rel.Binary(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	agnhost := image("e2e-test-images/agnhost:" + rel.Components["agnhost"])
	for ref, files := range map[string]map[string]string{
		"pause:" + rel.Name:                                    {"/usr/local/bin/pause": "pause"},
		"coredns:" + rel.Components["coredns"]:                 {"/usr/local/bin/coredns": "coredns"},
		"e2e-test-images/agnhost:" + rel.Components["agnhost"]: {"/agnhost": "agnhost", "/bin/busybox": "busybox"},
		"library/busybox:" + rel.Components["busybox"]:         {"/bin/busybox": "busybox"},
		"e2e-test-images/sample-apiserver:1.29.2":              {"/sample-apiserver": "sample-apiserver"},
		"e2e-test-images/kitten:1.8":                           {"/kitten.jpg": "testdata/kitten/kitten.jpg", "/agnhost": "agnhost"},
		"e2e-test-images/glibc-dns-testing:2.1.1":              {"/usr/bin/dig": "tools/usr/bin/dig", "/usr/bin/getent": "tools/usr/bin/getent"},
	} {
		for path, name := range files {
			if got := fileInImage(t, image(ref), path); !bytes.Equal(got, payload(name)) {
				t.Errorf("%s: %s is %d bytes, the payload's %s %d", ref, path, len(got), name, len(payload(name)))
			}
		}
	}
	for _, tool := range []string{"/usr/bin/dig", "/usr/bin/curl", "/usr/bin/nc", "/bin/bash", "/lib64/ld-linux-x86-64.so.2"} {
		if h, _ := entryInImage(t, agnhost, tool); h.Typeflag != tar.TypeReg {
			t.Errorf("agnhost: %s is not a file", tool)
		}
	}
	// Busybox's shell and tools. Its shell passes on environment variables
	// whose names are not shell names (envFrom prefixes such as "1-").
	env := exec.Command(rel.Binary("busybox"), "sh", "-c", "env")
	env.Env = []string{"1-data=value", "#@!data=value"}
	if out, _ := env.Output(); !strings.Contains(string(out), "1-data=value") || !strings.Contains(string(out), "#@!data=value") {
		t.Errorf("busybox sh drops environment variables that are not shell names: env printed %q", out)
	}
	for _, applet := range []string{"/bin/sh", "/bin/ls", "/bin/sysctl"} {
		if got := linkInImage(t, agnhost, applet); got != "/bin/busybox" {
			t.Errorf("agnhost: %s links to %q", applet, got)
		}
	}
	if got := linkInImage(t, agnhost, "/agnhost-2"); got != "agnhost" {
		t.Errorf("agnhost: /agnhost-2 links to %q", got)
	}
	if got := fileInImage(t, agnhost, "/localhost.crt"); !bytes.Equal(got, payload("testdata/agnhost/localhost.crt")) {
		t.Errorf("agnhost: /localhost.crt is not the porter's certificate")
	}
	if cf, _ := agnhost.ConfigFile(); len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "pause" {
		t.Errorf("agnhost's command is %v, want [pause]", cf.Config.Cmd)
	}
	if h, _ := entryInImage(t, image("e2e-test-images/nonewprivs:1.4"), "/usr/local/bin/nnp"); h.Mode != 0o4755 {
		t.Errorf("nnp's mode is %o, want setuid 4755", h.Mode)
	}
	if cf, _ := image("e2e-test-images/nonroot:1.5").ConfigFile(); cf.Config.User != "1234" {
		t.Errorf("nonroot runs as %q", cf.Config.User)
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

// defaultRelease is the newest release payload built by make.
func defaultRelease(t *testing.T) *release.Release {
	t.Helper()
	releases, err := hubtest.Releases()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := releases.Default()
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// A registry loaded on first use builds nothing until it is used; the first
// pull builds the images (once, however many pulls wait) and gets them; Warm
// after that builds nothing again. A failed build is told to every pull.
func TestRegistryBuildsOnFirstUse(t *testing.T) {
	rel := defaultRelease(t)
	dir := t.TempDir()
	reg := NewRegistry(dir)
	var lists atomic.Int32
	reg.LoadOnFirstUse(context.Background(), func() ([]*release.Release, error) {
		lists.Add(1)
		return []*release.Release{rel}, nil
	}, logr.Discard())
	srv := httptest.NewServer(reg)
	defer srv.Close()
	if blobs, _ := filepath.Glob(filepath.Join(dir, "sha256", "*")); len(blobs) != 0 || lists.Load() != 0 {
		t.Fatalf("before any pull: %d blobs built, releases listed %d times; want none", len(blobs), lists.Load())
	}
	img := Specs(rel)[0]
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/v2/" + img.Repository + "/manifests/" + img.Tag)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("pull of %s:%s: %s, want 200 OK", img.Repository, img.Tag, resp.Status)
			}
		})
	}
	wg.Wait()
	reg.Warm()
	if n := lists.Load(); n != 1 {
		t.Errorf("the images were built %d times, want once", n)
	}

	failing := NewRegistry(t.TempDir())
	failing.LoadOnFirstUse(context.Background(), func() ([]*release.Release, error) {
		return nil, errors.New("no release payload")
	}, logr.Discard())
	failing.Warm()
	rec := httptest.NewRecorder()
	failing.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/pause/manifests/x", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no release payload") {
		t.Errorf("pull from a registry whose build failed: %d %s, want 503 naming the error", rec.Code, rec.Body.String())
	}
}
