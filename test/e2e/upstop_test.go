package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeProcessesUnder counts the processes whose /run/containerd is a node's,
// from a root under dataDir (deleted or not), read from /proc directly.
func nodeProcessesUnder(dataDir string) int { return len(nodeProcessList(dataDir)) }

// nodeProcessList names those processes: pid and command line.
func nodeProcessList(dataDir string) []string {
	entries, _ := os.ReadDir("/proc")
	var n []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err == nil && strings.Contains(string(b), dataDir+"/management/") && strings.Contains(string(b), "/run/containerd ") {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			n = append(n, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return n
}

// startUpPiped runs hcp up with management nodes, its output on a pipe read
// until it is ready, and returns the command and the pipe.
func startUpPiped(t *testing.T, dataDir string, nodes int) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hcp"), "up", "--data-dir", dataDir, "--port", strconv.Itoa(freePort(t)), "--console-port", "-1", "--management-nodes", strconv.Itoa(nodes))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "The management plane is ready") {
				ready <- seen.String()
				return
			}
		}
		ready <- "hcp up ended before it was ready:\n" + seen.String()
	}()
	select {
	case s := <-ready:
		if !strings.Contains(s, "is ready") {
			t.Fatal(s)
		}
		return cmd, out
	case <-time.After(3 * time.Minute):
		t.Fatal("hcp up was not ready within 3 minutes")
	}
	return nil, nil
}

// Whatever ends hcp up, its management nodes do not run on without it: a
// closed terminal stops it as Ctrl-C does, to the end, though nothing reads
// its output any more; and nothing of the nodes of an hcp up that was killed
// and whose data directory was deleted runs once the next hcp up is ready
// (which processes it still finds there is TestNodeOf's part).
func TestUpLeavesNoNodesBehind(t *testing.T) {
	// Killed, and its data directory deleted: its nodes run on. (It has a
	// node more than the next one, whose nodes' names are the same.)
	killed := t.TempDir()
	cmd, _ := startUpPiped(t, killed, 2)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if nodeProcessesUnder(killed) == 0 {
		t.Fatal("no node process of the killed hcp up found: the check below would prove nothing")
	}
	_ = os.RemoveAll(killed)

	// The next hcp up ends them; its own terminal then goes away.
	next := t.TempDir()
	cmd, out := startUpPiped(t, next, 1)
	if left := nodeProcessList(killed); len(left) > 0 {
		t.Errorf("processes of the killed hcp up's nodes still run:\n%s", strings.Join(left, "\n"))
	}
	if nodeProcessesUnder(next) == 0 {
		t.Fatal("no node process of the running hcp up found")
	}
	out.Close()
	_ = cmd.Process.Signal(syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("hcp up ended with %v after SIGHUP with its output closed", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("hcp up did not stop within 90s of SIGHUP")
	}
	if left := nodeProcessList(next); len(left) > 0 {
		t.Errorf("processes of the stopped hcp up's nodes still run:\n%s", strings.Join(left, "\n"))
	}
}
