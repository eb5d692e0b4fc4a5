// Package images builds the OCI images that hosted clusters' nodes run from the
// release payload, without Docker or a container registry on the internet, and
// serves them from an OCI registry of the management plane.
//
// Images are layers of payload files (layers shared between images are built
// and stored once), with their platform set (a container runtime refuses an
// image whose config names no os and architecture) and a payload binary as
// their entrypoint:
//
//	imgs, err := images.FromRelease(rel, dir)   // layers are written to dir
//	reg := images.NewRegistry(dir)            // an http.Handler: serve it on the lab network
//	err = reg.Load(ctx, releases)             // build and put in every release's images
//
// A management plane defers the build to the first pull (LoadOnFirstUse):
// hashing every binary of every release costs a CPU second or more, which a
// management plane that is still starting, and has no node yet, spends better
// on its API server.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hcp-dev/hcp/internal/release"
)

// RegistryHost is the name nodes pull hcp's images by. It resolves nowhere:
// each node's container runtime maps it to the management plane's registry.
const RegistryHost = "registry.hcp.test"

// Layer is a set of files of an image. Images built together that name the
// same Layer share its blob.
type Layer struct {
	// Files are files from disk (path in the image → file on disk).
	Files map[string]string
	// Trees are directories on disk whose files go at the image's root
	// under the same paths.
	Trees []string
	// Contents are small files written as given (path → content).
	Contents map[string]string
	// Links are symbolic links (path → target).
	Links map[string]string
	// Dirs are empty directories.
	Dirs []string
	// Modes are file modes other than 0755 (Files, Trees) and 0644
	// (Contents), e.g. a setuid program's 04755.
	Modes map[string]int64
}

// Spec is an image to build: its repository and tag, its layers (bottom
// first), and how it runs.
type Spec struct {
	Repository string
	Tag        string
	Layers     []*Layer
	Entrypoint []string
	Cmd        []string
	// User is the user the image runs as ("" is root).
	User string
	// Env is the environment beside PATH (NAME=value).
	Env []string
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
// kube-proxy and konnectivity-agent, tagged with their versions, and, when
// the release has the test programs, the images the end-to-end and
// conformance tests run.
func Specs(rel *release.Release) []Spec {
	bin := func(name string) []*Layer {
		return []*Layer{{Files: map[string]string{"/usr/local/bin/" + name: rel.Binary(name)}}}
	}
	pause := bin("pause")
	specs := []Spec{
		{Repository: "pause", Tag: rel.Name, Layers: pause, Entrypoint: []string{"/usr/local/bin/pause"}},
		{Repository: "coredns", Tag: rel.Components["coredns"], Layers: bin("coredns"), Entrypoint: []string{"/usr/local/bin/coredns"}},
		{Repository: "kube-proxy", Tag: rel.Components["kube-proxy"], Layers: bin("kube-proxy"), Entrypoint: []string{"/usr/local/bin/kube-proxy"}},
		{Repository: "konnectivity-agent", Tag: rel.Components[release.KonnectivityAgent], Layers: bin(release.KonnectivityAgent),
			Entrypoint: []string{"/usr/local/bin/" + release.KonnectivityAgent}},
	}
	if rel.Components["agnhost"] == "" || rel.Components["busybox"] == "" {
		return specs
	}
	return append(specs, testSpecs(rel, pause)...)
}

// testSpecs are the test images, under the repository paths of their
// upstream names (registry.k8s.io/e2e-test-images/..., docker.io/library/...)
// so that a mirror of those registries maps them here, with the tags
// Kubernetes' test suite names at the release's version (k8s.io/kubernetes
// test/utils/image). They share layers: busybox (shell and tools),
// Debian's dig, getent, curl, bash and nc with their libraries, and agnhost.
// Images that no Go module builds are stand-ins made of those, as the
// comments say.
func testSpecs(rel *release.Release, pause []*Layer) []Spec {
	// with is layers plus more, never sharing the array of layers.
	with := func(layers []*Layer, more ...*Layer) []*Layer {
		return append(layers[:len(layers):len(layers)], more...)
	}
	busybox := &Layer{Files: map[string]string{"/bin/busybox": rel.Binary("busybox")}, Links: busyboxLinks(rel.Binary("busybox"))}
	base := []*Layer{busybox}
	if rel.Components["dig"] != "" {
		base = append(base, &Layer{Trees: []string{rel.Binary("tools")}})
	}
	// agnhost as upstream's image has it: its second name, the user and
	// group of the supplemental groups specs, an uploads directory and the
	// porter's certificate, which file-server readiness probes fetch.
	agnhostFiles := &Layer{Files: map[string]string{"/agnhost": rel.Binary("agnhost")}, Links: map[string]string{"/agnhost-2": "agnhost"},
		Contents: map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
			"/etc/group":  "root:x:0:root\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnobody:x:65534:\n",
		},
		Dirs: []string{"/uploads"}}
	if rel.Components["sample-apiserver"] != "" {
		agnhostFiles.Trees = []string{rel.Binary(filepath.Join("testdata", "agnhost"))}
		agnhostFiles.Modes = map[string]int64{"/localhost.crt": 0o644, "/localhost.key": 0o644}
	}
	agnhost := with(base, agnhostFiles)
	sh := []string{"sh"}
	specs := []Spec{
		{Repository: "e2e-test-images/agnhost", Tag: rel.Components["agnhost"], Layers: agnhost, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}},
		// The suite's previous agnhost (rolling updates from it to the
		// current one): the same program under the older tag.
		{Repository: "e2e-test-images/agnhost", Tag: "2.55", Layers: agnhost, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}},
		{Repository: "library/busybox", Tag: rel.Components["busybox"], Layers: base, Cmd: sh},
		{Repository: "e2e-test-images/busybox", Tag: "1.37.0-2", Layers: base, Cmd: sh},
		{Repository: "e2e-test-images/busybox", Tag: "1.36.1-1", Layers: base, Cmd: sh},
		{Repository: "pause", Tag: "3.10.2", Layers: pause, Entrypoint: []string{"/usr/local/bin/pause"}},
		// DNS probes with glibc's resolver: Debian's getent and dig.
		{Repository: "e2e-test-images/glibc-dns-testing", Tag: "2.1.1", Layers: base, Cmd: sh},
		// An image whose user is not root.
		{Repository: "e2e-test-images/nonroot", Tag: "1.5", Layers: base, User: "1234", Cmd: sh},
	}
	// nginx: agnhost serving HTTP on port 80.
	for _, tag := range []string{"1.27.0-2", "1.28.0-2"} {
		specs = append(specs, Spec{Repository: "e2e-test-images/nginx", Tag: tag, Layers: agnhost,
			Entrypoint: []string{"/agnhost", "netexec", "--http-port=80", "--udp-port=-1"}})
	}
	if rel.Components["sample-apiserver"] == "" {
		return specs
	}
	specs = append(specs, []Spec{
		// The no-new-privileges check: nnp, setuid root.
		{Repository: "e2e-test-images/nonewprivs", Tag: "1.4", Layers: with(base, &Layer{
			Files: map[string]string{"/usr/local/bin/nnp": rel.Binary("nnp")}, Modes: map[string]int64{"/usr/local/bin/nnp": 0o4755}}), Cmd: []string{"nnp"}},
		// The aggregator's sample API server and the etcd it stores in.
		{Repository: "e2e-test-images/sample-apiserver", Tag: "1.29.2", Layers: []*Layer{{Files: map[string]string{"/sample-apiserver": rel.Binary("sample-apiserver")}}},
			Entrypoint: []string{"/sample-apiserver"}},
		{Repository: "etcd", Tag: "3.7.0-0", Layers: with(base, &Layer{Files: map[string]string{"/usr/local/bin/etcd": rel.Binary("etcd")}}),
			Cmd: []string{"/usr/local/bin/etcd"}},
	}...)
	// kubectl's update-demo images: agnhost's file server with a picture and
	// its data.json at the root, as upstream.
	for _, demo := range []string{"kitten", "nautilus"} {
		dir := rel.Binary(filepath.Join("testdata", demo))
		specs = append(specs, Spec{Repository: "e2e-test-images/" + demo, Tag: "1.8", Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"},
			Layers: with(agnhost, &Layer{Trees: []string{dir}, Modes: map[string]int64{"/" + demo + ".jpg": 0o644, "/data.json": 0o644}})})
	}
	return specs
}

// busyboxLinks are the links of busybox's applets (/bin/sh → /bin/busybox,
// ...): where its --list-full puts them, and each in /bin too, as the
// busybox images of Docker Hub have them (the suite runs /bin/sysctl).
func busyboxLinks(busybox string) map[string]string {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil
	}
	links := map[string]string{}
	for _, p := range strings.Fields(string(out)) {
		if p != "bin/busybox" {
			links["/"+p] = "/bin/busybox"
			links["/bin/"+path.Base(p)] = "/bin/busybox"
		}
	}
	return links
}

// FromRelease builds every image of a release. Layers are written to dir as
// blobs named by digest (dir/sha256/<hex>, the layout of the registry's
// blob store), so images read them from disk rather than holding them.
func FromRelease(rel *release.Release, dir string) ([]Image, error) {
	b := builder{dir: dir, layers: map[*Layer]v1.Layer{}}
	var out []Image
	for _, s := range Specs(rel) {
		img, err := b.image(s)
		if err != nil {
			return nil, fmt.Errorf("image %s:%s: %w", s.Repository, s.Tag, err)
		}
		out = append(out, Image{Repository: s.Repository, Tag: s.Tag, Image: img})
	}
	return out, nil
}

// epoch is every file's and the image's creation time, so a build of the same
// files is the same image (the same digest).
var epoch = time.Unix(0, 0).UTC()

// builder builds images into a blob directory, each Layer once.
type builder struct {
	dir    string
	layers map[*Layer]v1.Layer
}

// image builds a Spec for this machine's platform.
func (b builder) image(s Spec) (v1.Image, error) {
	if s.Repository == "" || s.Tag == "" || len(s.Layers) == 0 || (len(s.Entrypoint) == 0 && len(s.Cmd) == 0) {
		return nil, errors.New("a repository, a tag, a layer and an entrypoint or command are needed")
	}
	var layers []v1.Layer
	for _, l := range s.Layers {
		built, ok := b.layers[l]
		if !ok {
			var err error
			if built, err = b.layer(l); err != nil {
				return nil, err
			}
			b.layers[l] = built
		}
		layers = append(layers, built)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layers...)
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
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User = s.Entrypoint, s.Cmd, s.User
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, s.Env...)
	return mutate.ConfigFile(img, cf)
}

// layer writes a Layer's tar (uncompressed: nodes pull over the lab network,
// and hashing is all the build costs) to the blob directory; without one, it
// only hashes it.
func (b builder) layer(l *Layer) (v1.Layer, error) {
	if b.dir == "" {
		h := sha256.New()
		cw := &countWriter{w: h}
		if err := writeLayer(l, cw); err != nil {
			return nil, err
		}
		return fileLayer{digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, size: cw.n}, nil
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "sha256"), 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(b.dir, "layer-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := writeLayer(l, cw); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	digest := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	blob := filepath.Join(b.dir, digest.Algorithm, digest.Hex)
	if err := os.Rename(f.Name(), blob); err != nil {
		return nil, err
	}
	return fileLayer{path: blob, digest: digest, size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileLayer is an uncompressed layer whose blob is a file.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func (l fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }

// entry is one file of a layer: from disk, given, or a link.
type entry struct {
	src, content, link string
	isContent, dir     bool
	mode               int64
}

// writeLayer writes a Layer as a tar: its files, contents, links and dirs with
// their parent directories, in path order. A layer with links (busybox's
// applets) also gets /tmp.
func writeLayer(l *Layer, w io.Writer) error {
	entries := map[string]entry{}
	for p, t := range l.Links {
		entries[p] = entry{link: t, mode: 0o777}
	}
	for _, root := range l.Trees {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			entries["/"+filepath.ToSlash(rel)] = entry{src: p, mode: 0o755}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for p, src := range l.Files {
		entries[p] = entry{src: src, mode: 0o755}
	}
	for p, c := range l.Contents {
		entries[p] = entry{content: c, isContent: true, mode: 0o644}
	}
	for _, d := range l.Dirs {
		entries[d] = entry{dir: true, mode: 0o755}
	}
	for p, m := range l.Modes {
		if e, ok := entries[p]; ok {
			e.mode = m
			entries[p] = e
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	dir := func(d string, mode int64) error {
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: mode, ModTime: epoch})
	}
	if len(l.Links) > 0 {
		if err := dir("/tmp", 0o1777); err != nil {
			return err
		}
	}
	for _, p := range paths {
		var parents []string
		for d := path.Dir(p); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if err := dir(d, 0o755); err != nil {
				return err
			}
		}
		e := entries[p]
		switch {
		case e.dir:
			if !dirs[p] {
				if err := dir(p, e.mode); err != nil {
					return err
				}
			}
		case e.link != "":
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: p[1:], Linkname: e.link, Mode: e.mode, ModTime: epoch}); err != nil {
				return err
			}
		case e.isContent:
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: e.mode, Size: int64(len(e.content)), ModTime: epoch}); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, e.content); err != nil {
				return err
			}
		default:
			if err := copyFile(tw, p, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// copyFile writes a file from disk into the tar.
func copyFile(tw *tar.Writer, p string, e entry) error {
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: e.mode, Size: st.Size(), ModTime: epoch}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// Registry is hcp's image registry: an OCI registry (the distribution API)
// that nodes pull from and nobody outside pushes to. The images of the
// releases are put in by Load, in-process; blobs are kept in a directory.
type Registry struct {
	dir   string
	h     http.Handler
	ready chan struct{}
	err   error
	// management: Load also builds management nodes' images.
	management bool
	// deferred, when set, is the build Warm starts, once.
	deferred func()
	warm     sync.Once
}

// WithManagementImages makes Load also build what management nodes run:
// each release's control plane image and its volume provisioner
// (ManagementSpecs), and the backup image.
func (r *Registry) WithManagementImages() *Registry {
	r.management = true
	return r
}

// NewRegistry is an empty registry keeping blobs under blobDir ("" keeps
// them in a new temporary directory).
func NewRegistry(blobDir string) *Registry {
	r := &Registry{dir: blobDir, ready: make(chan struct{})}
	if r.dir == "" {
		r.dir, r.err = os.MkdirTemp("", "hcp-registry-")
	} else {
		r.err = os.MkdirAll(r.dir, 0o700)
	}
	r.h = registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(blobStore{dir: r.dir, disk: registry.NewDiskBlobHandler(r.dir)}))
	return r
}

// blobStore is the registry's disk blob store, except that a blob's size
// comes from the file system: the store's own Stat hashes the whole blob on
// every HEAD, and only hcp writes blobs, named by the digest it computed as it
// wrote them.
type blobStore struct {
	dir  string
	disk registry.BlobHandler
}

func (b blobStore) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	return b.disk.Get(ctx, repo, h)
}

func (b blobStore) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return b.disk.(registry.BlobPutHandler).Put(ctx, repo, h, rc)
}

func (b blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	st, err := os.Stat(filepath.Join(b.dir, h.Algorithm, h.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Load builds the images of the releases and puts them in the registry; pulls
// wait for it. It can be called once.
func (r *Registry) Load(ctx context.Context, rels []*release.Release) error {
	defer close(r.ready)
	if r.err != nil {
		return r.err
	}
	for _, rel := range rels {
		imgs, err := FromRelease(rel, r.dir)
		if err == nil && r.management {
			var more []Image
			more, err = Build(r.dir, ManagementSpecs(rel, OperatorProgram())...)
			imgs = append(imgs, more...)
		}
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

// LoadOnFirstUse has the registry build the images of the releases list
// returns (as Load does) when it is first used: on the first pull, or when
// Warm is called. It logs how the build went; a failed build is also told to
// every pull. ctx ends a build under way.
func (r *Registry) LoadOnFirstUse(ctx context.Context, list func() ([]*release.Release, error), log logr.Logger) {
	r.deferred = func() {
		start := time.Now()
		rels, err := list()
		if err == nil {
			err = r.Load(ctx, rels)
		} else {
			r.err = err
			close(r.ready)
		}
		if err != nil {
			log.Error(err, "building the release images")
			return
		}
		log.Info("release images are in the registry", "releases", len(rels), "took", time.Since(start).Round(time.Millisecond))
	}
}

// Warm starts the build LoadOnFirstUse deferred, if nothing has started it
// yet; it does not wait for it. A caller that knows pulls are coming (a host
// registered) calls it so that they find the images built.
func (r *Registry) Warm() {
	if r.deferred == nil {
		return
	}
	r.warm.Do(func() { go r.deferred() })
}

// ServeHTTP answers pulls (GET and HEAD under /v2/); it waits up to half a
// minute for the images to be built.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, `{"errors":[{"code":"UNSUPPORTED","message":"hcp's registry serves pulls only"}]}`, http.StatusMethodNotAllowed)
		return
	}
	r.Warm()
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
