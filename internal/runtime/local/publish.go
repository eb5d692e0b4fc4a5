package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/ports"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// publish runs the balancer process of each published service, sending to
// the replicas of its component, and records the ports in ports.json.
func (r *Runtime) publish(p *plane, cp *controlplane.ControlPlane) error {
	for _, svc := range cp.Published {
		var backends []string
		for _, c := range cp.Components {
			if c.Name == svc.Component {
				for _, rep := range c.Instances(p.hosts) {
					backends = append(backends, rep.Host+":"+strconv.Itoa(svc.TargetPort))
				}
			}
		}
		if err := r.publishProcess(p, svc, backends); err != nil {
			return err
		}
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
