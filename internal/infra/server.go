// Package infra is the infrastructure service: the HTTPS API that discovery
// agents talk to (register, poll steps, post replies and progress, in the shape
// of assisted-service's v2 API) and the downloads of each InfraEnv's discovery
// artifacts. It turns hosts into Agent objects and never trusts a body beyond
// its schema and size limits.
package infra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// UIDIndex is the cache index of InfraEnvs by metadata.uid, their InfraEnv ID.
const UIDIndex = "metadata.uid"

// InventoryRefresh is how old an inventory may get before the host is asked
// for a new one.
const InventoryRefresh = 10 * time.Minute

// CheckIns remembers when each Agent last talked to the service.
type CheckIns struct {
	mu   sync.Mutex
	last map[client.ObjectKey]time.Time
}

// Touch records a check-in now and reports whether it is the first one known.
func (c *CheckIns) Touch(key client.ObjectKey, now time.Time) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[client.ObjectKey]time.Time{}
	}
	_, seen := c.last[key]
	c.last[key] = now
	return !seen
}

// Last is the time of the latest check-in, if any.
func (c *CheckIns) Last(key client.ObjectKey) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.last[key]
	return t, ok
}

// Server handles the agent API and the artifact downloads.
type Server struct {
	Client   client.Client
	Signer   *Signer
	CheckIns *CheckIns
	// Artifacts renders an InfraEnv's discovery artifacts.
	Artifacts *Artifacts
	// PollInterval is how often agents poll for steps.
	PollInterval time.Duration
	// Ignition, when set, serves nodes' Ignition at /ignition.
	Ignition http.Handler
	// Registry, when set, serves the release images to nodes at /v2/ (the
	// OCI distribution API).
	Registry http.Handler
	// HostCame, when set, is called on each authenticated request of a
	// host: its node will pull images soon (the registry starts building
	// them).
	HostCame func()
	// Install returns the Ignition pointer config a bound Agent installs from.
	Install func(ctx context.Context, a *agentv1.Agent) ([]byte, error)
	// Changed is told the Agent whose state a request changed.
	Changed func(client.ObjectKey)
	Log     logr.Logger
	Now     func() time.Time
}

// Handler returns the HTTP handler of the service.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Changed == nil {
		s.Changed = func(client.ObjectKey) {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.RegisterPath, s.withInfraEnv(s.register))
	mux.HandleFunc("GET "+agentapi.HostPath, s.withInfraEnv(s.host))
	mux.HandleFunc("GET "+agentapi.InstructionsPath, s.withInfraEnv(s.instructions))
	mux.HandleFunc("POST "+agentapi.InstructionsPath, s.withInfraEnv(s.reply))
	mux.HandleFunc("PUT "+agentapi.ProgressPath, s.withInfraEnv(s.progress))
	mux.HandleFunc("GET "+agentapi.DownloadPath, s.withInfraEnv(s.download))
	if s.Ignition != nil {
		mux.Handle("GET /ignition", s.Ignition)
	}
	if s.Registry != nil {
		mux.Handle("/v2/", s.Registry)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv)

// withInfraEnv authenticates the request for the InfraEnv in its path: the
// token (X-Secret-Key, or api_key for downloads) must be signed by the service,
// unexpired and for that InfraEnv.
func (s *Server) withInfraEnv(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("infra_env_id")
		token := r.Header.Get(agentapi.SecretKeyHeader)
		if token == "" && strings.HasSuffix(r.URL.Path, "/downloads/files") {
			token = r.URL.Query().Get("api_key")
		}
		if !agentapi.ValidID(id) {
			writeError(w, http.StatusBadRequest, "infra_env_id: must be a UUID")
			return
		}
		if token == "" {
			writeError(w, http.StatusUnauthorized, agentapi.SecretKeyHeader+" header is missing")
			return
		}
		if err := s.Signer.Verify(token, id); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if s.HostCame != nil {
			s.HostCame()
		}
		list := &agentv1.InfraEnvList{}
		if err := s.Client.List(r.Context(), list, client.MatchingFields{UIDIndex: id}); err != nil {
			writeError(w, http.StatusServiceUnavailable, "looking up the InfraEnv: "+err.Error())
			return
		}
		if len(list.Items) != 1 || !list.Items[0].DeletionTimestamp.IsZero() {
			writeError(w, http.StatusNotFound, "infra-env "+id+" does not exist")
			return
		}
		h(w, r, &list.Items[0])
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	var p agentapi.HostCreateParams
	if !decode(w, r, agentapi.MaxSmallBodyBytes, &p) {
		return
	}
	if !agentapi.ValidID(p.HostID) {
		writeError(w, http.StatusBadRequest, "host_id: must be a lowercase UUID")
		return
	}
	key := client.ObjectKey{Namespace: ie.Namespace, Name: p.HostID}
	agent := &agentv1.Agent{}
	err := s.Client.Get(r.Context(), key, agent)
	status := http.StatusOK
	switch {
	case apierrors.IsNotFound(err):
		agent = newAgent(ie, p.HostID)
		if err := s.Client.Create(r.Context(), agent); err != nil && !apierrors.IsAlreadyExists(err) {
			writeError(w, http.StatusServiceUnavailable, "creating the Agent: "+err.Error())
			return
		}
		status = http.StatusCreated
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "reading the Agent: "+err.Error())
		return
	case agent.Labels[agentv1.InfraEnvNameLabel] != ie.Name:
		writeError(w, http.StatusConflict, "host "+p.HostID+" is registered with another InfraEnv")
		return
	case agent.Status.Progress.CurrentStage != "" || agent.Status.DebugInfo.State == agentapi.StateUnbindingPendingUserAction:
		// The host booted into discovery again: whatever it installed before
		// is gone, and a bound host installs anew.
		before := agent.DeepCopy()
		agent.Status.Progress = agentv1.HostProgressInfo{}
		if !hosted.Bound(agent) {
			agent.Status.DebugInfo = agentv1.DebugInfo{State: agentapi.StateDiscoveringUnbound, StateInfo: "The host booted into discovery again"}
		}
		if err := s.Client.Status().Patch(r.Context(), agent, client.MergeFrom(before)); err != nil {
			writeError(w, http.StatusServiceUnavailable, "resetting the Agent: "+err.Error())
			return
		}
	}
	s.CheckIns.Touch(key, s.Now())
	s.Changed(key)
	writeJSON(w, status, agentapi.Host{ID: p.HostID, InfraEnvID: string(ie.UID), Kind: "Host",
		Status: agent.Status.DebugInfo.State, Href: strings.Replace(strings.Replace(agentapi.InstructionsPath, "{infra_env_id}", string(ie.UID), 1), "{host_id}", p.HostID, 1)})
}

// newAgent is the Agent of a newly registered host: labelled with the
// InfraEnv's agentLabels and name, approved when the InfraEnv says so.
func newAgent(ie *agentv1.InfraEnv, hostID string) *agentv1.Agent {
	labels := map[string]string{}
	for k, v := range ie.Spec.AgentLabels {
		labels[k] = v
	}
	labels[agentv1.InfraEnvNameLabel] = ie.Name
	return &agentv1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ie.Namespace, Name: hostID, Labels: labels},
		Spec: agentv1.AgentSpec{
			Approved: ie.Spec.AgentApproval != nil && ie.Spec.AgentApproval.AutoApprove,
			Role:     agentv1.HostRoleWorker,
		},
	}
}

// agentFor loads the Agent of the request's host, answering 404 when the host
// must register first.
func (s *Server) agentFor(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) (*agentv1.Agent, bool) {
	hostID := r.PathValue("host_id")
	if !agentapi.ValidID(hostID) {
		writeError(w, http.StatusBadRequest, "host_id: must be a lowercase UUID")
		return nil, false
	}
	agent := &agentv1.Agent{}
	if err := s.Client.Get(r.Context(), client.ObjectKey{Namespace: ie.Namespace, Name: hostID}, agent); err != nil {
		if apierrors.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "host "+hostID+" is not registered; register it first")
		} else {
			writeError(w, http.StatusServiceUnavailable, "reading the Agent: "+err.Error())
		}
		return nil, false
	}
	if agent.Labels[agentv1.InfraEnvNameLabel] != ie.Name {
		writeError(w, http.StatusNotFound, "host "+hostID+" is not registered with this InfraEnv")
		return nil, false
	}
	if s.CheckIns.Touch(client.ObjectKeyFromObject(agent), s.Now()) {
		s.Changed(client.ObjectKeyFromObject(agent))
	}
	return agent, true
}

// host answers a host's question what the service knows of it: its state.
// A host running a node asks it from time to time to learn that it was
// unbound (its cluster or NodePool let it go).
func (s *Server) host(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	agent, ok := s.agentFor(w, r, ie)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, agentapi.Host{ID: agent.Name, InfraEnvID: string(ie.UID), Kind: "Host",
		Status: agent.Status.DebugInfo.State, StatusInfo: agent.Status.DebugInfo.StateInfo,
		Href: strings.Replace(strings.Replace(agentapi.HostPath, "{infra_env_id}", string(ie.UID), 1), "{host_id}", agent.Name, 1)})
}

func (s *Server) instructions(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	agent, ok := s.agentFor(w, r, ie)
	if !ok {
		return
	}
	steps := agentapi.Steps{NextInstructionSeconds: int64(s.PollInterval / time.Second), Instructions: []agentapi.Step{}}
	if steps.NextInstructionSeconds < 1 {
		steps.NextInstructionSeconds = 1
	}
	if rt := agent.Status.Inventory.ReportTime; rt == nil || s.Now().Sub(rt.Time) > InventoryRefresh {
		steps.Instructions = append(steps.Instructions, agentapi.Step{StepType: agentapi.StepInventory, StepID: "inventory-" + fmt.Sprint(s.Now().Unix())})
	} else if readyToInstall(agent) {
		pointer, err := s.Install(r.Context(), agent)
		switch {
		case err != nil:
			s.Log.Info("the bound host cannot install yet", "agent", agent.Name, "reason", err.Error())
		default:
			steps.Instructions = append(steps.Instructions, agentapi.Step{StepType: agentapi.StepInstall, StepID: "install-" + fmt.Sprint(s.Now().Unix()), Args: []string{string(pointer)}})
		}
	}
	writeJSON(w, http.StatusOK, steps)
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	var rep agentapi.StepReply
	if !decode(w, r, agentapi.MaxBodyBytes, &rep) {
		return
	}
	agent, ok := s.agentFor(w, r, ie)
	if !ok {
		return
	}
	switch rep.StepType {
	case agentapi.StepInventory:
	case agentapi.StepInstall:
		if rep.ExitCode != 0 {
			s.setStage(w, r, agent, agentapi.StageFailed, truncate(rep.Error, 1024))
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("step_type: %q is not a step this service sent (allowed: %s, %s)", rep.StepType, agentapi.StepInventory, agentapi.StepInstall))
		return
	}
	if rep.ExitCode != 0 {
		s.Log.Info("step failed on host", "agent", agent.Name, "step", rep.StepID, "error", rep.Error)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	inv, err := DecodeInventory([]byte(rep.Output))
	if err != nil {
		writeError(w, http.StatusBadRequest, "output: "+err.Error())
		return
	}
	now := metav1.NewTime(s.Now())
	inv.ReportTime = &now
	before := agent.DeepCopy()
	agent.Status.Inventory = *inv
	if err := s.Client.Status().Patch(r.Context(), agent, client.MergeFrom(before)); err != nil {
		writeError(w, http.StatusServiceUnavailable, "saving the inventory: "+err.Error())
		return
	}
	s.Changed(client.ObjectKeyFromObject(agent))
	w.WriteHeader(http.StatusNoContent)
}

// DecodeInventory reads an inventory strictly: unknown fields, trailing data
// and values beyond the schema's limits are errors naming the field.
func DecodeInventory(b []byte) (*agentv1.HostInventory, error) {
	if len(b) > agentapi.MaxBodyBytes {
		return nil, fmt.Errorf("inventory larger than %d bytes", agentapi.MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	inv := &agentv1.HostInventory{}
	if err := dec.Decode(inv); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if dec.More() {
		return nil, errors.New("inventory: data after the JSON object")
	}
	if err := agentapi.ValidateInventory(inv); err != nil {
		return nil, fmt.Errorf("inventory.%w", err)
	}
	return inv, nil
}

func (s *Server) progress(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	var p agentapi.HostProgress
	if !decode(w, r, agentapi.MaxSmallBodyBytes, &p) {
		return
	}
	if !slices.Contains(agentapi.Stages, p.CurrentStage) || len(p.ProgressInfo) > agentapi.MaxProgressInfo {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("current_stage: %q is not a stage (allowed: %s); progress_info: at most %d characters", truncate(p.CurrentStage, 64), strings.Join(agentapi.Stages, ", "), agentapi.MaxProgressInfo))
		return
	}
	agent, ok := s.agentFor(w, r, ie)
	if !ok {
		return
	}
	if !hosted.Bound(agent) {
		writeError(w, http.StatusConflict, "host "+agent.Name+" is not bound to a cluster; there is no installation to report")
		return
	}
	// A host installing reports its stages instead of polling: that is its
	// check-in.
	s.CheckIns.Touch(client.ObjectKeyFromObject(agent), s.Now())
	s.setStage(w, r, agent, p.CurrentStage, p.ProgressInfo)
}

// setStage records an installation stage and answers the request.
func (s *Server) setStage(w http.ResponseWriter, r *http.Request, agent *agentv1.Agent, stage, info string) {
	before := agent.DeepCopy()
	now := metav1.NewTime(s.Now())
	if agent.Status.Progress.CurrentStage != stage {
		agent.Status.Progress.StageStartTime = &now
	}
	agent.Status.Progress.CurrentStage, agent.Status.Progress.ProgressInfo, agent.Status.Progress.StageUpdateTime = stage, info, &now
	agent.Status.Progress.InstallationPercentage = int64(100 * (slices.Index(agentapi.Stages, stage) + 1) / (len(agentapi.Stages) - 1))
	if stage == agentapi.StageFailed {
		agent.Status.Progress.InstallationPercentage = 0
	}
	if err := s.Client.Status().Patch(r.Context(), agent, client.MergeFrom(before)); err != nil {
		writeError(w, http.StatusServiceUnavailable, "saving progress: "+err.Error())
		return
	}
	s.Changed(client.ObjectKeyFromObject(agent))
	writeJSON(w, http.StatusOK, struct{}{})
}

// readyToInstall: the Agent is bound, eligible and has not started.
func readyToInstall(a *agentv1.Agent) bool {
	return hosted.Bound(a) && hosted.Ineligible(a) == "" && a.Status.Progress.CurrentStage == ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, ie *agentv1.InfraEnv) {
	name := r.URL.Query().Get("file_name")
	switch name {
	case FileIgnition, FileScript:
		b, err := s.Artifacts.Render(r.Context(), ie, name)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		w.Header().Set("Content-Type", map[string]string{FileIgnition: "application/json", FileScript: "text/x-shellscript"}[name])
		_, _ = w.Write(b)
	case FileAgent:
		http.ServeFile(w, r, s.Artifacts.AgentBinary)
	case FileKonnectivityAgent:
		if s.Artifacts.KonnectivityAgentBinary == "" {
			writeError(w, http.StatusNotFound, "this service has no konnectivity agent to serve")
			return
		}
		http.ServeFile(w, r, s.Artifacts.KonnectivityAgentBinary)
	default:
		binaries := s.Artifacts.NodeBinaries
		if want := r.URL.Query().Get("release"); want != "" {
			rel, err := s.Artifacts.Releases.Named(want)
			if err != nil {
				writeError(w, http.StatusNotFound, "release: "+err.Error())
				return
			}
			binaries = NodeBinaries(rel)
		}
		if path, ok := binaries[name]; ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeFile(w, r, path)
			return
		}
		allowed := []string{FileIgnition, FileScript, FileAgent, FileKonnectivityAgent}
		for n := range s.Artifacts.NodeBinaries {
			allowed = append(allowed, n)
		}
		sort.Strings(allowed[4:])
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file_name: %q is not an artifact (allowed: %s)", name, strings.Join(allowed, ", ")))
	}
}

// decode reads a JSON body of at most limit bytes into v, refusing unknown
// fields; on failure it answers 400 naming the problem.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: larger than %d bytes or unreadable", limit))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "body: data after the JSON object")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, agentapi.Error{Code: status, Reason: reason})
}

// Serve runs the handler over TLS on addr until ctx ends.
func Serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errc:
		return err
	}
}
