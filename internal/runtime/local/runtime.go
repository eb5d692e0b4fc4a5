// Package local is the control-plane runtime of one machine: every replica of
// every component is a supervised process on its own loopback address
// (127.a.b.i), published services are TCP balancers on the machine's ports, and
// persistent data lives under the directory of the StorageClass that the spec
// names. Processes are detached: they keep serving while the operator restarts,
// and the next operator adopts them instead of starting them twice.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/pki"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// Provisioner is the StorageClass provisioner whose parameters.path is a
// directory on this machine.
const Provisioner = "hcp.dev/local"

// PathParameter is the StorageClass parameter holding the directory.
const PathParameter = "path"

// DefaultAPIServerPort is the published API server port when the spec names
// none and it is free.
const DefaultAPIServerPort = 6443

// OwnerFile, in the runtime's directory, holds the pid of the process that
// supervises its control planes.
const OwnerFile = "owner.pid"

// reservedPorts are used by components on their loopback hosts; a published
// service listening on all addresses cannot take them.
var reservedPorts = []int{controlplane.EtcdClientPort, controlplane.EtcdPeerPort, controlplane.KubeAPIServerPort,
	controlplane.KCMPort, controlplane.SchedulerPort, controlplane.KonnServerPort, controlplane.KonnAgentPort,
	controlplane.KonnAdminPort, controlplane.KonnHealthPort}

// Options configure the runtime.
type Options struct {
	// Dir holds one directory per control plane (files, logs, process records).
	Dir string
	// Client reads Secrets and StorageClasses.
	Client client.Reader
	// Log is the runtime's logger.
	Log logr.Logger
	// Notify is called with a control plane's namespace when its health changes.
	Notify func(namespace string)
	// StopOnClose stops every process when the runtime closes (hcp up); otherwise
	// they keep running for the next operator to adopt.
	StopOnClose bool
	// PublicAddress is where published services listen; all addresses when empty.
	PublicAddress string
	// BalancerCommand runs a published service's balancer as its own detached
	// process (argv, then --listen and --backend flags are added), so the service
	// keeps answering while the operator restarts. Required.
	BalancerCommand []string
}

// processorLimit runs each control plane process on one Go processor. The
// processes of many control planes share this machine's cores; with one P a
// process has no idle processors for the garbage collector's idle mark workers
// or for spinning threads, which measured less CPU at rest (3.5 % against 3.8 %
// of a core per SingleReplica control plane) and faster HighlyAvailable
// creates (p50 8.5 s against 10.1 s) on 2 cores. The cost: one hosted API
// server process uses at most one core. The Kubernetes runtime leaves this to
// Go's default (the container's CPU limit).
const processorLimit = "GOMAXPROCS=1"

// Runtime runs control planes as local processes.
type Runtime struct {
	opts   Options
	mu     sync.Mutex
	planes map[string]*plane
	blocks *blocks
}

type plane struct {
	namespace string
	dir       string
	procs     map[string]*supervisor.Process
	// publishers are balancer processes, by service.
	publishers map[string]*supervisor.Process
	ports      map[string]int
	health     *healthLoop
	// exited wakes the health loop when a replica's process exits, so the
	// exit shows in the status before the restart can hide it.
	exited chan struct{}
	// started is when each component's first replica was first started.
	started map[string]time.Time
	// restarted is when each replica's process was last started here (not
	// for adopted ones), by <component>-<replica>.
	restarted map[string]time.Time
	// desired is each replica's current specification hash.
	desired map[string]string
	// cp is the control plane as last applied.
	cp *controlplane.ControlPlane
	// hosts place its replicas.
	hosts hosts
}

// followerWait is how long replicas after the first of a stateless component
// wait for it to become ready before starting anyway.
const followerWait = 30 * time.Second

// holdFollowers reports whether the replicas after the first of a component
// wait. On one machine the replicas of a stateless component share its cores:
// the first starts alone, so it serves sooner, and the others follow once it is
// ready, or followerWait after it started should it never be. etcd members
// start together: they need a quorum.
func holdFollowers(c controlplane.Component, ready bool, sinceFirst time.Duration) bool {
	return !c.Persistent && !ready && sinceFirst < followerWait
}

// firstStart is when this runtime first started a component's first replica;
// now when it has not.
func (p *plane) firstStart(component string) time.Time {
	if t, ok := p.started[component]; ok {
		return t
	}
	return time.Now()
}

// ready reports whether a component has a ready replica.
func (p *plane) ready(component string) bool {
	if p.health == nil {
		return false
	}
	for _, c := range p.health.status() {
		if c.Name == component {
			return c.ReadyReplicas > 0
		}
	}
	return false
}

// New returns a runtime keeping its state in opts.Dir.
func New(opts Options) (*Runtime, error) {
	if len(opts.BalancerCommand) == 0 {
		return nil, errors.New("the local runtime needs a balancer command (hcp balance)")
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	b, err := loadBlocks(filepath.Join(opts.Dir, "blocks.json"), opts.Dir)
	if err != nil {
		return nil, err
	}
	// The control planes' watchdogs (their API server balancers) tell from
	// this file whether a supervisor still runs them.
	if err := writeFile(filepath.Join(opts.Dir, OwnerFile), []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return nil, err
	}
	return &Runtime{opts: opts, planes: map[string]*plane{}, blocks: b}, nil
}

// Network gives the control plane its replica hosts: n loopback addresses.
func (r *Runtime) Network(namespace string, n int) (controlplane.Network, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.blocks.hosts(namespace, n)
	return hosts(h), err
}

// Apply makes the control plane's processes and published services match cp,
// starting, adopting or restarting replicas as needed. It does not wait for
// readiness; Status reports it, and Notify is called when it changes.
func (r *Runtime) Apply(ctx context.Context, cp *controlplane.ControlPlane, rel *release.Release) (controlplane.Endpoints, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.planes[cp.Namespace]
	if p == nil {
		p = &plane{namespace: cp.Namespace, dir: filepath.Join(r.opts.Dir, cp.Namespace),
			procs: map[string]*supervisor.Process{}, publishers: map[string]*supervisor.Process{}, ports: map[string]int{}, started: map[string]time.Time{},
			restarted: map[string]time.Time{}, desired: map[string]string{}, exited: make(chan struct{}, 1)}
		if err := os.MkdirAll(filepath.Join(p.dir, "logs"), 0o700); err != nil {
			return nil, err
		}
		if b, err := os.ReadFile(filepath.Join(p.dir, "ports.json")); err == nil {
			if err := json.Unmarshal(b, &p.ports); err != nil {
				// The ports are chosen anew; the published addresses may change.
				r.opts.Log.Error(err, "the remembered published ports are unreadable; choosing new ones", "file", filepath.Join(p.dir, "ports.json"))
				p.ports = map[string]int{}
			}
		}
		r.planes[cp.Namespace] = p
	}
	most := 0
	for _, c := range cp.Components {
		most = max(most, c.Replicas)
	}
	h, err := r.blocks.hosts(cp.Namespace, most)
	if err != nil {
		return nil, err
	}
	p.hosts = h
	secrets, err := r.secrets(cp)
	if err != nil {
		return nil, err
	}
	if err := r.publish(p, cp); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	volumes := map[string]string{}
	for _, c := range cp.Components {
		dataDir := ""
		if c.Persistent {
			if dataDir, err = storagePath(cp, c.StorageClass); err != nil {
				return nil, err
			}
			for i := range c.Replicas {
				volumes[fmt.Sprintf("%s-%d", c.Name, i)] = replicaData(dataDir, p.namespace, fmt.Sprintf("%s-%d", c.Name, i))
			}
		}
		waiting := c.StartAfter != "" && !p.ready(c.StartAfter)
		held := holdFollowers(c, p.ready(c.Name), time.Since(p.firstStart(c.Name)))
		for i, rep := range c.Instances(p.hosts) {
			key := fmt.Sprintf("%s-%d", c.Name, i)
			want[key] = true
			if (waiting || i > 0 && held) && p.procs[key] == nil && !exists(filepath.Join(p.dir, key, "process.json")) {
				continue
			}
			if err := r.runReplica(ctx, p, c, i, rep, key, dataDir, secrets, rel); err != nil {
				return nil, err
			}
			if _, ok := p.started[c.Name]; !ok {
				p.started[c.Name] = time.Now()
			}
		}
	}
	for key, proc := range p.procs {
		if !want[key] {
			proc.Stop(15 * time.Second)
			delete(p.procs, key)
		}
	}
	p.cp = cp
	if p.health == nil {
		roots, err := pki.CertPool(secrets[controlplane.SecretRootCA].Data[controlplane.KeyCA])
		if err != nil {
			return nil, err
		}
		p.health = startHealth(cp, p.hosts, volumes, roots, secrets, filepath.Join(p.dir, "logs"), p.exited, func() { r.opts.Notify(cp.Namespace) })
	} else {
		p.health.update(cp, p.hosts, volumes)
	}
	out := controlplane.Endpoints{}
	for k, v := range p.ports {
		out[k] = controlplane.Endpoint{Port: v}
	}
	for _, svc := range cp.Published {
		if ep, ok := out[svc.Service]; ok && svc.Service == string(hyperv1.APIServer) && svc.Port == 0 && ep.Port != DefaultAPIServerPort {
			ep.Note = fmt.Sprintf("port %d was busy on this machine", DefaultAPIServerPort)
			out[svc.Service] = ep
		}
	}
	return out, nil
}

// Status is the readiness of each component, from the latest probes; nil when
// the control plane is not running here.
func (r *Runtime) Status(namespace string) []hyperv1.ComponentStatus {
	r.mu.Lock()
	p := r.planes[namespace]
	r.mu.Unlock()
	if p == nil || p.health == nil {
		return nil
	}
	out := p.health.status()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range out {
		if p.cp != nil {
			for _, c := range p.cp.Components {
				if c.Name == out[i].Name {
					out[i].UpdatedReplicas = p.updated(c)
				}
			}
		}
		for key, proc := range p.procs {
			if strings.TrimRight(key, "0123456789") == out[i].Name+"-" {
				out[i].Restarts += int32(proc.Exits())
			}
		}
	}
	return out
}

// Delete stops a control plane's processes and services and removes all its
// files and data, including processes left by an earlier operator.
func (r *Runtime) Delete(ctx context.Context, namespace string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := filepath.Join(r.opts.Dir, namespace)
	if p := r.planes[namespace]; p != nil {
		if p.health != nil {
			p.health.stop()
		}
		// The data goes too, so nothing is worth a graceful shutdown.
		var wg sync.WaitGroup
		for _, proc := range p.procs {
			wg.Go(func() { proc.Stop(0) })
		}
		for _, proc := range p.publishers {
			wg.Go(func() { proc.Stop(0) })
		}
		wg.Wait()
		delete(r.planes, namespace)
	}
	records, _ := filepath.Glob(filepath.Join(dir, "*", "process.json"))
	for _, rec := range records {
		supervisor.StopRecorded(rec, 0)
	}
	// A process started by a supervisor killed before it could record it has
	// no record; its command line names the plane's files.
	for _, pid := range processesNaming(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "volumes.json")); err == nil {
		var vols []string
		if err := json.Unmarshal(b, &vols); err != nil {
			// Removing the directory without knowing where the data volumes
			// are would leave them behind for good.
			return fmt.Errorf("%s is unreadable (%v): it lists the control plane's data volumes; fix or remove it, removing the volumes by hand", filepath.Join(dir, "volumes.json"), err)
		}
		for _, v := range vols {
			if err := os.RemoveAll(v); err != nil {
				return fmt.Errorf("removing data %s: %w", v, err)
			}
			_ = os.Remove(filepath.Dir(v)) // the namespace's directory, once empty
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return r.blocks.release(namespace)
}

// Close ends supervision: processes stop when StopOnClose is set, else they keep
// running for the next operator.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wg sync.WaitGroup
	// On a stop, etcd goes after the components that use it and the
	// balancers (the planes' watchdogs) last: a stop cut short leaves no API
	// server without its etcd, and a watchdog to end what it left.
	var etcds, others, publishers []*supervisor.Process
	for _, p := range r.planes {
		if p.health != nil {
			p.health.stop()
		}
		for key, proc := range p.procs {
			if strings.HasPrefix(key, controlplane.Etcd+"-") {
				etcds = append(etcds, proc)
			} else {
				others = append(others, proc)
			}
		}
		publishers = append(publishers, slices.Collect(maps.Values(p.publishers))...)
	}
	for _, group := range [][]*supervisor.Process{others, etcds, publishers} {
		for _, proc := range group {
			wg.Go(func() {
				if r.opts.StopOnClose {
					proc.Stop(10 * time.Second)
				} else {
					proc.Release()
				}
			})
		}
		wg.Wait()
	}
	if r.opts.StopOnClose {
		// Processes of control planes not reconciled since the start were never
		// adopted; they stop too.
		records, _ := filepath.Glob(filepath.Join(r.opts.Dir, "*", "*", "process.json"))
		for _, rec := range records {
			wg.Go(func() { supervisor.StopRecorded(rec, 10*time.Second) })
		}
		wg.Wait()
	}
	r.planes = map[string]*plane{}
}

// LogPath is the log file of one replica of a component.
func (r *Runtime) LogPath(namespace, component string, replica int) string {
	return filepath.Join(r.opts.Dir, namespace, "logs", fmt.Sprintf("%s-%d.log", component, replica))
}

// Pids returns the process IDs of a control plane's replicas, by component-i.
func (r *Runtime) Pids(namespace string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	if p := r.planes[namespace]; p != nil {
		for k, proc := range p.procs {
			out[k] = proc.Pid()
		}
	}
	return out
}

func (r *Runtime) secrets(cp *controlplane.ControlPlane) (map[string]*corev1.Secret, error) {
	out := map[string]*corev1.Secret{}
	names := []string{controlplane.SecretRootCA}
	for _, c := range cp.Components {
		for _, v := range c.Volumes {
			names = append(names, v.Secret)
		}
		if c.Probe.Secret != "" {
			names = append(names, c.Probe.Secret)
		}
	}
	for _, name := range names {
		s := cp.Secrets[name]
		if s == nil {
			return nil, fmt.Errorf("secret %s/%s is not among the control plane's Secrets", cp.Namespace, name)
		}
		out[name] = s
	}
	return out, nil
}

// StoragePath returns the directory of a local StorageClass.
func StoragePath(sc *storagev1.StorageClass) (string, error) {
	if sc.Provisioner != Provisioner {
		return "", fmt.Errorf("StorageClass %s has provisioner %q; the local runtime needs %q", sc.Name, sc.Provisioner, Provisioner)
	}
	path := sc.Parameters[PathParameter]
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("StorageClass %s: parameters.path %q must be an absolute directory", sc.Name, path)
	}
	return path, nil
}

// storagePath is the directory of the persistent components' StorageClass,
// which the reconciler resolved.
func storagePath(cp *controlplane.ControlPlane, name string) (string, error) {
	if cp.Storage == nil || cp.Storage.Name != name {
		return "", fmt.Errorf("StorageClass %s was not resolved for %s", name, cp.Namespace)
	}
	return StoragePath(cp.Storage)
}
