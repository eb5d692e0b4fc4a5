package images

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hcp-dev/hcp/internal/release"
)

// The control plane image's digest, computed without writing blobs, is the
// built image's, and WriteDigests records it in release.json without losing
// what else the file says.
func TestControlPlaneImageDigest(t *testing.T) {
	rel := defaultRelease(t)
	spec := ControlPlaneSpec(rel)
	want, err := Digest(spec)
	if err != nil {
		t.Fatal(err)
	}
	built, err := Build(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := built[0].Image.Digest(); got != want {
		t.Errorf("built image %s, Digest says %s", got, want)
	}

	// A copy of the payload's metadata, the programs linked.
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(rel.Dir, release.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "images")
	doc["extra"] = "kept"
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, release.MetadataFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range controlPlanePrograms {
		if err := os.Symlink(rel.Binary(p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := release.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cp.ImageRef("registry.example.com/hcp", ControlPlaneImage); got != "registry.example.com/hcp/control-plane:"+rel.Name {
		t.Errorf("without a digest, the reference is %s", got)
	}
	if err := WriteDigests(cp); err != nil {
		t.Fatal(err)
	}
	cp, err = release.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cp.ImageRef("registry.example.com/hcp", ControlPlaneImage); got != "registry.example.com/hcp/control-plane@"+want.String() {
		t.Errorf("with the digest written, the reference is %s", got)
	}
	b, _ = os.ReadFile(filepath.Join(dir, release.MetadataFile))
	doc = nil
	if err := json.Unmarshal(b, &doc); err != nil || doc["extra"] != "kept" || doc["name"] != rel.Name {
		t.Errorf("release.json lost fields: %s", b)
	}
}

// hcp's images have no dynamic loader: their programs must be static, and a
// program that is not is refused with what to do.
func TestImageProgramsAreStatic(t *testing.T) {
	rel := defaultRelease(t)
	for _, p := range controlPlanePrograms {
		if err := checkStatic(rel.Binary(p)); err != nil {
			t.Error(err)
		}
	}
	if err := checkStatic("/bin/ls"); err == nil || !strings.Contains(err.Error(), "is dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a dynamically linked program: %v", err)
	}
}
