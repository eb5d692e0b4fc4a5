package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hcp-dev/hcp/internal/ports"
)

// DefaultPort is the management API port on first start when it is free.
const DefaultPort = 7443

// state is what a data directory remembers between runs.
type state struct {
	APIPort        int `json:"apiPort"`
	EtcdClientPort int `json:"etcdClientPort"`
	EtcdPeerPort   int `json:"etcdPeerPort"`
	KCMPort        int `json:"kcmPort"`
	SchedulerPort  int `json:"schedulerPort,omitempty"`
	// Ports are other services' ports, by name.
	Ports map[string]int `json:"ports,omitempty"`

	// busy says which default ports were taken, and what was chosen instead.
	busy []string
}

func loadState(path string) (state, error) {
	var s state
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("reading %s: %w (remove it to start with new ports)", path, err)
	}
	return s, nil
}

func (s state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// choosePorts fills in the ports: the one asked for, else the remembered one
// while it is free, else the default (for the API) or any free port.
// With nodes the API listens on every address, so its port must be free on
// every address.
func (s *state) choosePorts(apiPort int, nodes bool) error {
	var err error
	apiFree := portFree
	if nodes {
		apiFree = func(port int) bool { return ports.Listenable("0.0.0.0", port) }
	}
	if apiPort != 0 {
		if !apiFree(apiPort) {
			return fmt.Errorf("port %d for the management API is in use; choose another with --port", apiPort)
		}
		s.APIPort = apiPort
	} else {
		remembered := s.APIPort
		if s.APIPort, err = keepOrPick(s.APIPort, DefaultPort, apiFree); err != nil {
			return err
		}
		if s.APIPort != DefaultPort && s.APIPort != remembered {
			s.busy = append(s.busy, fmt.Sprintf("port %d (the management API's default) is busy: using %d", DefaultPort, s.APIPort))
		}
	}
	for _, p := range []*int{&s.EtcdClientPort, &s.EtcdPeerPort, &s.KCMPort, &s.SchedulerPort} {
		if *p, err = keepOrPick(*p, 0, portFree); err != nil {
			return err
		}
	}
	return nil
}

func keepOrPick(remembered, preferred int, free func(int) bool) (int, error) {
	if remembered != 0 && free(remembered) {
		return remembered, nil
	}
	if preferred != 0 && free(preferred) {
		return preferred, nil
	}
	for {
		port, err := ports.Free("127.0.0.1")
		if err != nil || free(port) {
			return port, err
		}
	}
}

func portFree(port int) bool { return ports.Listenable("127.0.0.1", port) }

// lockFile is the data directory's lock; it holds the pid of the hcp up
// that uses the directory.
const lockFile = "hub.lock"

// Running says whether an hcp up runs on dataDir: the process its lock file
// names is alive.
func Running(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, lockFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// lockDir takes the data directory's lock, so that one hcp up uses it at a time.
// The lock is released by the kernel when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "another process"
		} else {
			holder = "process " + holder
		}
		return nil, fmt.Errorf("data directory %s is in use by %s (another hcp up?); stop it first or choose another --data-dir", dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
