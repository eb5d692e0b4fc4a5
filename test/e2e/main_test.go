// Package e2e runs the hcp binaries the way a user does: hcp up, kubectl, kill -9.
// The binaries come from make build (HCP_BIN, default ../../bin); a missing binary
// fails the run rather than skipping tests.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/release"
)

var (
	binDir  string
	rel     *release.Release
	kubectl string
)

func TestMain(m *testing.M) {
	binDir = os.Getenv("HCP_BIN")
	if binDir == "" {
		binDir = "../../bin"
	}
	binDir, _ = filepath.Abs(binDir)
	for _, b := range []string{"hcp", "hcp-operator", "hcp-agent"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s is missing (%v); run make build first\n", filepath.Join(binDir, b), err)
			os.Exit(1)
		}
	}
	var err error
	if rel, err = (release.Store{Dir: filepath.Join(binDir, "release")}).Default(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	kubectl = rel.Binary(release.Kubectl)
	os.Exit(m.Run())
}

// upProcess is a running hcp up.
type upProcess struct {
	t          *testing.T
	cmd        *exec.Cmd
	dataDir    string
	kubeconfig string
	// consolePort is the web console's port on 127.0.0.1.
	consolePort int
	mu          sync.Mutex
	out         bytes.Buffer
	exited      chan struct{}
}

var handedOut sync.Map

// freePort is a port for a program a test starts; the parallel tests of this
// package never get the same one.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		port, err := ports.Free("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
}

// startUp runs hcp up on dataDir and waits until it prints the kubeconfig export line.
func startUp(t *testing.T, dataDir string, extra ...string) *upProcess {
	t.Helper()
	u := &upProcess{t: t, dataDir: dataDir, exited: make(chan struct{}), consolePort: freePort(t)}
	args := append([]string{"up", "--data-dir", dataDir, "--port", strconv.Itoa(freePort(t)), "--console-port", strconv.Itoa(u.consolePort)}, extra...)
	u.cmd = exec.Command(filepath.Join(binDir, "hcp"), args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	u.cmd.Stdout, u.cmd.Stderr = pw, pw
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			u.mu.Lock()
			u.out.WriteString(line + "\n")
			u.mu.Unlock()
			if k, ok := strings.CutPrefix(strings.TrimSpace(line), "export KUBECONFIG="); ok {
				ready <- k
			}
		}
	}()
	go func() { _ = u.cmd.Wait(); close(u.exited) }()
	t.Cleanup(func() {
		u.stop()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(u.output()), "\n")
			t.Logf("the last lines of hcp up's output:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	select {
	case u.kubeconfig = <-ready:
	case <-u.exited:
		t.Fatalf("hcp up exited before it was ready:\n%s", u.output())
	case <-time.After(3 * time.Minute):
		t.Fatalf("hcp up was not ready within 3 minutes:\n%s", u.output())
	}
	return u
}

func (u *upProcess) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

// stop sends Ctrl-C and waits for a clean exit.
func (u *upProcess) stop() {
	select {
	case <-u.exited:
		return
	default:
	}
	_ = u.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-u.exited:
	case <-time.After(60 * time.Second):
		_ = u.cmd.Process.Kill()
		u.t.Errorf("hcp up did not stop within 60s of Ctrl-C:\n%s", u.output())
	}
}

// kill sends SIGKILL, as a crash would.
func (u *upProcess) kill() {
	_ = u.cmd.Process.Kill()
	<-u.exited
}

// kubectl runs kubectl against the management plane.
func (u *upProcess) kubectl(stdin string, args ...string) (string, error) {
	return runKubectl(u.kubeconfig, stdin, args...)
}

func (u *upProcess) mustKubectl(stdin string, args ...string) string {
	u.t.Helper()
	out, err := u.kubectl(stdin, args...)
	if err != nil {
		u.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runKubectl(kubeconfig, stdin string, args ...string) (string, error) {
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// processesUsing lists the pids whose command line mentions dir.
func processesUsing(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
