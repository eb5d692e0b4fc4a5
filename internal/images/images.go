// Package images builds the OCI images that hosted clusters' nodes run from the
// release payload, without Docker or a container registry on the internet, and
// serves them from an OCI registry of the management plane.
//
// Each image is one layer holding a payload binary, with its platform set (a
// container runtime refuses an image whose config names no os and
// architecture) and the binary as its entrypoint:
//
//	imgs, err := images.FromRelease(rel)
//	srv := images.NewRegistry()              // an http.Handler: serve it on the lab network
//	err = images.Push(ctx, "10.231.1.1:5000", imgs)
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

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
	Entrypoint []string
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
	return []Spec{
		{Repository: "pause", Tag: rel.Name, Files: bin("pause"), Entrypoint: []string{"/usr/local/bin/pause"}},
		{Repository: "coredns", Tag: rel.Components["coredns"], Files: bin("coredns"), Entrypoint: []string{"/usr/local/bin/coredns"}},
		{Repository: "kube-proxy", Tag: rel.Components["kube-proxy"], Files: bin("kube-proxy"), Entrypoint: []string{"/usr/local/bin/kube-proxy"}},
		{Repository: "konnectivity-agent", Tag: rel.Components[release.KonnectivityAgent], Files: bin(release.KonnectivityAgent),
			Entrypoint: []string{"/usr/local/bin/" + release.KonnectivityAgent}},
	}
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
	if s.Repository == "" || s.Tag == "" || len(s.Entrypoint) == 0 {
		return nil, fmt.Errorf("image %q:%q: a repository, a tag and an entrypoint are needed", s.Repository, s.Tag)
	}
	layerTar, err := tarFiles(s.Files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Repository, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
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
	cf.Config.Entrypoint = s.Entrypoint
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	return mutate.ConfigFile(img, cf)
}

// tarFiles is a tar of the files (with their parent directories), in path order.
func tarFiles(files map[string]string) ([]byte, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range paths {
		var parents []string
		for d := path.Dir(p); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(files[p])
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

// NewRegistry is an OCI registry (the distribution API) holding what is pushed
// to it in memory.
func NewRegistry() http.Handler { return registry.New(registry.Logger(log.New(io.Discard, "", 0))) }

// Push uploads images to the registry at host (host:port, plain HTTP).
func Push(ctx context.Context, host string, imgs []Image) error {
	for _, i := range imgs {
		ref, err := name.NewTag(host+"/"+i.Repository+":"+i.Tag, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, i.Image, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}
