package images

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hcp-dev/hcp/internal/release"
)

// hcp's own images: a release's control plane image (every control plane
// component's program, run by the pods of the Kubernetes runtime) and the
// operator's image. Under an image repository (DefaultRepository in hcp's
// registry, or where `hcp release mirror` put them) they are
// <repository>/control-plane and <repository>/operator.
const (
	ControlPlaneImage = "control-plane"
	OperatorImage     = "operator"
	// EtcdBackupImage takes and restores a control plane's backups on the
	// Kubernetes runtime: the operator's program and the release's etcdutl.
	EtcdBackupImage = "etcd-backup"
	// OwnRepository is the repository path of hcp's images in hcp's registry.
	OwnRepository = "hcp"
	// DefaultRepository is where nodes pull hcp's own images by default.
	DefaultRepository = RegistryHost + "/" + OwnRepository
	// ReleasesDir is where the operator image keeps its release payloads.
	ReleasesDir = "/usr/share/hcp/releases"
	// nonRoot is the user hcp's images run as unless a pod says otherwise.
	nonRoot = "65532:65532"
)

// controlPlanePrograms are the programs of the control plane image, each its
// own layer (a release that changes one program shares the others' blobs).
var controlPlanePrograms = []string{release.Etcd, release.KubeAPIServer, release.KubeControllerManager, release.KubeScheduler,
	release.KonnectivityServer, release.KonnectivityAgent, release.Kubectl}

// ControlPlaneSpec is the release's control plane image, tagged with the
// release's name: its programs in /usr/local/bin (on PATH), run as a user
// that is not root. The pods name the program they run.
func ControlPlaneSpec(rel *release.Release) Spec {
	var layers []*Layer
	for _, p := range controlPlanePrograms {
		layers = append(layers, &Layer{Files: map[string]string{"/usr/local/bin/" + p: rel.Binary(p)}})
	}
	return Spec{Repository: OwnRepository + "/" + ControlPlaneImage, Tag: rel.Name, Layers: layers,
		Cmd: []string{release.KubeAPIServer, "--version"}, User: nonRoot}
}

// EtcdBackupSpec is the image of the release's backup Jobs and restore
// init containers: operatorProgram (hcp-operator etcd-backup, etcd-restore)
// and the release's etcdutl, tagged with the release's name. It changes with
// the operator, so pods name it by digest (Digest), never by tag.
func EtcdBackupSpec(rel *release.Release, operatorProgram string) Spec {
	return Spec{Repository: OwnRepository + "/" + EtcdBackupImage, Tag: rel.Name,
		Layers: []*Layer{
			{Files: map[string]string{"/usr/local/bin/hcp-operator": operatorProgram}},
			{Files: map[string]string{"/usr/local/bin/" + release.Etcdutl: rel.Binary(release.Etcdutl)}},
		},
		Entrypoint: []string{"/usr/local/bin/hcp-operator"}, User: nonRoot}
}

// OperatorProgram is the hcp-operator program beside the running one (hcp,
// hcp-operator or a test binary in the same directory): the program of the
// backup image. "" when there is none.
func OperatorProgram() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "hcp-operator")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// LocalPathProvisionerRepository is the repository of management nodes'
// volume provisioner's image, its upstream path.
const LocalPathProvisionerRepository = "rancher/local-path-provisioner"

// ManagementSpecs are the images management nodes run: the control plane
// image, the backup image (when operatorProgram is known) and rancher's
// local-path-provisioner, tagged with its version, when the release has it.
func ManagementSpecs(rel *release.Release, operatorProgram string) []Spec {
	specs := []Spec{ControlPlaneSpec(rel)}
	if operatorProgram != "" {
		if _, err := os.Stat(rel.Binary(release.Etcdutl)); err == nil {
			specs = append(specs, EtcdBackupSpec(rel, operatorProgram))
		}
	}
	if v := rel.Components["local-path-provisioner"]; v != "" {
		specs = append(specs, Spec{Repository: LocalPathProvisionerRepository, Tag: v,
			Layers:     []*Layer{{Files: map[string]string{"/usr/local/bin/local-path-provisioner": rel.Binary("local-path-provisioner")}}},
			Entrypoint: []string{"/usr/local/bin/local-path-provisioner"}})
	}
	return specs
}

// testPrograms are payload files only the test images use: the operator's
// image leaves them out, and its releases do not list them.
var testPrograms = map[string]bool{"agnhost": true, "sample-apiserver": true, "nnp": true, "busybox": true, "tools": true, "testdata": true, "dig": true}

// controlPlaneOnly are payload files only control planes run: the operator's
// image leaves them out (its pods run the control plane image).
var controlPlaneOnly = map[string]bool{release.Etcd: true, release.KubeAPIServer: true, release.KubeControllerManager: true,
	release.KubeScheduler: true, release.KonnectivityServer: true, release.Kubectl: true}

// OperatorSpec is the operator's image, tagged with hcp's version: the
// hcp-operator, hcp and hcp-agent programs from binDir, and the releases'
// payloads under ReleasesDir without their test programs and the control
// plane's (the operator resolves releases there and serves nodes their
// programs and images; control plane pods run the control plane image).
func OperatorSpec(binDir, version string, rels []*release.Release) (Spec, error) {
	progs := &Layer{Files: map[string]string{}}
	for _, p := range []string{"hcp-operator", "hcp", "hcp-agent"} {
		file := filepath.Join(binDir, p)
		if err := checkStatic(file); err != nil {
			return Spec{}, err
		}
		progs.Files["/usr/local/bin/"+p] = file
	}
	layers := []*Layer{progs}
	for _, rel := range rels {
		l, err := payloadLayer(rel)
		if err != nil {
			return Spec{}, fmt.Errorf("release %s: %w", rel.Name, err)
		}
		layers = append(layers, l)
	}
	return Spec{Repository: OwnRepository + "/" + OperatorImage, Tag: version, Layers: layers,
		Entrypoint: []string{"/usr/local/bin/hcp-operator"}, User: nonRoot,
		Env: []string{"HCP_RELEASE_DIR=" + ReleasesDir}}, nil
}

// checkStatic refuses a program that needs a dynamic loader: the image has
// none (no base image, no libc).
func checkStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("%s is dynamically linked (it needs %s, which hcp's images do not have); build it with CGO_ENABLED=0, as make build does",
				file, strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}

// payloadLayer is a release's payload under ReleasesDir/<name>, without the
// test programs, with a release.json that does not list them.
func payloadLayer(rel *release.Release) (*Layer, error) {
	entries, err := os.ReadDir(rel.Dir)
	if err != nil {
		return nil, err
	}
	root := path.Join(ReleasesDir, rel.Name)
	l := &Layer{Files: map[string]string{}, Contents: map[string]string{}}
	for _, e := range entries {
		n := e.Name()
		if testPrograms[n] || controlPlaneOnly[n] || n == release.MetadataFile || n[0] == '.' {
			continue
		}
		if !e.IsDir() {
			l.Files[path.Join(root, n)] = filepath.Join(rel.Dir, n)
			continue
		}
		sub, err := os.ReadDir(filepath.Join(rel.Dir, n))
		if err != nil {
			return nil, err
		}
		for _, s := range sub {
			if !s.IsDir() {
				l.Files[path.Join(root, n, s.Name())] = filepath.Join(rel.Dir, n, s.Name())
			}
		}
	}
	meta := *rel
	meta.Components = map[string]string{}
	for k, v := range rel.Components {
		if !testPrograms[k] {
			meta.Components[k] = v
		}
	}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	l.Contents[path.Join(root, release.MetadataFile)] = string(b) + "\n"
	return l, nil
}

// Digest is the digest a Spec's image has when built: the same as the image
// pushed by FromRelease or Build, computed without keeping any blob.
func Digest(s Spec) (v1.Hash, error) {
	img, err := builder{layers: map[*Layer]v1.Layer{}}.image(s)
	if err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// Build builds Specs, writing their layers (each once) to dir.
func Build(dir string, specs ...Spec) ([]Image, error) {
	b := builder{dir: dir, layers: map[*Layer]v1.Layer{}}
	var out []Image
	for _, s := range specs {
		img, err := b.image(s)
		if err != nil {
			return nil, fmt.Errorf("image %s:%s: %w", s.Repository, s.Tag, err)
		}
		out = append(out, Image{Repository: s.Repository, Tag: s.Tag, Image: img})
	}
	return out, nil
}

// WriteDigests records the digest of the release's control plane image in
// its release.json (images: {"control-plane": "sha256:..."}).
func WriteDigests(rel *release.Release) error {
	d, err := Digest(ControlPlaneSpec(rel))
	if err != nil {
		return err
	}
	file := filepath.Join(rel.Dir, release.MetadataFile)
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	imgs, _ := doc["images"].(map[string]any)
	if imgs == nil {
		imgs = map[string]any{}
	}
	if imgs[ControlPlaneImage] == d.String() {
		return nil
	}
	imgs[ControlPlaneImage] = d.String()
	doc["images"] = imgs
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".new"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
