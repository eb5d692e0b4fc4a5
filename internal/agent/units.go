package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// unit is the part of a systemd service unit a node needs: what to run, with
// which environment, after which other units, and how soon to restart it.
type unit struct {
	Name       string
	After      []string
	ExecStart  string
	EnvFiles   []string
	Env        map[string]string
	RestartSec time.Duration
}

// wantsDir lists the units that start at boot.
const wantsDir = "/etc/systemd/system/multi-user.target.wants"

// loadUnits reads the enabled units under root, in start order (a unit
// after the units it names in After=).
func loadUnits(root string) ([]unit, error) {
	entries, err := os.ReadDir(filepath.Join(root, wantsDir))
	if err != nil {
		return nil, fmt.Errorf("the installation enabled no units: %w", err)
	}
	var units []unit
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", e.Name()))
		if err != nil {
			return nil, err
		}
		u, err := parseUnit(e.Name(), string(b))
		if err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	return orderUnits(units), nil
}

// parseUnit reads a service unit's ExecStart, EnvironmentFile, Environment,
// After and RestartSec.
func parseUnit(name, text string) (unit, error) {
	u := unit{Name: name, Env: map[string]string{}, RestartSec: 100 * time.Millisecond}
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(text, "\\\n", " ")))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch k {
		case "ExecStart":
			u.ExecStart = v
		case "EnvironmentFile":
			u.EnvFiles = append(u.EnvFiles, v)
		case "Environment":
			for _, kv := range strings.Fields(v) {
				if ek, ev, ok := strings.Cut(strings.Trim(kv, `"`), "="); ok {
					u.Env[ek] = ev
				}
			}
		case "After":
			u.After = append(u.After, strings.Fields(v)...)
		case "RestartSec":
			secs, err := strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
			if err != nil {
				return u, fmt.Errorf("unit %s: RestartSec=%s: %w", name, v, err)
			}
			u.RestartSec = time.Duration(secs * float64(time.Second))
		}
	}
	if u.ExecStart == "" {
		return u, fmt.Errorf("unit %s has no ExecStart", name)
	}
	return u, sc.Err()
}

// orderUnits puts each unit after the units it names in After= (names not
// among them are ignored), otherwise by name.
func orderUnits(units []unit) []unit {
	sort.Slice(units, func(i, j int) bool { return units[i].Name < units[j].Name })
	byName := map[string]unit{}
	for _, u := range units {
		byName[u.Name] = u
	}
	var out []unit
	done := map[string]bool{}
	var visit func(u unit, depth int)
	visit = func(u unit, depth int) {
		if done[u.Name] || depth > len(units) {
			return
		}
		for _, a := range u.After {
			if d, ok := byName[a]; ok {
				visit(d, depth+1)
			}
		}
		if !done[u.Name] {
			done[u.Name] = true
			out = append(out, u)
		}
	}
	for _, u := range units {
		visit(u, 0)
	}
	return out
}

// argv is the unit's command line with its environment expanded: ${VAR} and
// $VAR from the environment files (read now: the host writes some at start)
// and Environment=. A missing file named with a leading "-" is skipped.
func (u unit) argv(root string) ([]string, []string, error) {
	env := map[string]string{}
	for _, f := range u.EnvFiles {
		optional := strings.HasPrefix(f, "-")
		vars, err := readEnv(filepath.Join(root, strings.TrimPrefix(f, "-")))
		if err != nil {
			if optional && os.IsNotExist(err) {
				continue
			}
			return nil, nil, fmt.Errorf("unit %s: EnvironmentFile %s: %w", u.Name, f, err)
		}
		for k, v := range vars {
			env[k] = v
		}
	}
	for k, v := range u.Env {
		env[k] = v
	}
	args := strings.Fields(os.Expand(u.ExecStart, func(k string) string { return env[k] }))
	if len(args) == 0 {
		return nil, nil, fmt.Errorf("unit %s: ExecStart is empty after expansion", u.Name)
	}
	environ := []string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	sort.Strings(environ)
	return args, environ, nil
}

// runUnits starts the units in order and restarts each when it exits, until
// ctx ends; then it stops them in reverse order (SIGTERM, SIGKILL after
// grace). Each unit's output goes to logDir/<name>.log.
func runUnits(ctx context.Context, units []unit, root, logDir string, grace time.Duration, log logr.Logger) {
	var wg sync.WaitGroup
	procs := make([]*unitProc, len(units))
	for i, u := range units {
		procs[i] = &unitProc{u: u}
		wg.Add(1)
		go func(p *unitProc) {
			defer wg.Done()
			p.run(ctx, root, logDir, log.WithValues("unit", p.u.Name))
		}(procs[i])
		// The next unit starts after this one has been started.
		p := procs[i]
		for range 50 {
			if p.started() {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	<-ctx.Done()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(grace)
	}
	wg.Wait()
}

type unitProc struct {
	u   unit
	mu  sync.Mutex
	cmd *exec.Cmd
	ran bool
}

func (p *unitProc) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ran
}

func (p *unitProc) run(ctx context.Context, root, logDir string, log logr.Logger) {
	logPath := filepath.Join(logDir, strings.TrimSuffix(p.u.Name, ".service")+".log")
	for ctx.Err() == nil {
		err := p.once(ctx, root, logPath, log)
		p.mu.Lock()
		p.ran = true
		p.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		log.Info("unit exited; restarting", "error", fmt.Sprint(err), "after", p.u.RestartSec, "log", logPath)
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.u.RestartSec):
		}
	}
}

func (p *unitProc) once(ctx context.Context, root, logPath string, log logr.Logger) error {
	args, env, err := p.u.argv(root)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = env, out, out, "/"
	// A unit ends with the process that runs it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	if ctx.Err() != nil {
		p.mu.Unlock()
		return ctx.Err()
	}
	err = cmd.Start()
	if err == nil {
		p.cmd = cmd
	}
	p.ran = true
	p.mu.Unlock()
	if err != nil {
		return err
	}
	log.Info("started", "pid", cmd.Process.Pid)
	return cmd.Wait()
}

// stop ends the unit's process: SIGTERM, then SIGKILL after grace.
func (p *unitProc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}
