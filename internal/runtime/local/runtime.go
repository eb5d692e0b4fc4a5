// Package local is the control-plane runtime of one machine: every replica of
// every component is a supervised process on its own loopback address
// (127.a.b.i), published services are TCP balancers on the machine's ports, and
// persistent data lives under the directory of the StorageClass that the spec
// names. Processes are detached: they keep serving while the operator restarts,
// and the next operator adopts them instead of starting them twice.
package local

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
	"github.com/hcp-dev/hcp/internal/ports"
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
	// keeps answering while the operator restarts. Empty: balancers run inside
	// the operator.
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
	balancers map[string]*balancer
	// publishers are balancer processes, by service.
	publishers map[string]*supervisor.Process
	ports      map[string]int
	health     *healthLoop
	// started is when each component's first replica was first started.
	started map[string]time.Time
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
	hosts, err := r.blocks.hosts(namespace, n)
	return controlplane.Network{Hosts: hosts}, err
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
			procs: map[string]*supervisor.Process{}, balancers: map[string]*balancer{}, publishers: map[string]*supervisor.Process{}, ports: map[string]int{}, started: map[string]time.Time{}}
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
	secrets, err := r.secrets(ctx, cp)
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
			if dataDir, err = r.storagePath(ctx, c.StorageClass); err != nil {
				return nil, err
			}
			for i := range c.Replicas {
				volumes[fmt.Sprintf("%s-%d", c.Name, i)] = replicaData(dataDir, p.namespace, fmt.Sprintf("%s-%d", c.Name, i))
			}
		}
		waiting := c.StartAfter != "" && !p.ready(c.StartAfter)
		held := holdFollowers(c, p.ready(c.Name), time.Since(p.firstStart(c.Name)))
		for i, rep := range c.Replicas {
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
	if p.health == nil {
		roots, err := pki.CertPool(secrets[controlplane.SecretRootCA].Data[controlplane.KeyCA])
		if err != nil {
			return nil, err
		}
		p.health = startHealth(cp, volumes, roots, secrets, filepath.Join(p.dir, "logs"), func() { r.opts.Notify(cp.Namespace) })
	} else {
		p.health.update(cp, volumes)
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
	return p.health.status()
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
		for _, b := range p.balancers {
			b.close()
		}
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
		for _, b := range p.balancers {
			b.close()
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

func (r *Runtime) secrets(ctx context.Context, cp *controlplane.ControlPlane) (map[string]*corev1.Secret, error) {
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
		if out[name] != nil {
			continue
		}
		s := &corev1.Secret{}
		if err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("reading secret %s/%s: %w", cp.Namespace, name, err)
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

func (r *Runtime) storagePath(ctx context.Context, name string) (string, error) {
	sc := &storagev1.StorageClass{}
	if err := r.opts.Client.Get(ctx, client.ObjectKey{Name: name}, sc); err != nil {
		return "", fmt.Errorf("StorageClass %s: %w", name, err)
	}
	return StoragePath(sc)
}

func (r *Runtime) publish(p *plane, cp *controlplane.ControlPlane) error {
	for _, svc := range cp.Published {
		var backends []string
		for _, c := range cp.Components {
			if c.Name == svc.Component {
				for _, rep := range c.Replicas {
					backends = append(backends, rep.Host+":"+strconv.Itoa(svc.TargetPort))
				}
			}
		}
		if len(r.opts.BalancerCommand) > 0 {
			if err := r.publishProcess(p, svc, backends); err != nil {
				return err
			}
			continue
		}
		if b := p.balancers[svc.Service]; b != nil && (svc.Port == 0 || svc.Port == b.port()) {
			b.setBackends(backends)
			continue
		} else if b != nil {
			b.close()
			delete(p.balancers, svc.Service)
		}
		port, err := r.choosePort(p, svc)
		if err != nil {
			return err
		}
		b, err := newBalancer(r.opts.PublicAddress+":"+strconv.Itoa(port), backends, healthPath(svc), r.opts.Log)
		if err != nil {
			return fmt.Errorf("publishing %s on port %d: %w", svc.Service, port, err)
		}
		p.balancers[svc.Service] = b
		p.ports[svc.Service] = b.port()
	}
	data, _ := json.Marshal(p.ports)
	return writeFile(filepath.Join(p.dir, "ports.json"), data)
}

// healthPath is the HTTPS path whose 200 says a replica of a published
// service serves: the API server's /readyz. Other services are balanced on
// accepted connections alone.
func healthPath(svc controlplane.PublishedService) string {
	if svc.Service == string(hyperv1.APIServer) {
		return "/readyz"
	}
	return ""
}

// publishProcess runs (or adopts) the balancer process of a published service.
func (r *Runtime) publishProcess(p *plane, svc controlplane.PublishedService, backends []string) error {
	dir := filepath.Join(p.dir, "publish-"+strings.ToLower(svc.Service))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	state := filepath.Join(dir, "process.json")
	port := svc.Port
	if port != 0 && slices.Contains(reservedPorts, port) {
		return fmt.Errorf("port %d for %s is reserved for control plane components on this machine; choose another nodePort.port", port, svc.Service)
	}
	// Keep the port used before while our balancer (running or to be adopted)
	// holds it or it is free.
	if prev := p.ports[svc.Service]; port == 0 && prev != 0 && !r.portHeld(p, prev) && (exists(state) || ports.Listenable(r.opts.PublicAddress, prev)) {
		port = prev
	}
	if port == 0 {
		var err error
		if port, err = r.pickPort(p, svc); err != nil {
			return err
		}
	}
	args := append(append([]string{}, r.opts.BalancerCommand[1:]...), "--listen", net.JoinHostPort(r.opts.PublicAddress, strconv.Itoa(port)))
	for _, b := range backends {
		args = append(args, "--backend", b)
	}
	if path := healthPath(svc); path != "" {
		// The API server's balancer also watches over the control plane.
		args = append(args, "--health-path", path, "--plane-dir", p.dir)
	}
	sum := sha256.Sum256([]byte(strings.Join(args, " ")))
	hash := hex.EncodeToString(sum[:8])
	if proc := p.publishers[svc.Service]; proc != nil {
		if proc.Spec().Hash == hash {
			return nil
		}
		proc.Stop(5 * time.Second)
		delete(p.publishers, svc.Service)
	}
	proc, err := supervisor.Start(context.Background(), supervisor.Spec{
		Name: p.namespace + "/publish-" + svc.Service, Path: r.opts.BalancerCommand[0], Args: args, Dir: dir,
		LogPath: filepath.Join(p.dir, "logs", "publish-"+strings.ToLower(svc.Service)+".log"),
		Detach:  true, StateFile: state, Hash: hash,
	}, r.opts.Log)
	if err != nil {
		return fmt.Errorf("publishing %s on port %d: %w", svc.Service, port, err)
	}
	p.publishers[svc.Service] = proc
	p.ports[svc.Service] = port
	return nil
}

// pickPort picks a free port for a service: 6443 for the API server when free,
// else any free one. A port another control plane's balancer was given counts
// as taken even before that balancer process has bound it.
func (r *Runtime) pickPort(p *plane, svc controlplane.PublishedService) (int, error) {
	if svc.Service == string(hyperv1.APIServer) && !r.portHeld(p, DefaultAPIServerPort) && ports.Listenable(r.opts.PublicAddress, DefaultAPIServerPort) {
		return DefaultAPIServerPort, nil
	}
	for range 10 {
		port, err := ports.Free(r.opts.PublicAddress)
		if err != nil || !r.portHeld(p, port) {
			return port, err
		}
	}
	return 0, errors.New("no free port to publish on")
}

// portHeld reports whether another control plane here publishes on port.
func (r *Runtime) portHeld(p *plane, port int) bool {
	for _, other := range r.planes {
		if other == p {
			continue
		}
		for _, used := range other.ports {
			if used == port {
				return true
			}
		}
	}
	return false
}

// choosePort picks a published port: the spec's, else the one used before, else
// (for the API server) 6443 when free, else one the kernel picks.
func (r *Runtime) choosePort(p *plane, svc controlplane.PublishedService) (int, error) {
	if svc.Port != 0 {
		if slices.Contains(reservedPorts, svc.Port) {
			return 0, fmt.Errorf("port %d for %s is reserved for control plane components on this machine; choose another nodePort.port", svc.Port, svc.Service)
		}
		return svc.Port, nil
	}
	if prev := p.ports[svc.Service]; prev != 0 && !r.portHeld(p, prev) && ports.Listenable(r.opts.PublicAddress, prev) {
		return prev, nil
	}
	if svc.Service == string(hyperv1.APIServer) && !r.portHeld(p, DefaultAPIServerPort) && ports.Listenable(r.opts.PublicAddress, DefaultAPIServerPort) {
		return DefaultAPIServerPort, nil
	}
	return 0, nil
}

func (r *Runtime) runReplica(ctx context.Context, p *plane, c controlplane.Component, i int, rep controlplane.Replica,
	key, storage string, secrets map[string]*corev1.Secret, rel *release.Release) error {
	dir := filepath.Join(p.dir, key)
	mount := filepath.Join(dir, "etc")
	h := sha256.New()
	h.Write([]byte(c.Hash()))
	for _, v := range c.Volumes {
		s := secrets[v.Secret]
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := writeIfChanged(filepath.Join(mount, v.Name, k), s.Data[k]); err != nil {
				return err
			}
			h.Write([]byte(v.Name + "/" + k))
			h.Write(s.Data[k])
		}
	}
	data := filepath.Join(dir, "data")
	if c.Persistent {
		data = replicaData(storage, p.namespace, key)
		if err := recordVolume(p.dir, data); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	localize := strings.NewReplacer(controlplane.MountRoot, mount, controlplane.DataRoot+"/"+c.Name, data).Replace
	for name, content := range rep.Files {
		if err := writeIfChanged(filepath.Join(mount, controlplane.ReplicaVolume, name), []byte(localize(content))); err != nil {
			return err
		}
	}
	args := make([]string, len(rep.Args))
	for j, a := range rep.Args {
		args[j] = localize(a)
	}
	hash := hex.EncodeToString(h.Sum(nil)[:8])
	if proc := p.procs[key]; proc != nil {
		if proc.Spec().Hash == hash {
			return nil
		}
		proc.Stop(15 * time.Second)
		delete(p.procs, key)
	}
	proc, err := supervisor.Start(context.Background(), supervisor.Spec{
		Name:      p.namespace + "/" + key,
		Path:      rel.Binary(c.Binary),
		Args:      args,
		Env:       append([]string{processorLimit}, c.Env...),
		Dir:       dir,
		LogPath:   filepath.Join(p.dir, "logs", key+".log"),
		Detach:    true,
		StateFile: filepath.Join(dir, "process.json"),
		Hash:      hash,
	}, r.opts.Log)
	if err != nil {
		return err
	}
	p.procs[key] = proc
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFile(path, data)
}

// replicaData is a persistent replica's data directory on its StorageClass's path.
func replicaData(storage, namespace, key string) string {
	return filepath.Join(storage, namespace, key)
}

// recordVolume remembers a data directory so Delete removes it even after a restart.
func recordVolume(planeDir, path string) error {
	file := filepath.Join(planeDir, "volumes.json")
	var vols []string
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &vols); err != nil {
			return fmt.Errorf("%s is unreadable: %w", file, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if slices.Contains(vols, path) {
		return nil
	}
	b, _ := json.Marshal(append(vols, path))
	return writeFile(file, b)
}

// tlsPair returns the client certificate in a Secret, or nil.
func tlsPair(s *corev1.Secret) *tls.Certificate {
	if s == nil {
		return nil
	}
	c, err := tls.X509KeyPair(s.Data[controlplane.KeyCert], s.Data[controlplane.KeyKey])
	if err != nil {
		return nil
	}
	return &c
}
