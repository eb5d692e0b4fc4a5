package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestRestartsAfterKillAndStopsForGood(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "sleep.log")
	p, err := Start(context.Background(), Spec{Name: "sleep", Path: "/bin/sh", Args: []string{"-c", "echo hello; exec sleep 60"}, LogPath: logPath}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	first := p.Pid()
	if !alive(first) {
		t.Fatal("process not running")
	}
	hellos := func() int { b, _ := os.ReadFile(logPath); return strings.Count(string(b), "hello") }
	waitFor(t, "first output", func() bool { return hellos() == 1 })
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool { return p.Starts() == 2 && p.Pid() != first && alive(p.Pid()) })
	second := p.Pid()
	waitFor(t, "second output", func() bool { return hellos() == 2 })
	p.Stop(2 * time.Second)
	waitFor(t, "exit", func() bool { return !alive(second) })
	time.Sleep(300 * time.Millisecond)
	if p.Starts() != 2 {
		t.Fatalf("process started %d times after Stop, want 2", p.Starts())
	}

}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"60"}, LogPath: filepath.Join(t.TempDir(), "log")}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	cancel()
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("process did not stop on cancel")
	}
	if alive(pid) {
		t.Fatal("process still running")
	}
}

func TestMissingExecutableIsAnError(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "ghost", Path: "/nonexistent/ghost", LogPath: filepath.Join(t.TempDir(), "log")}, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ghost") {
		t.Fatalf("got %v, want an error naming the executable", err)
	}
}

func TestDetachedProcessIsAdoptedNotStartedTwice(t *testing.T) {
	dir := t.TempDir()
	spec := Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"60"}, LogPath: filepath.Join(dir, "log"),
		Detach: true, StateFile: filepath.Join(dir, "state.json"), Hash: "a"}
	first, err := Start(context.Background(), spec, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	pid := first.Pid()
	first.Release()
	if !alive(pid) {
		t.Fatal("detached process died when released")
	}

	second, err := Start(context.Background(), spec, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Adopted() || second.Pid() != pid || second.Starts() != 0 {
		t.Fatalf("adopted=%v pid=%d (want %d) starts=%d", second.Adopted(), second.Pid(), pid, second.Starts())
	}
	// An adopted process that dies is restarted.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart of the adopted process", func() bool { return second.Starts() == 1 && alive(second.Pid()) })
	second.Release()

	// A changed specification replaces the running process.
	spec.Hash = "b"
	third, err := Start(context.Background(), spec, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if third.Adopted() || third.Starts() != 1 {
		t.Fatalf("changed spec: adopted=%v starts=%d", third.Adopted(), third.Starts())
	}
	old := second.Pid()
	waitFor(t, "old process to be replaced", func() bool { return !alive(old) })
	p := third.Pid()
	third.Stop(2 * time.Second)
	waitFor(t, "stop", func() bool { return !alive(p) })
	if _, err := os.Stat(spec.StateFile); !os.IsNotExist(err) {
		t.Fatalf("state file left after Stop: %v", err)
	}
}
