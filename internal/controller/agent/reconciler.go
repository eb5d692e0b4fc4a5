// Package agent reconciles Agents: from a host's inventory and check-ins it
// computes validations, the host state, conditions and inventory labels.
package agent

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/infra"
)

// Inventory labels put on Agents so node pools can select by hardware.
const (
	LabelCPUCores     = "inventory.agent-install.openshift.io/cpu-cores"
	LabelCPUArch      = "inventory.agent-install.openshift.io/cpu-architecture"
	LabelMemoryGiB    = "inventory.agent-install.openshift.io/memory-gib"
	LabelManufacturer = "inventory.agent-install.openshift.io/host-manufacturer"
	LabelProduct      = "inventory.agent-install.openshift.io/host-productname"
	LabelVirtual      = "inventory.agent-install.openshift.io/host-isvirtual"
)

// hostnameIndex indexes Agents by their hostname, for the hostname-unique validation.
const hostnameIndex = "agent.hostname"

// Reconciler reconciles Agents.
type Reconciler struct {
	Client   client.Client
	CheckIns *infra.CheckIns
	// DisconnectAfter is how long without a check-in makes a host disconnected.
	DisconnectAfter time.Duration
	Requirements    Requirements
	// Changes receives Agents whose host just talked to the service.
	Changes <-chan client.ObjectKey
	Now     func() time.Time

	started time.Time
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	r.started = r.Now()
	events := make(chan event.TypedGenericEvent[*agentv1.Agent], 1024)
	if r.Changes != nil {
		go func() {
			for key := range r.Changes {
				a := &agentv1.Agent{}
				a.Namespace, a.Name = key.Namespace, key.Name
				events <- event.TypedGenericEvent[*agentv1.Agent]{Object: a}
			}
		}()
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &agentv1.Agent{}, hostnameIndex, func(o client.Object) []string {
		return []string{hosted.Hostname(o.(*agentv1.Agent))}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&agentv1.Agent{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		WatchesRawSource(source.Channel(events, &handler.TypedEnqueueRequestForObject[*agentv1.Agent]{})).
		Complete(r)
}

// checkedIn reports whether the host talked to the installation service
// recently. After an operator restart, hosts get DisconnectAfter to check in
// before they count as gone.
func (r *Reconciler) checkedIn(a *agentv1.Agent) bool {
	last, ok := r.CheckIns.Last(client.ObjectKeyFromObject(a))
	if !ok {
		last = r.started
	}
	return r.Now().Sub(last) < r.DisconnectAfter
}

// Connected is the one rule for whether a host counts as connected, used by the
// state, the Connected condition and the connected validation alike: it
// checked in with the installation service recently, or it is bound and has
// joined its cluster, after which it runs as a node and no longer talks to the
// service (its health is then its Node's).
func Connected(a *agentv1.Agent, checkedIn bool) bool {
	return checkedIn || joined(a)
}

// joined says whether the host is bound and finished its installation.
func joined(a *agentv1.Agent) bool {
	return hosted.Bound(a) && a.Status.Progress.CurrentStage == agentapi.StageDone
}

// Reconcile computes one Agent's validations, state, conditions and labels.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &agentv1.Agent{}
	if err := r.Client.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	others := &agentv1.AgentList{}
	if err := r.Client.List(ctx, others, client.InNamespace(a.Namespace), client.MatchingFields{hostnameIndex: hosted.Hostname(a)}); err != nil {
		return ctrl.Result{}, err
	}
	names := map[string]bool{}
	for i := range others.Items {
		if o := &others.Items[i]; o.Name != a.Name {
			names[hosted.Hostname(o)] = true
		}
	}
	checkedIn := r.checkedIn(a)

	labels := inventoryLabels(a)
	if !maps.Equal(labels, a.Labels) {
		a.Labels = labels
		if err := r.Client.Update(ctx, a); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := a.DeepCopy()
	computeStatus(a, checkedIn, r.Requirements, names)
	if !equality.Semantic.DeepEqual(before.Status, a.Status) {
		// The state is read back on the next pass (an unbound host stays
		// unbinding-pending-user-action until it registers again), so a
		// status computed from a stale copy must not land.
		if err := r.Client.Status().Patch(ctx, a, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
			}
			return ctrl.Result{}, err
		}
	}
	// Look again when the host would count as disconnected.
	return ctrl.Result{RequeueAfter: max(r.DisconnectAfter/3, time.Second)}, nil
}

// computeStatus sets an Agent's validations, state and conditions. checkedIn
// says whether its host talked to the installation service recently.
func computeStatus(a *agentv1.Agent, checkedIn bool, req Requirements, otherHostnames map[string]bool) {
	connected := Connected(a, checkedIn)
	a.Status.ValidationsInfo = validate(a, connected, req, otherHostnames)
	setStatus(a, connected, checkedIn)
}

// setStatus sets the host state and the conditions from the validations,
// the binding and the installation progress.
func setStatus(a *agentv1.Agent, connected, checkedIn bool) {
	failing, pending := failed(a.Status.ValidationsInfo)
	bound := hosted.Bound(a)
	// A host unbound after its installation started must boot into discovery
	// again; until it registers anew it has no installation to show.
	unbinding := !bound && (a.Status.Progress.CurrentStage != "" || a.Status.DebugInfo.State == agentapi.StateUnbindingPendingUserAction)
	if unbinding {
		a.Status.Progress = agentv1.HostProgressInfo{}
	}
	stage := a.Status.Progress.CurrentStage
	suffix := "-unbound"
	if bound {
		suffix = ""
	}
	state, info := agentapi.StateKnownUnbound, "Host is ready to be bound to a cluster"
	if bound {
		state, info = agentapi.StateKnown, "Host is bound to "+a.Spec.ClusterDeploymentName.Namespace+"/"+a.Spec.ClusterDeploymentName.Name+" and ready to be installed"
	}
	switch {
	case unbinding:
		state, info = agentapi.StateUnbindingPendingUserAction, "Host was unbound after its installation started; boot it into discovery again (restart hcp-agent discover) to reuse it"
	case bound && stage == agentapi.StageDone:
		state, info = agentapi.StateAddedToExistingCluster, "Host has joined the cluster"
	case bound && stage == agentapi.StageFailed:
		state, info = agentapi.StateError, "Installation failed: "+a.Status.Progress.ProgressInfo
	case bound && !connected && stage != "":
		state, info = agentapi.StateDisconnected, "Host stopped communicating during its installation (last stage: "+stage+"); the installation resumes when it is back"
	case bound && stage == agentapi.StageStartingInstallation:
		state, info = agentapi.StateInstalling, "Installation is starting"
	case bound && stage != "":
		state, info = agentapi.StateInstallingInProgress, "Installation is in progress: "+stage
		if pi := a.Status.Progress.ProgressInfo; pi != "" {
			info += " (" + pi + ")"
		}
	case !connected:
		state, info = "disconnected"+suffix, "Host has stopped communicating with the installation service"
	case a.Status.Inventory.ReportTime == nil:
		state, info = "discovering"+suffix, "Waiting for the host's inventory"
	case len(failing) > 0:
		state, info = "insufficient"+suffix, "Host does not meet the minimum requirements: "+strings.Join(failing, ", ")
	}
	a.Status.DebugInfo = agentv1.DebugInfo{State: state, StateInfo: info}
	if a.Status.Role == "" {
		a.Status.Role = agentv1.HostRoleWorker
	}
	gen := a.Generation
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	set(agentv1.SpecSyncedCondition, true, "SyncOK", "The Spec has been successfully applied")
	switch {
	case checkedIn:
		set(agentv1.ConnectedCondition, true, "AgentIsConnected", "The agent's connection to the installation service is unimpaired")
	case connected:
		set(agentv1.ConnectedCondition, true, "AgentIsConnected", "The host has joined its cluster and reports through its node")
	default:
		set(agentv1.ConnectedCondition, false, "AgentIsDisconnected", "The agent has not contacted the installation service in some time; the user should check its connectivity")
	}
	switch {
	case len(failing) > 0:
		set(agentv1.ValidatedCondition, false, "ValidationsFailing", "The agent's validations are failing: "+strings.Join(failing, ", "))
	case len(pending) > 0:
		set(agentv1.ValidatedCondition, false, "ValidationsUserPending", "The agent's validations are pending: "+strings.Join(pending, ", "))
	default:
		set(agentv1.ValidatedCondition, true, "ValidationsPassing", "The agent's validations are passing")
	}
	switch {
	case !a.Spec.Approved:
		set(agentv1.RequirementsMetCondition, false, "AgentIsNotApproved", "The agent is not approved; approve it with kubectl patch agent "+a.Name+" --type merge -p '{\"spec\":{\"approved\":true}}'")
	case state == agentapi.StateKnownUnbound || state == agentapi.StateKnown:
		set(agentv1.RequirementsMetCondition, true, "AgentIsReady", "The agent is ready to be installed")
	case bound && stage != "" && stage != agentapi.StageFailed:
		set(agentv1.RequirementsMetCondition, true, "AgentInstallationStarted", "The installation has started")
	default:
		set(agentv1.RequirementsMetCondition, false, "AgentNotReady", "The agent is not ready: "+info)
	}
	switch {
	case bound && stage == agentapi.StageDone:
		set(agentv1.InstalledCondition, true, "InstallationCompleted", "The installation has completed: the host joined the cluster")
	case bound && stage == agentapi.StageFailed:
		set(agentv1.InstalledCondition, false, "InstallationFailed", "The installation has failed: "+a.Status.Progress.ProgressInfo)
	case bound && stage != "":
		set(agentv1.InstalledCondition, false, "InstallationInProgress", "The installation is in progress: "+stage)
	default:
		set(agentv1.InstalledCondition, false, "InstallationNotStarted", "The installation has not yet started")
	}
	switch {
	case bound:
		set(agentv1.BoundCondition, true, "Bound", "The agent is bound to a cluster")
	case state == agentapi.StateUnbindingPendingUserAction:
		set(agentv1.BoundCondition, false, "UnbindingPendingUserAction", "The agent is unbound; its host must boot into discovery again")
	default:
		set(agentv1.BoundCondition, false, "Unbound", "The agent is not bound to any cluster")
	}
}

// inventoryLabels are the Agent's labels with the inventory labels updated.
func inventoryLabels(a *agentv1.Agent) map[string]string {
	out := maps.Clone(a.Labels)
	if out == nil {
		out = map[string]string{}
	}
	inv := a.Status.Inventory
	if inv.ReportTime == nil {
		return out
	}
	out[LabelCPUCores] = strconv.FormatInt(inv.Cpu.Count, 10)
	out[LabelMemoryGiB] = strconv.FormatInt(inv.Memory.PhysicalBytes>>30, 10)
	out[LabelVirtual] = strconv.FormatBool(inv.SystemVendor.Virtual)
	for k, v := range map[string]string{LabelCPUArch: inv.Cpu.Architecture, LabelManufacturer: inv.SystemVendor.Manufacturer, LabelProduct: inv.SystemVendor.ProductName} {
		if v = labelValue(v); v != "" {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	return out
}

// labelValue makes s a valid label value: at most 63 characters of
// [A-Za-z0-9._-], starting and ending with an alphanumeric.
func labelValue(s string) string {
	b := []byte(strings.TrimSpace(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	v := string(b)
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "._-")
}
