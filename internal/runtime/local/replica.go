package local

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// runReplica starts (or adopts) one replica of a component: its files from
// the Secrets it mounts, its data directory, and its supervised process. A
// replica whose specification changed is restarted only when every other
// replica of the component is ready (see mayReplace): a change rolls out one
// replica at a time.
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
	p.desired[key] = hash
	if c.Persistent && c.Restore != "" && p.procs[key] == nil && !exists(filepath.Join(data, "member")) {
		etcdutl := rel.Binary(release.Etcdutl)
		if c.Release != nil {
			etcdutl = c.Release.Binary(release.Etcdutl)
		}
		r.opts.Log.Info("restoring a member's data from a backup", "replica", p.namespace+"/"+key, "snapshot", c.Restore)
		if err := backup.RestoreData(ctx, etcdutl, c.Restore, data, backup.MemberOf(args)); err != nil {
			return fmt.Errorf("%s: restoring from the backup: %w", key, err)
		}
	}
	if c.Release != nil {
		rel = c.Release
	}
	path := rel.Binary(c.Binary)
	if proc := p.procs[key]; proc != nil {
		if proc.Spec().Hash == hash || !p.mayReplace(c, key) {
			return nil
		}
		if p.leaderWaits(ctx, c, rep, key, path) {
			r.opts.Log.Info("the etcd leader restarts after the other members", "replica", p.namespace+"/"+key)
			return nil
		}
		r.opts.Log.Info("restarting a replica to roll out a change", "replica", p.namespace+"/"+key, "version", c.Version)
		proc.Stop(stopGrace(c))
		delete(p.procs, key)
	}
	proc, err := supervisor.Start(context.Background(), supervisor.Spec{
		Name:      p.namespace + "/" + key,
		Path:      path,
		Args:      args,
		Env:       append([]string{processorLimit}, c.Env...),
		Dir:       dir,
		LogPath:   filepath.Join(p.dir, "logs", key+".log"),
		Detach:    true,
		StateFile: filepath.Join(dir, "process.json"),
		Hash:      hash,
		OnExit: func(int) {
			select {
			case p.exited <- struct{}{}:
			default:
			}
		},
	}, r.opts.Log)
	if err != nil {
		return err
	}
	p.procs[key] = proc
	if !proc.Adopted() {
		p.restarted[key] = time.Now()
		// Probe soon: the replica is not ready until a probe says so.
		select {
		case p.exited <- struct{}{}:
		default:
		}
	}
	return nil
}

// stopGrace is how long a replica of c may take to stop.
func stopGrace(c controlplane.Component) time.Duration {
	if c.StopGrace > 0 {
		return c.StopGrace
	}
	return 15 * time.Second
}

// replicaReady reports whether a replica has been probed ready since its
// process last started here.
func (p *plane) replicaReady(key string) bool {
	return p.health != nil && p.health.readySince(key, p.restarted[key])
}

// mayReplace reports whether a replica of c may be restarted to take a new
// specification: every other replica is ready, so a rollout takes at most one
// replica out of service at a time (a replica that is not ready itself serves
// nothing, and may always go).
func (p *plane) mayReplace(c controlplane.Component, key string) bool {
	for j := range c.Replicas {
		if other := fmt.Sprintf("%s-%d", c.Name, j); other != key && !p.replicaReady(other) {
			return false
		}
	}
	return true
}

// leaderWaits reports whether a replica of a replicated etcd that is to run
// the binary at path keeps running for now because it leads while another
// member still runs an older binary: restarted last, the leader hands its
// leadership over once, to a member already on the new binary, instead of to
// one that restarts next. A leadership change can drop a write in flight
// (etcd times it out as "possibly due to previous leader failure", and the
// kube-apiserver does not retry writes), so a rollout makes as few as it can.
func (p *plane) leaderWaits(ctx context.Context, c controlplane.Component, rep controlplane.Replica, key, path string) bool {
	if c.Name != controlplane.Etcd || c.Replicas < 2 || p.health == nil {
		return false
	}
	behind := false
	for j := range c.Replicas {
		other := fmt.Sprintf("%s-%d", c.Name, j)
		if proc := p.procs[other]; other != key && proc != nil && proc.Spec().Path != path {
			behind = true
		}
	}
	if !behind {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	leads, err := p.health.etcdLeads(ctx, c, rep)
	// A member that cannot say serves nothing either: it may go.
	return err == nil && leads
}

// updated is how many replicas of c run its current specification and have
// been ready since they started.
func (p *plane) updated(c controlplane.Component) int32 {
	var n int32
	for j := range c.Replicas {
		key := fmt.Sprintf("%s-%d", c.Name, j)
		if proc := p.procs[key]; proc != nil && proc.Spec().Hash == p.desired[key] && p.replicaReady(key) {
			n++
		}
	}
	return n
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
