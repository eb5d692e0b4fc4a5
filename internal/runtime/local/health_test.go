package local

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLastProblemNamesWhyAReplicaIsDown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd-0.log")
	log := `{"level":"warn","msg":"slow fdatasync"}
{"level":"fatal","ts":"2026-11-23T17:47:08Z","msg":"failed to commit tx","error":"write /data/db: no space left on device","stacktrace":"..."}
panic: boom
`
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := lastProblem(path), "failed to commit tx: write /data/db: no space left on device"; got != want {
		t.Errorf("lastProblem = %q, want %q (a full disk outranks the panic that follows it)", got, want)
	}
	if got := lastProblem(filepath.Join(dir, "missing.log")); got != "" {
		t.Errorf("no log: %q", got)
	}
}
