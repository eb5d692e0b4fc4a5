package labnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A lab network whose hcp up still runs is kept even before that hcp up
// holds its data directory's lock; one whose maker has ended is removed.
func TestReclaimKeepsNetworksOfRunningMakers(t *testing.T) {
	RegistryDir = t.TempDir()
	live, gone := New(filepath.Join(t.TempDir(), "live")), New(filepath.Join(t.TempDir(), "gone"))
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	for n, pid := range map[*Net]int{live: os.Getpid(), gone: ended.Process.Pid} {
		if err := os.WriteFile(filepath.Join(RegistryDir, n.id), []byte(fmt.Sprintf("%s\n%d\n", n.dataDir, pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed := Reclaim()
	if len(removed) != 1 || removed[0].DataDir != gone.dataDir {
		t.Errorf("reclaimed %+v, want only %s", removed, gone.dataDir)
	}
	if _, err := os.Stat(filepath.Join(RegistryDir, live.id)); err != nil {
		t.Errorf("the running maker's network was unregistered: %v", err)
	}
	if d, pid := parseRecord(gone.dataDir + "\n"); d != gone.dataDir || pid != 0 {
		t.Errorf("a record without a pid: %q %d", d, pid)
	}
}
