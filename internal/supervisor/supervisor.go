// Package supervisor runs child processes: it starts them with their output in a
// log file, restarts them with backoff when they exit, and stops them on request.
// Children get SIGKILL when their parent dies, so a crashed parent leaves nothing
// running behind it.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	// LogPath receives the process's stdout and stderr (appended).
	LogPath string
}

// Backoff bounds the delay between restarts.
type Backoff struct {
	Initial, Max time.Duration
	// Reset is how long a process must run before the delay goes back to Initial.
	Reset time.Duration
}

// DefaultBackoff is used when Options.Backoff is zero.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Reset: 30 * time.Second}

// Process is a supervised child process.
type Process struct {
	spec    Spec
	log     logr.Logger
	backoff Backoff

	cancel context.CancelFunc

	mu     sync.Mutex
	cmd    *exec.Cmd
	starts int
	grace  time.Duration
	exited chan struct{} // closed when the current child exits
	done   chan struct{} // closed when supervision ends
}

// Start starts the process and keeps it running until Stop is called or ctx ends.
// It returns an error when the first start fails (e.g. a missing executable).
func Start(ctx context.Context, spec Spec, log logr.Logger) (*Process, error) {
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, fmt.Errorf("%s: executable %s: %w", spec.Name, spec.Path, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Process{spec: spec, log: log.WithValues("process", spec.Name), backoff: DefaultBackoff,
		cancel: cancel, grace: 10 * time.Second, done: make(chan struct{})}
	if err := p.start(); err != nil {
		cancel()
		return nil, err
	}
	go p.supervise(ctx)
	return p, nil
}

// Pid is the process ID of the running child, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Starts is how many times the process was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Name is the process's name.
func (p *Process) Name() string { return p.spec.Name }

// Stop ends the process: SIGTERM, then SIGKILL after grace. It returns once the
// process is gone and will not be restarted.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	p.grace = grace
	p.mu.Unlock()
	p.cancel()
	<-p.done
}

// Done is closed when the process has stopped for good.
func (p *Process) Done() <-chan struct{} { return p.done }

func (p *Process) start() error {
	logFile, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: opening log: %w", p.spec.Name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(logFile, "=== %s start %d at %s\n", p.spec.Name, p.starts+1, time.Now().Format(time.RFC3339))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting %s: %w", p.spec.Name, p.spec.Path, err)
	}
	p.starts++
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.log.Error(err, "waiting for process")
		}
		close(exited)
	}()
	return nil
}

func (p *Process) supervise(ctx context.Context) {
	defer close(p.done)
	delay := p.backoff.Initial
	for {
		p.mu.Lock()
		exited, cmd := p.exited, p.cmd
		p.mu.Unlock()
		started := time.Now()
		select {
		case <-exited:
		case <-ctx.Done():
			p.mu.Lock()
			grace := p.grace
			p.mu.Unlock()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(grace):
				_ = cmd.Process.Kill()
				<-exited
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > p.backoff.Reset {
			delay = p.backoff.Initial
		}
		p.log.Info("process exited; restarting", "exitCode", cmd.ProcessState.ExitCode(), "after", delay, "log", p.spec.LogPath)
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
