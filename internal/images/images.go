// Package images builds the OCI images that hosted clusters' nodes run from the
// release payload, without Docker or a container registry on the internet, and
// serves them from an OCI registry of the management plane.
//
// Each image is one layer holding a payload binary, with its platform set (a
// container runtime refuses an image whose config names no os and
// architecture) and the binary as its entrypoint:
//
//	imgs, err := images.FromRelease(rel)
//	reg := images.NewRegistry(dir)            // an http.Handler: serve it on the lab network
//	err = reg.Load(ctx, releases)             // build and put in every release's images
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hcp-dev/hcp/internal/release"
)

// RegistryHost is the name nodes pull hcp's images by. It resolves nowhere:
// each node's container runtime maps it to the management plane's registry.
const RegistryHost = "registry.hcp.test"

// Spec is an image to build: its repository and tag, the files of its one
// layer (path in the image → file on disk) and its entrypoint.
type Spec struct {
	Repository string
	Tag        string
	Files      map[string]string
	// Links are symbolic links in the image (path → target).
	Links      map[string]string
	Entrypoint []string
	Cmd        []string
}

// Image is a built image and where it goes.
type Image struct {
	Repository string
	Tag        string
	Image      v1.Image
}

// Reference is the image's name in hcp's registry, e.g.
// registry.hcp.test/pause:1.37.2.
func (i Image) Reference() string { return Reference(i.Repository, i.Tag) }

// Reference names an image of hcp's registry.
func Reference(repository, tag string) string { return RegistryHost + "/" + repository + ":" + tag }

// Specs are the images of a release: the pods' sandbox (pause), CoreDNS,
// kube-proxy and konnectivity-agent, tagged with their versions.
func Specs(rel *release.Release) []Spec {
	bin := func(name string) map[string]string {
		return map[string]string{"/usr/local/bin/" + name: rel.Binary(name)}
	}
	specs := []Spec{
		{Repository: "pause", Tag: rel.Name, Files: bin("pause"), Entrypoint: []string{"/usr/local/bin/pause"}},
		{Repository: "coredns", Tag: rel.Components["coredns"], Files: bin("coredns"), Entrypoint: []string{"/usr/local/bin/coredns"}},
		{Repository: "kube-proxy", Tag: rel.Components["kube-proxy"], Files: bin("kube-proxy"), Entrypoint: []string{"/usr/local/bin/kube-proxy"}},
		{Repository: "konnectivity-agent", Tag: rel.Components[release.KonnectivityAgent], Files: bin(release.KonnectivityAgent),
			Entrypoint: []string{"/usr/local/bin/" + release.KonnectivityAgent}},
	}
	// The test images, under the repository paths of their upstream names
	// (registry.k8s.io/e2e-test-images/agnhost, docker.io/library/busybox),
	// so a mirror of those registries maps them here. Both have busybox's
	// shell and tools.
	if rel.Components["agnhost"] != "" && rel.Components["busybox"] != "" {
		applets := busyboxLinks(rel.Binary("busybox"))
		agnhost := map[string]string{"/agnhost": rel.Binary("agnhost"), "/bin/busybox": rel.Binary("busybox")}
		specs = append(specs,
			Spec{Repository: "e2e-test-images/agnhost", Tag: rel.Components["agnhost"], Files: agnhost, Links: applets, Entrypoint: []string{"/agnhost"}},
			Spec{Repository: "library/busybox", Tag: rel.Components["busybox"], Files: map[string]string{"/bin/busybox": rel.Binary("busybox")},
				Links: applets, Cmd: []string{"sh"}})
		// Stand-ins for the other images Kubernetes' conformance specs
		// name (k8s.io/kubernetes test/utils/image at the release's
		// version), under their names: Debian's busybox for the suite's
		// busybox, hcp's pause for registry.k8s.io/pause, and agnhost
		// serving HTTP on port 80 for nginx, which no Go module builds.
		busybox := map[string]string{"/bin/busybox": rel.Binary("busybox")}
		specs = append(specs,
			Spec{Repository: "e2e-test-images/busybox", Tag: "1.37.0-2", Files: busybox, Links: applets, Cmd: []string{"sh"}},
			Spec{Repository: "pause", Tag: "3.10.2", Files: bin("pause"), Entrypoint: []string{"/usr/local/bin/pause"}})
		for _, tag := range []string{"1.27.0-2", "1.28.0-2"} {
			specs = append(specs, Spec{Repository: "e2e-test-images/nginx", Tag: tag, Files: agnhost, Links: applets,
				Entrypoint: []string{"/agnhost", "netexec", "--http-port=80", "--udp-port=-1"}})
		}
	}
	return specs
}

// busyboxLinks are the links of busybox's applets (/bin/sh → /bin/busybox,
// ...), as its --list-full says.
func busyboxLinks(busybox string) map[string]string {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil
	}
	links := map[string]string{}
	for _, p := range strings.Fields(string(out)) {
		if p != "bin/busybox" {
			links["/"+p] = "/bin/busybox"
		}
	}
	return links
}

// FromRelease builds every image of a release.
func FromRelease(rel *release.Release) ([]Image, error) {
	var out []Image
	for _, s := range Specs(rel) {
		img, err := Build(s)
		if err != nil {
			return nil, err
		}
		out = append(out, Image{Repository: s.Repository, Tag: s.Tag, Image: img})
	}
	return out, nil
}

// epoch is every file's and the image's creation time, so a build of the same
// files is the same image (the same digest).
var epoch = time.Unix(0, 0).UTC()

// Build makes a one-layer image of a Spec for this machine's platform.
func Build(s Spec) (v1.Image, error) {
	if s.Repository == "" || s.Tag == "" || (len(s.Entrypoint) == 0 && len(s.Cmd) == 0) {
		return nil, fmt.Errorf("image %q:%q: a repository, a tag and an entrypoint or command are needed", s.Repository, s.Tag)
	}
	layerTar, err := tarFiles(s.Files, s.Links)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Repository, err)
	}
	// Uncompressed: nodes pull over the lab network, and hashing the payload's
	// binaries is all the build costs.
	layer := static.NewLayer(layerTar, types.OCIUncompressedLayer)
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint, cf.Config.Cmd = s.Entrypoint, s.Cmd
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	return mutate.ConfigFile(img, cf)
}

// tarFiles is a tar of the files and links (with their parent directories),
// in path order. Busybox-like images also get /tmp.
func tarFiles(files, links map[string]string) ([]byte, error) {
	paths := make([]string, 0, len(files)+len(links))
	for p := range files {
		paths = append(paths, p)
	}
	for p := range links {
		if _, dup := files[p]; !dup {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	dir := func(d string, mode int64) error {
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: mode, ModTime: epoch})
	}
	if len(links) > 0 {
		if err := dir("/tmp", 0o1777); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		var parents []string
		for d := path.Dir(p); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if err := dir(d, 0o755); err != nil {
				return nil, err
			}
		}
		src, isFile := files[p]
		if !isFile {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: p[1:], Linkname: links[p], Mode: 0o777, ModTime: epoch}); err != nil {
				return nil, err
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: 0o755, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Registry is hcp's image registry: an OCI registry (the distribution API)
// that nodes pull from and nobody outside pushes to. The images of the
// releases are put in by Load, in-process; blobs are kept in a directory.
type Registry struct {
	h     http.Handler
	ready chan struct{}
	err   error
}

// NewRegistry is an empty registry keeping blobs under blobDir ("" keeps them
// in memory).
func NewRegistry(blobDir string) *Registry {
	opts := []registry.Option{registry.Logger(log.New(io.Discard, "", 0))}
	if blobDir != "" && os.MkdirAll(blobDir, 0o700) == nil {
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(blobDir)))
	}
	return &Registry{h: registry.New(opts...), ready: make(chan struct{})}
}

// Load builds the images of the releases and puts them in the registry; pulls
// wait for it. It can be called once.
func (r *Registry) Load(ctx context.Context, rels []*release.Release) error {
	defer close(r.ready)
	for _, rel := range rels {
		imgs, err := FromRelease(rel)
		if err != nil {
			r.err = err
			return err
		}
		if err := push(ctx, r.h, imgs); err != nil {
			r.err = err
			return err
		}
	}
	return nil
}

// ServeHTTP answers pulls (GET and HEAD under /v2/); it waits up to half a
// minute for Load to finish.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, `{"errors":[{"code":"UNSUPPORTED","message":"hcp's registry serves pulls only"}]}`, http.StatusMethodNotAllowed)
		return
	}
	select {
	case <-r.ready:
	case <-req.Context().Done():
		return
	case <-time.After(30 * time.Second):
		http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"the images are still being built; retry"}]}`, http.StatusServiceUnavailable)
		return
	}
	if r.err != nil && req.URL.Path != "/v2/" {
		http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"building the images failed: `+strings.ReplaceAll(r.err.Error(), `"`, `'`)+`"}]}`, http.StatusServiceUnavailable)
		return
	}
	r.h.ServeHTTP(w, req)
}

// push writes images into a registry handler in-process.
func push(ctx context.Context, h http.Handler, imgs []Image) error {
	tr := handlerTransport{h}
	for _, i := range imgs {
		ref, err := name.NewTag(i.Reference(), name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, i.Image, remote.WithContext(ctx), remote.WithTransport(tr)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}

// handlerTransport sends requests straight to a handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	req = req.Clone(req.Context())
	if req.Body == nil {
		req.Body = http.NoBody
	} else {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
