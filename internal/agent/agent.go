// Package agent is the host side of hcp: hcp-agent's discovery mode, which
// reports the host's inventory to the infrastructure service and runs the steps
// it is given; its install step, which applies a NodePool's Ignition; and node
// mode, which joins the host to the hosted cluster.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/version"
)

// Options configure discovery.
type Options struct {
	ServiceURL string
	InfraEnvID string
	Token      string
	CAFile     string
	// DataDir keeps the host ID; one per host (several lab hosts on a machine
	// each have their own).
	DataDir string
	// Hostname overrides the machine's hostname.
	Hostname string
	// Root is where an installation writes the host's files: / on a real
	// host, the host's own directory for lab hosts.
	Root string
	// KubeletPort is where the node's kubelet endpoint listens (0: 10250, or
	// a free port when that is taken).
	KubeletPort int
	// SimulatedNode makes the host a simulated node (no container runtime;
	// pods are reported Running without running) instead of a real one: for
	// scale tests with hundreds of hosts.
	SimulatedNode bool
	// PayloadDir is a release payload directory on this machine to take a
	// real node's binaries from; empty: they are downloaded from the service.
	PayloadDir string
	// RebootIntoDiscovery makes a host whose node the cluster deleted, or
	// whose Agent was unbound while its node ran (its cluster deleted), go
	// back to discovery by itself, as a machine that its management reboots
	// into the discovery image does (lab hosts).
	RebootIntoDiscovery bool
	// MachineShare is how many hosts share this machine (lab hosts): a real
	// node offers pods its share of the machine's CPU and memory, the rest
	// reserved, so several nodes on one machine do not promise it several
	// times over. 0 or 1: the whole machine.
	MachineShare int
	Log          logr.Logger
}

// ErrRejected is a final answer from the service: the agent stops.
var ErrRejected = errors.New("the infrastructure service rejected this host")

// HostID returns the host's ID, kept in dataDir: a random UUID made on the
// first run. It stays the same across restarts and differs between hosts even
// where motherboard serials are missing or duplicated.
func HostID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "host-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); agentapi.ValidID(id) {
			return id, nil
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	id := string(uuid.NewUUID())
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, os.Rename(tmp, path)
}

type client struct {
	http  *http.Client
	opts  Options
	host  string
	token string
}

// Run registers the host and serves steps until ctx ends or the service
// rejects the host.
func Run(ctx context.Context, o Options) error {
	if o.ServiceURL == "" || o.InfraEnvID == "" || o.Token == "" {
		return errors.New("--service-url, --infra-env-id and --token (or --token-file) are required")
	}
	if !agentapi.ValidID(o.InfraEnvID) {
		return fmt.Errorf("--infra-env-id %q: must be a UUID", o.InfraEnvID)
	}
	if u, err := url.Parse(o.ServiceURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--service-url %q: must be an https:// URL with a host", o.ServiceURL)
	}
	if o.Root != "" && !filepath.IsAbs(o.Root) {
		return fmt.Errorf("--root %q: must be an absolute directory", o.Root)
	}
	if o.MachineShare < 0 {
		return fmt.Errorf("--machine-share %d: must be the number of hosts on this machine (1 or more; 0 also means the whole machine)", o.MachineShare)
	}
	if o.KubeletPort < 0 || o.KubeletPort > 65535 {
		return fmt.Errorf("--kubelet-port %d: must be between 1 and 65535 (0 picks 10250 or a free port)", o.KubeletPort)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("--ca-file %s: no PEM certificate", o.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	id, err := HostID(o.DataDir)
	if err != nil {
		return fmt.Errorf("host ID: %w", err)
	}
	c := &client{http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}},
		opts: o, host: id, token: o.Token}
	o.Log.Info("starting discovery", "hostID", id, "service", o.ServiceURL)
	for {
		if err := c.register(ctx); err != nil {
			return err
		}
		err := c.poll(ctx)
		if errors.Is(err, errReregister) {
			o.Log.Info("the service forgot this host; registering again")
			continue
		}
		return err
	}
}

var errReregister = errors.New("re-register")

// register registers the host, retrying with backoff; it gives up only on
// 401, 403, 404 and 409.
func (c *client) register(ctx context.Context) error {
	delay := time.Second
	for {
		status, body, err := c.do(ctx, http.MethodPost, c.path(agentapi.RegisterPath), agentapi.HostCreateParams{HostID: c.host, DiscoveryAgentVersion: version.Version})
		switch {
		case err == nil && (status == http.StatusCreated || status == http.StatusOK):
			c.opts.Log.Info("registered", "hostID", c.host)
			return nil
		case err == nil && final(status):
			return fmt.Errorf("%w: %d %s", ErrRejected, status, reason(body))
		case err != nil:
			c.opts.Log.Info("registration failed; retrying", "error", err.Error(), "after", delay)
		default:
			c.opts.Log.Info("registration failed; retrying", "status", status, "reason", reason(body), "after", delay)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func final(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusConflict
}

// poll asks for steps and runs them until ctx ends.
func (c *client) poll(ctx context.Context) error {
	wait := time.Second
	for {
		status, body, err := c.do(ctx, http.MethodGet, c.path(agentapi.InstructionsPath), nil)
		switch {
		case err != nil:
			c.opts.Log.Info("polling failed", "error", err.Error())
			wait = 5 * time.Second
		case status == http.StatusNotFound:
			return errReregister
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return fmt.Errorf("%w: %d %s", ErrRejected, status, reason(body))
		case status != http.StatusOK:
			c.opts.Log.Info("polling failed", "status", status, "reason", reason(body))
			wait = 5 * time.Second
		default:
			var steps agentapi.Steps
			if err := json.Unmarshal(body, &steps); err != nil {
				c.opts.Log.Error(err, "reading steps")
				break
			}
			for _, s := range steps.Instructions {
				if s.StepType == agentapi.StepInstall {
					return c.installAndJoin(ctx, s)
				}
				c.run(ctx, s)
			}
			wait = time.Duration(max(steps.NextInstructionSeconds, 1)) * time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func (c *client) run(ctx context.Context, s agentapi.Step) {
	reply := agentapi.StepReply{StepType: s.StepType, StepID: s.StepID}
	switch s.StepType {
	case agentapi.StepInventory:
		inv, err := c.inventory()
		if err != nil {
			reply.ExitCode, reply.Error = 1, err.Error()
			break
		}
		b, _ := json.Marshal(inv)
		reply.Output = string(b)
	default:
		reply.ExitCode, reply.Error = 1, "unknown step type "+s.StepType
	}
	c.reply(ctx, reply)
}

// installAndJoin applies the NodePool's Ignition the step carries and runs
// the host as a node of the cluster, reporting the installation stages. When
// the cluster deletes the node, the host waits to be booted into discovery
// again (hcp-agent discover restarted).
func (c *client) installAndJoin(ctx context.Context, s agentapi.Step) error {
	log := c.opts.Log
	c.progress(ctx, agentapi.StageStartingInstallation, "")
	fail := func(err error) error {
		log.Error(err, "installation failed")
		c.reply(ctx, agentapi.StepReply{StepType: s.StepType, StepID: s.StepID, ExitCode: 1, Error: err.Error()})
		return c.poll(ctx)
	}
	if len(s.Args) != 1 {
		return fail(fmt.Errorf("install step: want the pointer Ignition as its one argument, got %d", len(s.Args)))
	}
	root := c.opts.Root
	if root == "" {
		root = "/"
	}
	c.progress(ctx, agentapi.StageWritingImage, "Applying the NodePool's Ignition under "+root)
	// An unreachable Ignition server (the host's link is down, the service
	// restarts) is waited out; a refused or invalid config fails the install.
	// The server also answers "not yet" until the cluster can take the host.
	if err := backoff(ctx, 5*time.Second, func() error {
		_, err := Install(ctx, []byte(s.Args[0]), root)
		if err != nil && !errors.Is(err, ErrUnreachable) {
			return permanent(err)
		}
		return err
	}, func(err error, wait time.Duration) {
		log.Info("fetching the Ignition failed; retrying", "error", err.Error(), "after", wait)
		c.progress(ctx, agentapi.StageWritingImage, "Waiting for the Ignition (retrying): "+err.Error())
	}); err != nil {
		return fail(err)
	}
	c.reply(ctx, agentapi.StepReply{StepType: s.StepType, StepID: s.StepID})
	inv, err := c.inventory()
	if err != nil {
		return fail(err)
	}
	c.progress(ctx, agentapi.StageRebooting, "Starting the node")
	log.Info("installed; joining the cluster as a node", "root", root)
	// The node's stages are reported in order, in the background: the node
	// keeps its heartbeats while the service is unreachable.
	stages := make(chan [2]string, 8)
	go func() {
		for st := range stages {
			c.progress(ctx, st[0], st[1])
		}
	}()
	run := RunRealNode
	if c.opts.SimulatedNode {
		run = RunNode
	}
	nodeCtx := ctx
	if c.opts.RebootIntoDiscovery {
		var release context.CancelCauseFunc
		nodeCtx, release = context.WithCancelCause(ctx)
		defer release(nil)
		go c.watchBinding(nodeCtx, release)
	}
	err = run(nodeCtx, NodeOptions{Root: root, Name: inv.Hostname, ProviderID: hosted.ProviderID(c.host), Inventory: inv,
		KubeletPort: c.opts.KubeletPort, Log: log.WithName("node"), Fetch: c.fetch, PayloadDir: c.opts.PayloadDir, MachineShare: c.opts.MachineShare,
		Progress: func(stage, info string) {
			select {
			case stages <- [2]string{stage, info}:
			default:
			}
		}})
	close(stages)
	if ctx.Err() == nil && errors.Is(context.Cause(nodeCtx), ErrHostReleased) {
		log.Info("the host was unbound from its cluster; it boots into discovery again")
		return errReregister
	}
	if errors.Is(err, ErrNodeDeleted) {
		if c.opts.RebootIntoDiscovery {
			log.Info("the cluster deleted this node; the host boots into discovery again")
			return errReregister
		}
		log.Info("the cluster deleted this node; boot the host into discovery again (restart hcp-agent discover) to reuse it")
		<-ctx.Done()
		return nil
	}
	if err != nil && ctx.Err() == nil {
		c.progress(ctx, agentapi.StageFailed, err.Error())
		return err
	}
	return nil
}

// bindingCheck is how often a host running a node asks the service whether
// it is still bound.
const bindingCheck = 10 * time.Second

// watchBinding asks the service every bindingCheck what it knows of this
// host while its node runs, and ends the node with ErrHostReleased once the
// host's Agent was unbound and waits for the host to boot into discovery
// again: what a host whose management reboots it would do. A service that
// cannot be reached changes nothing.
func (c *client) watchBinding(ctx context.Context, release context.CancelCauseFunc) {
	tick := time.NewTicker(bindingCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		status, body, err := c.do(ctx, http.MethodGet, c.path(agentapi.HostPath), nil)
		if err != nil || status != http.StatusOK {
			continue
		}
		var h agentapi.Host
		if json.Unmarshal(body, &h) == nil && h.Status == agentapi.StateUnbindingPendingUserAction {
			c.opts.Log.Info("the service says this host was unbound", "state", h.Status, "info", h.StatusInfo)
			release(ErrHostReleased)
			return
		}
	}
}

// inventory is the host's inventory with how it would run a node.
func (c *client) inventory() (*agentv1.HostInventory, error) {
	inv, err := Inventory(c.opts.Hostname)
	if err != nil {
		return nil, err
	}
	inv.NodeRuntime = &agentv1.HostNodeRuntime{Kind: "containerd", Problems: RealNodeProblems()}
	if c.opts.SimulatedNode {
		inv.NodeRuntime = &agentv1.HostNodeRuntime{Kind: "simulated"}
	}
	return inv, nil
}

// progress reports an installation stage. It retries until the service has
// it (the service or the management API may be restarting) and gives up only
// on a final answer (4xx: for example the host is no longer bound).
func (c *client) progress(ctx context.Context, stage, info string) {
	if len(info) > agentapi.MaxProgressInfo {
		info = info[:agentapi.MaxProgressInfo-3] + "..."
	}
	_ = backoff(ctx, 15*time.Second, func() error {
		status, body, err := c.do(ctx, http.MethodPut, c.path(agentapi.ProgressPath), agentapi.HostProgress{CurrentStage: stage, ProgressInfo: info})
		switch {
		case err != nil:
			return err
		case status < 300:
			return nil
		case status < 500 && status >= 400:
			c.opts.Log.Info("the service refused the progress report", "stage", stage, "status", status, "reason", reason(body))
			return permanent(errors.New(reason(body)))
		}
		return fmt.Errorf("%d %s", status, reason(body))
	}, func(err error, wait time.Duration) {
		c.opts.Log.Info("reporting progress failed; retrying", "stage", stage, "error", err.Error(), "after", wait)
	})
}

// fetch downloads an artifact of the service to dest (mode 0755): a node
// binary of the named release, or of the service's default one when release
// is empty.
func (c *client) fetch(ctx context.Context, file, release, dest string) error {
	u := strings.Replace(c.opts.ServiceURL+agentapi.DownloadPath, "{infra_env_id}", c.opts.InfraEnvID, 1) + "?file_name=" + url.QueryEscape(file)
	if release != "" {
		u += "&release=" + url.QueryEscape(release)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(agentapi.SecretKeyHeader, c.token)
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: c.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s %s", file, resp.Status, reason(b))
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp := dest + ".download"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}

func (c *client) reply(ctx context.Context, r agentapi.StepReply) {
	status, body, err := c.do(ctx, http.MethodPost, c.path(agentapi.InstructionsPath), r)
	if err != nil || status >= 300 {
		c.opts.Log.Info("sending a step reply failed", "step", r.StepID, "status", status, "reason", reason(body), "error", fmt.Sprint(err))
	}
}

func (c *client) path(p string) string {
	p = strings.Replace(p, "{infra_env_id}", c.opts.InfraEnvID, 1)
	return c.opts.ServiceURL + strings.Replace(p, "{host_id}", c.host, 1)
}

func (c *client) do(ctx context.Context, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(agentapi.SecretKeyHeader, c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, nil
}

func reason(body []byte) string {
	var e agentapi.Error
	if json.Unmarshal(body, &e) == nil && e.Reason != "" {
		return e.Reason
	}
	return strings.TrimSpace(string(body))
}
