// Package supervisor runs child processes: it starts them with their output in a
// log file, restarts them with backoff when they exit, and stops them on request.
//
// A process is attached (the default: it gets SIGKILL when its parent dies, so a
// crashed parent leaves nothing behind) or detached (it outlives its parent, and
// a state file lets the next supervisor adopt it instead of starting a second
// copy).
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Spec describes a process to run.
type Spec struct {
	// Name identifies the process in logs.
	Name string
	// Path is the executable.
	Path string
	// Args are its arguments, without the program name.
	Args []string
	// Env is added to the parent's environment.
	Env []string
	// Dir is the working directory; the parent's when empty.
	Dir string
	// LogPath receives the process's stdout and stderr (appended).
	LogPath string
	// Detach lets the process outlive its parent. It needs StateFile.
	Detach bool
	// StateFile records the running process so that a later Start adopts it.
	StateFile string
	// Hash identifies the specification; a recorded process with another hash is
	// replaced rather than adopted.
	Hash string
	// OnExit, when set, is called each time the process exits by itself (not
	// when it is stopped), before it is started again.
	OnExit func(exitCode int)
}

// Backoff bounds the delay between restarts.
type Backoff struct {
	Initial, Max time.Duration
	// Reset is how long a process must run before the delay goes back to Initial.
	Reset time.Duration
}

// DefaultBackoff is the restart backoff.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Reset: 30 * time.Second}

// record is what a state file holds.
type record struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Hash      string `json:"hash"`
}

// instance is one running copy of the process, a child or an adopted one.
type instance struct {
	pid    int
	exited chan struct{}
	code   int // valid once exited is closed; -1 when unknown
}

// Process is a supervised process.
type Process struct {
	spec    Spec
	log     logr.Logger
	backoff Backoff
	cancel  context.CancelFunc

	mu      sync.Mutex
	cur     *instance
	starts  int
	exits   int
	adopted bool
	kill    bool // stop the process when supervision ends
	grace   time.Duration
	done    chan struct{}
}

// Start starts the process, or adopts the one its state file records, and keeps
// it running until Stop or Release is called or ctx ends. Ending ctx stops an
// attached process and releases a detached one. Start returns an error when the
// first start fails (e.g. a missing executable).
func Start(ctx context.Context, spec Spec, log logr.Logger) (*Process, error) {
	if spec.Detach && spec.StateFile == "" {
		return nil, fmt.Errorf("%s: a detached process needs a state file", spec.Name)
	}
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, fmt.Errorf("%s: executable %s: %w", spec.Name, spec.Path, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Process{spec: spec, log: log.WithValues("process", spec.Name), backoff: DefaultBackoff,
		cancel: cancel, kill: !spec.Detach, grace: 10 * time.Second, done: make(chan struct{})}
	if !p.adopt() {
		if err := p.start(); err != nil {
			cancel()
			return nil, err
		}
	}
	go p.supervise(ctx)
	return p, nil
}

// Pid is the process ID of the running process, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Starts is how many times this supervisor started the process (an adopted
// process counts 0).
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Exits is how many times the process exited by itself under this
// supervisor (each is followed by a restart).
func (p *Process) Exits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exits
}

// Adopted reports whether the process was found running and adopted.
func (p *Process) Adopted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.adopted
}

// Spec is the specification the process runs.
func (p *Process) Spec() Spec { return p.spec }

// Name is the process's name.
func (p *Process) Name() string { return p.spec.Name }

// Stop ends the process: SIGTERM, then SIGKILL after grace. It returns once the
// process is gone and will not be restarted.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	p.grace, p.kill = grace, true
	p.mu.Unlock()
	p.cancel()
	<-p.done
	if p.spec.StateFile != "" {
		_ = os.Remove(p.spec.StateFile)
	}
}

// Release ends supervision and leaves a detached process running, to be adopted
// later. An attached process is stopped.
func (p *Process) Release() {
	p.cancel()
	<-p.done
}

// Done is closed when supervision has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// adopt takes over the process the state file records when it still runs the
// same specification. A recorded process with another specification is stopped.
func (p *Process) adopt() bool {
	if p.spec.StateFile == "" {
		return false
	}
	b, err := os.ReadFile(p.spec.StateFile)
	if err != nil {
		return false
	}
	var r record
	if json.Unmarshal(b, &r) != nil || r.PID <= 0 {
		return false
	}
	if st, ok := startTime(r.PID); !ok || st != r.StartTime {
		return false
	}
	if r.Hash != p.spec.Hash {
		p.log.Info("replacing a process started from an older specification", "pid", r.PID)
		terminate(r.PID, 10*time.Second)
		return false
	}
	in := &instance{pid: r.PID, exited: make(chan struct{}), code: -1}
	go func() {
		for {
			if st, ok := startTime(r.PID); !ok || st != r.StartTime {
				close(in.exited)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	p.mu.Lock()
	p.cur, p.adopted = in, true
	p.mu.Unlock()
	p.log.V(1).Info("adopted running process", "pid", r.PID)
	return true
}

func (p *Process) start() error {
	logFile, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: opening log: %w", p.spec.Name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Dir = p.spec.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !p.spec.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(logFile, "=== %s start %d at %s\n", p.spec.Name, p.starts+1, time.Now().Format(time.RFC3339))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting %s: %w", p.spec.Name, p.spec.Path, err)
	}
	p.starts++
	in := &instance{pid: cmd.Process.Pid, exited: make(chan struct{})}
	p.cur = in
	if p.spec.StateFile != "" {
		st, _ := startTime(in.pid)
		b, _ := json.Marshal(record{PID: in.pid, StartTime: st, Hash: p.spec.Hash})
		if err := writeFileAtomic(p.spec.StateFile, b); err != nil {
			p.log.Error(err, "recording process state")
		}
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.log.Error(err, "waiting for process")
		}
		in.code = cmd.ProcessState.ExitCode()
		close(in.exited)
	}()
	return nil
}

func (p *Process) supervise(ctx context.Context) {
	defer close(p.done)
	delay := p.backoff.Initial
	for {
		p.mu.Lock()
		in := p.cur
		p.mu.Unlock()
		started := time.Now()
		select {
		case <-in.exited:
		case <-ctx.Done():
			p.mu.Lock()
			kill, grace := p.kill, p.grace
			p.mu.Unlock()
			if kill {
				terminateInstance(in, grace)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > p.backoff.Reset {
			delay = p.backoff.Initial
		}
		p.mu.Lock()
		p.exits++
		p.mu.Unlock()
		if p.spec.OnExit != nil {
			p.spec.OnExit(in.code)
		}
		p.log.Info("process exited; restarting", "exitCode", in.code, "after", delay, "log", p.spec.LogPath)
		for {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, p.backoff.Max)
			err := p.start()
			if err == nil {
				break
			}
			p.log.Error(err, "restart failed", "retryAfter", delay)
		}
	}
}

func terminateInstance(in *instance, grace time.Duration) {
	_ = syscall.Kill(in.pid, syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(grace):
		_ = syscall.Kill(in.pid, syscall.SIGKILL)
		<-in.exited
	}
}

// terminate stops a process that is not our child.
func terminate(pid int, grace time.Duration) {
	st, ok := startTime(pid)
	if !ok {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if now, ok := startTime(pid); !ok || now != st {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// startTime reads a live process's start time (clock ticks since boot), which
// tells a process apart from a later one that reuses its pid. A zombie counts
// as gone.
func startTime(pid int) (uint64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is the state (field 3); the start time is field 22.
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return 0, false
	}
	st, err := strconv.ParseUint(fields[19], 10, 64)
	return st, err == nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Recorded is a process a state file records: its pid and start time.
type Recorded struct {
	PID       int
	StartTime uint64
}

// RecordedRunning reads the process a state file records and reports whether
// it still runs.
func RecordedRunning(stateFile string) (Recorded, bool) {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return Recorded{}, false
	}
	var r record
	if json.Unmarshal(b, &r) != nil || r.PID <= 0 {
		return Recorded{}, false
	}
	rec := Recorded{PID: r.PID, StartTime: r.StartTime}
	return rec, rec.Running()
}

// Running says whether the recorded process still runs (not a later one
// that reuses its pid).
func (r Recorded) Running() bool {
	st, ok := startTime(r.PID)
	return ok && st == r.StartTime
}

// StopRecorded stops the process a state file records, if it still runs, and
// removes the file. It is for cleaning up after a supervisor that is gone.
func StopRecorded(stateFile string, grace time.Duration) {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return
	}
	var r record
	if json.Unmarshal(b, &r) == nil && r.PID > 0 {
		if st, ok := startTime(r.PID); ok && st == r.StartTime {
			terminate(r.PID, grace)
		}
	}
	_ = os.Remove(stateFile)
}
