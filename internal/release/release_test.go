package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRelease(t *testing.T, store, dir, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(store, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, dir, MetadataFile), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	store := t.TempDir()
	writeRelease(t, store, "1.37.2", `{"name":"1.37.2","image":"hcp.dev/release:1.37.2","components":{"kubernetes":"v1.37.2"}}`)
	writeRelease(t, store, "1.36.0", `{"name":"1.36.0","image":"hcp.dev/release:1.36.0","components":{"kubernetes":"v1.36.0"}}`)
	if err := os.MkdirAll(filepath.Join(store, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Store{Dir: store}
	r, err := s.Resolve("hcp.dev/release:1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if r.KubernetesVersion() != "v1.37.2" || r.Binary(Etcd) != filepath.Join(store, "1.37.2", "etcd") {
		t.Fatalf("resolved %+v", r)
	}
	_, err = s.Resolve("quay.io/openshift-release-dev/ocp-release:4.99.0")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "hcp.dev/release:1.36.0, hcp.dev/release:1.37.2") {
		t.Fatalf("unknown image gave %v, want ErrNotFound listing the available releases", err)
	}
	d, err := s.Default()
	if err != nil || d.Name != "1.37.2" {
		t.Fatalf("default %v %v", d, err)
	}
}

func TestBadMetadataAndEmptyStore(t *testing.T) {
	store := t.TempDir()
	if _, err := (Store{Dir: store}).Default(); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "make release") {
		t.Fatalf("empty store gave %v", err)
	}
	writeRelease(t, store, "bad", `{"name":"x"}`)
	if _, err := (Store{Dir: store}).List(); err == nil || !strings.Contains(err.Error(), "name and image are required") {
		t.Fatalf("bad metadata gave %v", err)
	}
}
