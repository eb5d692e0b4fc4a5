package local

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/probe"
)

// healthLoop probes every replica of a control plane and calls notify when
// readiness changes: every 5s (as often as a kubelet's default probe) while all
// are ready; when some are not, every 100ms for a minute after the last change,
// then every second; and at once when a replica's process exits.
type healthLoop struct {
	notify func()
	// wake makes it probe at once.
	wake <-chan struct{}
	// logDir holds the replicas' logs, <component>-<replica>.log.
	logDir  string
	roots   *x509.CertPool
	secrets map[string]*corev1.Secret
	cancel  context.CancelFunc
	done    chan struct{}

	mu    sync.Mutex
	cp    *controlplane.ControlPlane
	hosts hosts
	// volumes are the replicas' persistent data directories, by
	// <component>-<replica>.
	volumes map[string]string
	clients map[string]*probe.Client
	last    []hyperv1.ComponentStatus
	// replicas is each replica's latest probe, by <component>-<replica>.
	replicas map[string]replicaProbe
	// noSpace is whether an etcd member's NOSPACE alarm is raised, by
	// etcd-<replica>, once known.
	noSpace map[string]bool
}

// replicaProbe is a replica's latest probe: whether it passed, and when it
// began.
type replicaProbe struct {
	ready bool
	at    time.Time
}

func startHealth(cp *controlplane.ControlPlane, hosts hosts, volumes map[string]string, roots *x509.CertPool, secrets map[string]*corev1.Secret, logDir string,
	wake <-chan struct{}, notify func()) *healthLoop {
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthLoop{notify: notify, wake: wake, roots: roots, secrets: secrets, logDir: logDir, cancel: cancel, done: make(chan struct{}),
		cp: cp, hosts: hosts, volumes: volumes, clients: map[string]*probe.Client{}, replicas: map[string]replicaProbe{}, noSpace: map[string]bool{}}
	go h.run(ctx)
	return h
}

func (h *healthLoop) update(cp *controlplane.ControlPlane, hosts hosts, volumes map[string]string) {
	h.mu.Lock()
	h.cp, h.hosts = cp, hosts
	h.volumes = volumes
	h.mu.Unlock()
}

func (h *healthLoop) stop() {
	h.cancel()
	<-h.done
}

func (h *healthLoop) status() []hyperv1.ComponentStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hyperv1.ComponentStatus(nil), h.last...)
}

// readySince reports whether a replica's latest probe passed and began after t.
func (h *healthLoop) readySince(key string, t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.replicas[key]
	return p.ready && p.at.After(t)
}

// etcdLeads reports whether the etcd member rep of c leads its cluster.
func (h *healthLoop) etcdLeads(ctx context.Context, c controlplane.Component, rep controlplane.Replica) (bool, error) {
	h.mu.Lock()
	client := h.client(c.Probe.Secret)
	h.mu.Unlock()
	return client.EtcdLeads(ctx, "https://"+net.JoinHostPort(rep.Host, strconv.Itoa(c.Probe.Port)))
}

func (h *healthLoop) client(secret string) *probe.Client {
	if c := h.clients[secret]; c != nil {
		return c
	}
	c := probe.New(h.roots, tlsPair(h.secrets[secret]))
	h.clients[secret] = c
	return c
}

func (h *healthLoop) run(ctx context.Context) {
	defer close(h.done)
	lastChange := time.Now()
	for {
		now := h.probeAll(ctx)
		h.mu.Lock()
		changed := !reflect.DeepEqual(now, h.last)
		h.last = now
		h.mu.Unlock()
		if changed {
			lastChange = time.Now()
			h.notify()
		}
		interval := 5 * time.Second
		for _, c := range now {
			if c.ReadyReplicas < c.Replicas {
				interval = time.Second
				if time.Since(lastChange) < time.Minute {
					interval = 100 * time.Millisecond
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
			lastChange = time.Now()
		case <-time.After(interval):
		}
	}
}

func (h *healthLoop) probeAll(ctx context.Context) []hyperv1.ComponentStatus {
	h.mu.Lock()
	cp, hosts, volumes := h.cp, h.hosts, h.volumes
	h.mu.Unlock()
	out := make([]hyperv1.ComponentStatus, len(cp.Components))
	var wg sync.WaitGroup
	for ci, c := range cp.Components {
		reps := c.Instances(hosts)
		errs := make([]error, len(reps))
		began := time.Now()
		h.mu.Lock()
		client := h.client(c.Probe.Secret)
		h.mu.Unlock()
		for i, rep := range reps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				scheme := c.Probe.Scheme
				if scheme == "" {
					scheme = "https"
				}
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				errs[i] = client.Check(pctx, scheme+"://"+net.JoinHostPort(rep.Host, strconv.Itoa(c.Probe.Port))+c.Probe.Path)
			}()
		}
		wg.Wait()
		h.mu.Lock()
		for i, err := range errs {
			h.replicas[fmt.Sprintf("%s-%d", c.Name, i)] = replicaProbe{ready: err == nil, at: began}
		}
		h.mu.Unlock()
		st := hyperv1.ComponentStatus{Name: c.Name, Replicas: int32(len(reps)), Version: c.Version}
		for i, err := range errs {
			if err == nil {
				st.ReadyReplicas++
			} else if st.Message == "" {
				st.Message = fmt.Sprintf("replica %d is not ready", i)
				if why := lastProblem(filepath.Join(h.logDir, fmt.Sprintf("%s-%d.log", c.Name, i))); why != "" {
					st.Message += ": " + why
				}
			}
		}
		// A ready replica whose volume is full still cannot take a write.
		for i, rep := range reps {
			if st.Message != "" {
				break
			}
			key := fmt.Sprintf("%s-%d", c.Name, i)
			full := volumeFull(volumes[key])
			if c.Name == controlplane.Etcd {
				base := "https://" + net.JoinHostPort(rep.Host, strconv.Itoa(c.Probe.Port))
				refusing, err := h.guardSpace(ctx, client, key, base, full != "")
				switch {
				case full == "":
				case refusing:
					full += ": etcd refuses writes (its NOSPACE alarm is raised) until space is freed or the volume grows"
				default:
					full += fmt.Sprintf(": writes fail with no space left on device until space is freed or the volume grows (raising etcd's NOSPACE alarm failed: %v)", err)
				}
			}
			if full != "" {
				st.Message = fmt.Sprintf("replica %d: %s", i, full)
			}
		}
		out[ci] = st
	}
	return out
}

// volumeFull says how full a data directory's file system is when what is
// left would not hold another write-ahead log segment's worth of writes: less
// than 16 MiB or 2% of its size, whichever is more; "" otherwise.
func volumeFull(dir string) string {
	if dir == "" {
		return ""
	}
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return ""
	}
	free, size := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	if free >= max(16<<20, size/50) {
		return ""
	}
	return fmt.Sprintf("its data volume is full (%.1f MiB of %.0f MiB free)", float64(free)/(1<<20), float64(size)/(1<<20))
}

// guardSpace keeps an etcd member's NOSPACE alarm raised while its volume is
// full and disarms it once space returns, and reports whether it is raised.
// etcd refuses writes while the alarm is raised; without it, etcd takes
// writes until one cannot be written, then stops, and the API server holds
// every write until its client gives up. A volume that fills faster than a
// probe still stops etcd.
//
// A member is asked for its alarms once, and again only when its volume's
// state changes. An alarm etcd raised itself (its database over its quota)
// is disarmed too when the volume has space: etcd raises it again at the next
// write if the database is still over its quota.
func (h *healthLoop) guardSpace(ctx context.Context, client *probe.Client, key, base string, full bool) (bool, error) {
	h.mu.Lock()
	raised, known := h.noSpace[key]
	h.mu.Unlock()
	if known && raised == full {
		return raised, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := client.EtcdStatus(ctx, base)
	if err != nil {
		return false, err
	}
	if m.NoSpace != full {
		if err := client.EtcdNoSpace(ctx, base, m.ID, full); err != nil {
			h.mu.Lock()
			delete(h.noSpace, key)
			h.mu.Unlock()
			return m.NoSpace, err
		}
		m.NoSpace = full
	}
	h.mu.Lock()
	h.noSpace[key] = m.NoSpace
	h.mu.Unlock()
	return m.NoSpace, nil
}

// problems are what a component's log says when it cannot run, most telling first.
var problems = []string{"no space left on device", "address already in use", "permission denied", "panic:", "fatal", "level=fatal", `"level":"fatal"`}

// lastProblem is the latest line of a replica's log (its last 64 KiB) that
// says why it cannot run, shortened; "" when there is none.
func lastProblem(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := max(fi.Size()-window, 0)
	b := make([]byte, fi.Size()-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	for _, marker := range problems {
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.Contains(strings.ToLower(lines[i]), marker) {
				line := strings.TrimSpace(lines[i])
				// A structured (JSON) log line: its message and error.
				var entry struct{ Msg, Error string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg != "" {
					line = entry.Msg
					if entry.Error != "" {
						line += ": " + entry.Error
					}
				}
				if len(line) > 300 {
					line = line[:300] + "..."
				}
				return line
			}
		}
	}
	return ""
}
