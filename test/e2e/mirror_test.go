package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hcp-dev/hcp/internal/release"
)

// hcp release mirror pushes the control plane and operator images to a
// registry that wants credentials, with the docker config's; what a client
// pulls back is the payload, by the digest release.json records, and hcp
// install renders the references it printed.
func TestReleaseMirror(t *testing.T) {
	t.Parallel()
	const user, password = "mirror", "s3cret"
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(registry.NewDiskBlobHandler(t.TempDir())))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	to := host + "/mirror/hcp"

	dockerConfig := func(auth string) []string {
		dir := t.TempDir()
		cfg := map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(auth))}}}
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return append(os.Environ(), "DOCKER_CONFIG="+dir)
	}
	mirror := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "hcp"), append([]string{"release", "mirror"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Bad input and wrong credentials are refused with what to do.
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{nil, nil, "--to: is required"},
		{[]string{"--to", to + ":v1", "--insecure"}, nil, "names a tag or digest"},
		{[]string{"--to", "hcp", "--insecure"}, nil, "has no repository"},
		{[]string{"--to", "mirror/hcp", "--insecure"}, nil, "requires the registry to be explicitly defined"},
		{[]string{"--to", to, "--insecure", "--release-image", "hcp.dev/release:0.0.1"}, nil, "--release-image: release not found: hcp.dev/release:0.0.1 (available: " + availableReleases(t)},
		{[]string{"--to", to, "--insecure"}, dockerConfig(user + ":wrong"), "docker login"},
	} {
		out, err := mirror(tc.env, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("hcp release mirror %s: %v, output %q; want an error with %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}

	out, err := mirror(dockerConfig(user+":"+password), "--to", to, "--insecure")
	if err != nil {
		t.Fatalf("hcp release mirror: %v\n%s", err, out)
	}
	cpDigest := rel.Images["control-plane"]
	if !strings.HasPrefix(cpDigest, "sha256:") {
		t.Fatalf("release.json records no control plane image digest: %v", rel.Images)
	}
	cpRef := to + "/control-plane@" + cpDigest
	if !strings.Contains(out, cpRef) {
		t.Fatalf("mirror did not print %s:\n%s", cpRef, out)
	}
	var opRef string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, to+"/operator@sha256:") {
			opRef = f
		}
	}
	if opRef == "" || !strings.Contains(out, "hcp install --operator-image "+opRef+" --image-repository "+to) {
		t.Fatalf("mirror did not print the operator reference and the install command:\n%s", out)
	}

	// Pull both back as a client with the same credentials.
	keychain := authn.NewMultiKeychain(staticKeychain{host: host, auth: &authn.Basic{Username: user, Password: password}})
	pull := func(ref string) v1.Image {
		t.Helper()
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r, remote.WithAuthFromKeychain(keychain))
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		return img
	}
	cp := pull(cpRef)
	files := imageFiles(t, cp)
	for _, p := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "konnectivity-server", "kubectl"} {
		if got, want := files["usr/local/bin/"+p], fileSum(t, rel.Binary(p)); got != want {
			t.Errorf("control-plane image: /usr/local/bin/%s is %q, want the payload's (%s)", p, got, want)
		}
	}
	if cf, _ := cp.ConfigFile(); cf.Config.User != "65532:65532" {
		t.Errorf("control-plane image runs as %q, want 65532:65532", cf.Config.User)
	}

	op := pull(opRef)
	files = imageFiles(t, op)
	for _, p := range []string{"hcp-operator", "hcp", "hcp-agent"} {
		if got, want := files["usr/local/bin/"+p], fileSum(t, filepath.Join(binDir, p)); got != want {
			t.Errorf("operator image: /usr/local/bin/%s differs from %s", p, filepath.Join(binDir, p))
		}
	}
	payload := "usr/share/hcp/releases/" + rel.Name + "/"
	for _, p := range []string{"kubelet", "containerd", "runc", "cni/bridge", "coredns"} {
		if got, want := files[payload+p], fileSum(t, rel.Binary(p)); got != want {
			t.Errorf("operator image: %s%s differs from the payload's", payload, p)
		}
	}
	for _, p := range []string{"agnhost", "busybox", "tools/usr/bin/dig", "kube-apiserver", "etcd"} {
		if _, ok := files[payload+p]; ok {
			t.Errorf("operator image holds %s%s, which only test images or control plane pods run", payload, p)
		}
	}
	cf, _ := op.ConfigFile()
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/usr/local/bin/hcp-operator" || !slices.Contains(cf.Config.Env, "HCP_RELEASE_DIR=/usr/share/hcp/releases") {
		t.Errorf("operator image: entrypoint %v, env %v", cf.Config.Entrypoint, cf.Config.Env)
	}
	// The payload's release.json in the image: the same release, its test
	// programs not listed.
	var inImage release.Release
	if err := json.Unmarshal([]byte(imageFile(t, op, payload+"release.json")), &inImage); err != nil {
		t.Fatal(err)
	}
	if inImage.Image != rel.Image || inImage.Images["control-plane"] != cpDigest || inImage.Components["kubelet"] != rel.Components["kubelet"] || inImage.Components["agnhost"] != "" {
		t.Errorf("operator image's release.json: %+v", inImage)
	}

	// hcp install renders those references.
	render, err := exec.Command(filepath.Join(binDir, "hcp"), "install", "render", "--operator-image", opRef, "--image-repository", to).CombinedOutput()
	if err != nil {
		t.Fatalf("hcp install render: %v\n%s", err, render)
	}
	for _, want := range []string{"image: " + opRef, "--image-repository=" + to} {
		if !strings.Contains(string(render), want) {
			t.Errorf("hcp install render does not contain %q", want)
		}
	}
	bad, err := exec.Command(filepath.Join(binDir, "hcp"), "install", "render", "--image-repository", to+"@sha256:00").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "--image-repository:") {
		t.Errorf("hcp install render --image-repository with a digest: %v, %s", err, bad)
	}
}

type staticKeychain struct {
	host string
	auth authn.Authenticator
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// eachFile calls fn with each regular file of an image's layers, bottom
// first.
func eachFile(t *testing.T, img v1.Image, fn func(path string, r io.Reader)) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				fn(h.Name, tr)
			}
		}
		rc.Close()
	}
}

// imageFiles is the sha256 of each regular file of an image, by path.
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	out := map[string]string{}
	eachFile(t, img, func(path string, r io.Reader) {
		s := sha256.New()
		if _, err := io.Copy(s, r); err != nil {
			t.Fatal(err)
		}
		out[path] = fmt.Sprintf("%x", s.Sum(nil))
	})
	return out
}

// imageFile is one file of an image.
func imageFile(t *testing.T, img v1.Image, path string) string {
	t.Helper()
	var content *bytes.Buffer
	eachFile(t, img, func(p string, r io.Reader) {
		if p == path {
			content = &bytes.Buffer{}
			_, _ = io.Copy(content, r)
		}
	})
	if content == nil {
		t.Fatalf("%s is not in the image", path)
	}
	return content.String()
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", s.Sum(nil))
}
