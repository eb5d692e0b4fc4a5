// Package release finds release payloads: directories of component binaries with
// a release.json that names the release by an image reference and lists its
// component versions. A HostedCluster's spec.release.image resolves through a
// Store; an unknown reference is an error, never a substitute.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetadataFile is the name of a payload's metadata file.
const MetadataFile = "release.json"

// Component binary names.
const (
	Etcd                  = "etcd"
	Etcdutl               = "etcdutl"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kubectl               = "kubectl"
	KonnectivityServer    = "konnectivity-server"
	KonnectivityAgent     = "konnectivity-agent"
)

// Release is one release payload.
type Release struct {
	// Name is the release version, e.g. 1.37.2.
	Name string `json:"name"`
	// Image is the image reference that names the release.
	Image string `json:"image"`
	// Components maps component names to their versions.
	Components map[string]string `json:"components"`
	// Images maps hcp's images of the release (control-plane) to their
	// digests (sha256:...), as built from this payload.
	Images map[string]string `json:"images,omitempty"`
	// Dir is the directory holding the binaries.
	Dir string `json:"-"`
}

// Binary is the path of a component's executable.
func (r *Release) Binary(component string) string { return filepath.Join(r.Dir, component) }

// ImageRef is the reference of one of the release's images under an image
// repository: by digest when the payload records it, else by the release's
// name as tag.
func (r *Release) ImageRef(repository, image string) string {
	if d := r.Images[image]; d != "" {
		return repository + "/" + image + "@" + d
	}
	return repository + "/" + image + ":" + r.Name
}

// KubernetesVersion is the release's Kubernetes version, e.g. v1.37.2.
func (r *Release) KubernetesVersion() string { return r.Components["kubernetes"] }

// Less orders release names as versions (1.36.3 before 1.37.2 before
// 1.100.0); names that are not versions sort after them, by name.
func Less(a, b string) bool {
	va, erra := utilversion.ParseGeneric(a)
	vb, errb := utilversion.ParseGeneric(b)
	switch {
	case erra == nil && errb == nil:
		return va.LessThan(vb)
	case erra == nil:
		return true
	case errb == nil:
		return false
	}
	return a < b
}

// Store is a directory of release payloads, one subdirectory each.
type Store struct {
	Dir string
}

// ErrNotFound says a release image is not in the store.
var ErrNotFound = errors.New("release not found")

// List returns the releases in the store, newest name last.
func (s Store) List() ([]*Release, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading release store %s: %w", s.Dir, err)
	}
	var out []*Release
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, err := Load(filepath.Join(s.Dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return Less(out[i].Name, out[j].Name) })
	return out, nil
}

// Resolve finds the release named by an image reference. A digest reference
// (image@sha256:...) matches the release of the same repository and tag-less name
// only when the store holds exactly that reference.
func (s Store) Resolve(image string) (*Release, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(all))
	for _, r := range all {
		if r.Image == image {
			return r, nil
		}
		names = append(names, r.Image)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %s (the release store %s is empty; build it with make release)", ErrNotFound, image, s.Dir)
	}
	return nil, fmt.Errorf("%w: %s (available: %s)", ErrNotFound, image, strings.Join(names, ", "))
}

// Named finds a release by its name (e.g. 1.37.2).
func (s Store) Named(name string) (*Release, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range all {
		if r.Name == name {
			return r, nil
		}
		names = append(names, r.Name)
	}
	return nil, fmt.Errorf("%w: %q (available: %s)", ErrNotFound, name, strings.Join(names, ", "))
}

// Default returns the newest release in the store.
func (s Store) Default() (*Release, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: the release store %s is empty; build it with make release", ErrNotFound, s.Dir)
	}
	return all[len(all)-1], nil
}

// Load reads the release in dir.
func Load(dir string) (*Release, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetadataFile))
	if err != nil {
		return nil, err
	}
	var r Release
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, MetadataFile), err)
	}
	if r.Name == "" || r.Image == "" {
		return nil, fmt.Errorf("%s: name and image are required", filepath.Join(dir, MetadataFile))
	}
	r.Dir = dir
	return &r, nil
}

// DefaultDir is where the release store is looked for: $HCP_RELEASE_DIR, else
// release/ beside the running executable (bin/release for a source build).
func DefaultDir() string {
	if d := os.Getenv("HCP_RELEASE_DIR"); d != "" {
		return d
	}
	exe, err := os.Executable()
	if err != nil {
		return "release"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "release")
}

// Where the leading operator publishes its version and the release images it
// serves, so clients can check a release before they create anything.
const (
	ServedNamespace = "hcp-system"
	ServedConfigMap = "hcp-operator-version"
	// ServedKey holds the served release images, one a line.
	ServedKey = "releases"
)

// ErrNotPublished says no operator has published the releases it serves.
var ErrNotPublished = errors.New("no operator has published the releases it serves")

// Served reads the release images the management cluster's operator serves.
func Served(ctx context.Context, c client.Reader) ([]string, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ServedNamespace, Name: ServedConfigMap}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, ErrNotPublished
		}
		return nil, err
	}
	v, ok := cm.Data[ServedKey]
	if !ok {
		return nil, ErrNotPublished
	}
	return strings.Fields(v), nil
}

// ServedData is what the operator publishes for the releases in the store.
func (s Store) ServedData() string {
	all, _ := s.List()
	images := make([]string, 0, len(all))
	for _, r := range all {
		images = append(images, r.Image)
	}
	return strings.Join(images, "\n")
}
