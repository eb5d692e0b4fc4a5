// Package agentmachine reconciles AgentMachines, the Cluster API
// infrastructure machines of agent node pools: each binds one free Agent
// (approved, validated, connected, unbound, matching the pool's selector),
// gives it the cluster and the ignition token, and reports the Agent's progress
// until its host is installed. When the Machine is deleted, a pre-terminate
// hook holds it until the Agent is unbound.
package agentmachine

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// Finalizer holds an AgentMachine until its Agent is released.
const Finalizer = "agentmachine.agent-install.openshift.io/deprovision"

// PreTerminateHook on a Machine holds its deletion until the Agent is unbound.
const PreTerminateHook = clusterv1.PreTerminateDeleteHookAnnotationPrefix + "/agentmachine"

// Reconciler reconciles AgentMachines.
type Reconciler struct {
	Client client.Client
}

// SetupWithManager registers the controller. Agent changes wake the machines
// still waiting for one, and the machine they are bound to.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&capiproviderv1.AgentMachine{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Watches(&clusterv1.Machine{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			m := o.(*clusterv1.Machine)
			if m.Spec.InfrastructureRef.Kind != "AgentMachine" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.InfrastructureRef.Name}}}
		})).
		Watches(&agentv1.Agent{}, handler.EnqueueRequestsFromMapFunc(r.machinesForAgent)).
		Complete(r)
}

func (r *Reconciler) machinesForAgent(ctx context.Context, o client.Object) []reconcile.Request {
	if name, ns := o.GetLabels()[capiproviderv1.AgentMachineRefLabel], o.GetLabels()[capiproviderv1.AgentMachineRefNamespaceLabel]; name != "" && ns != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	// A free Agent: every machine still waiting for one may take it.
	list := &capiproviderv1.AgentMachineList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, am := range list.Items {
		if am.Status.AgentRef == nil && am.DeletionTimestamp.IsZero() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&am)})
		}
	}
	return out
}

// Reconcile binds, follows or releases one AgentMachine's Agent. A write that
// lost a race with another controller is retried, not reported as an error.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	am := &capiproviderv1.AgentMachine{}
	if err := r.Client.Get(ctx, req.NamespacedName, am); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !am.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, am)
	}
	machine, err := util.GetOwnerMachine(ctx, r.Client, am.ObjectMeta)
	if err != nil || machine == nil {
		// Cluster API sets the owner right after creating the AgentMachine.
		return ctrl.Result{RequeueAfter: time.Second}, client.IgnoreNotFound(err)
	}
	if controllerutil.AddFinalizer(am, Finalizer) {
		if err := r.Client.Update(ctx, am); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !machine.DeletionTimestamp.IsZero() {
		return r.releaseForMachine(ctx, am, machine)
	}
	if _, ok := machine.Annotations[PreTerminateHook]; !ok {
		before := machine.DeepCopy()
		if machine.Annotations == nil {
			machine.Annotations = map[string]string{}
		}
		machine.Annotations[PreTerminateHook] = ""
		if err := r.Client.Patch(ctx, machine, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, err
		}
	}
	hc, cpns, err := r.hostedCluster(ctx, machine)
	if err != nil {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, err
	}
	before := am.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(before.Status, am.Status) {
			return
		}
		if err := r.Client.Status().Patch(ctx, am, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) && reterr == nil {
			reterr = err
		}
	}()
	agent, err := r.findAgent(ctx, am, hc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if agent == nil {
		agent, err = r.bind(ctx, am, machine, hc, cpns)
		if err != nil {
			if apierrors.IsConflict(err) {
				// Another machine took that Agent first; look again.
				return ctrl.Result{RequeueAfter: 50 * time.Millisecond}, nil
			}
			return ctrl.Result{}, err
		}
		if agent == nil {
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
	}
	if am.Spec.ProviderID == nil || *am.Spec.ProviderID != hosted.ProviderID(agent.Name) {
		status := am.Status.DeepCopy()
		am.Spec.ProviderID = ptr.To(hosted.ProviderID(agent.Name))
		if err := r.Client.Update(ctx, am); err != nil {
			return ctrl.Result{}, err
		}
		am.Status = *status
		before.ResourceVersion = am.ResourceVersion
	}
	am.Status.AgentRef = &capiproviderv1.AgentReference{Namespace: agent.Namespace, Name: agent.Name}
	reportAgent(am, agent)
	return ctrl.Result{}, nil
}

// hostedCluster finds the HostedCluster of a Machine through its Cluster.
func (r *Reconciler) hostedCluster(ctx context.Context, m *clusterv1.Machine) (*hyperv1.HostedCluster, string, error) {
	cl := &clusterv1.Cluster{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Spec.ClusterName}, cl); err != nil {
		return nil, "", fmt.Errorf("cluster of machine %s: %w", m.Name, err)
	}
	ns, name, ok := strings.Cut(cl.Annotations[hyperv1.HostedClusterAnnotation], "/")
	if !ok {
		return nil, "", fmt.Errorf("cluster %s/%s names no HostedCluster", cl.Namespace, cl.Name)
	}
	hc := &hyperv1.HostedCluster{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hc); err != nil {
		return nil, "", err
	}
	return hc, m.Namespace, nil
}

// findAgent returns the Agent this machine already holds: the one in its
// status, or one labelled for it (a binding whose status write was lost).
func (r *Reconciler) findAgent(ctx context.Context, am *capiproviderv1.AgentMachine, hc *hyperv1.HostedCluster) (*agentv1.Agent, error) {
	if ref := am.Status.AgentRef; ref != nil {
		a := &agentv1.Agent{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, a)
		if err == nil && a.Labels[capiproviderv1.AgentMachineRefLabel] == am.Name {
			return a, nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		// The Agent is gone or was taken away: the machine has no host.
		am.Status.AgentRef = nil
	}
	list := &agentv1.AgentList{}
	if err := r.Client.List(ctx, list, client.InNamespace(agentNamespace(hc)), client.MatchingLabels{
		capiproviderv1.AgentMachineRefLabel: am.Name, capiproviderv1.AgentMachineRefNamespaceLabel: am.Namespace}); err != nil {
		return nil, err
	}
	if len(list.Items) > 0 {
		return &list.Items[0], nil
	}
	return nil, nil
}

func agentNamespace(hc *hyperv1.HostedCluster) string {
	if a := hc.Spec.Platform.Agent; a != nil {
		return a.AgentNamespace
	}
	return ""
}

// bind takes a suitable Agent for the machine: the first by name, counting
// from a place that depends on the machine. The update
// carries the Agent's resourceVersion, so of two machines racing for one Agent
// only one wins; the other gets a conflict and looks again.
func (r *Reconciler) bind(ctx context.Context, am *capiproviderv1.AgentMachine, m *clusterv1.Machine, hc *hyperv1.HostedCluster, cpns string) (*agentv1.Agent, error) {
	ns := agentNamespace(hc)
	selector := labels.Everything()
	if s := am.Spec.AgentLabelSelector; s != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(s); err != nil {
			setCondition(am, capiproviderv1.AgentReservedCondition, false, "InvalidSelector", "spec.agentLabelSelector: "+err.Error())
			return nil, nil
		}
	}
	list := &agentv1.AgentList{}
	if err := r.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	agents := list.Items
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	// Machines waiting together start their search at different Agents, so
	// they do not all race for the same one.
	h := fnv.New32a()
	_, _ = h.Write([]byte(am.Namespace + "/" + am.Name))
	offset := 0
	if len(agents) > 0 {
		offset = int(h.Sum32() % uint32(len(agents)))
	}
	var skipped []string
	for k := range agents {
		a := &agents[(k+offset)%len(agents)]
		if why := Unsuitable(a, am); why != "" {
			skipped = append(skipped, a.Name+" "+why)
			continue
		}
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		a.Labels[capiproviderv1.AgentMachineRefLabel] = am.Name
		a.Labels[capiproviderv1.AgentMachineRefNamespaceLabel] = am.Namespace
		if np := m.Labels[hyperv1.NodePoolLabel]; np != "" {
			a.Labels[hyperv1.NodePoolLabel] = np
			a.Spec.IgnitionEndpointTokenReference = &agentv1.IgnitionEndpointTokenReference{Namespace: cpns, Name: hosted.TokenSecret(np)}
		}
		a.Spec.ClusterDeploymentName = &agentv1.ClusterReference{Namespace: cpns, Name: hc.Name}
		if err := r.Client.Update(ctx, a); err != nil {
			return nil, err
		}
		am.Status.AgentRef = &capiproviderv1.AgentReference{Namespace: a.Namespace, Name: a.Name}
		return a, nil
	}
	msg := fmt.Sprintf("No Agent in namespace %s matches the selector %q and is approved, validated, connected and unbound", ns, selector.String())
	if len(skipped) > 0 {
		msg += " (" + strings.Join(first(skipped, 5), "; ") + ")"
	} else {
		msg += " (no Agent matches the selector; boot more hosts with the InfraEnv's discovery image)"
	}
	setCondition(am, capiproviderv1.AgentReservedCondition, false, capiproviderv1.NoSuitableAgentsReason, msg)
	setCondition(am, clusterv1.ReadyCondition, false, capiproviderv1.NoSuitableAgentsReason, msg)
	return nil, nil
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// Unsuitable says why an Agent cannot be bound to the machine ("" if it can).
func Unsuitable(a *agentv1.Agent, am *capiproviderv1.AgentMachine) string {
	// The most telling reason first: a disconnected host also fails its
	// validations, and "is not connected" says why.
	why := hosted.Ineligible(a)
	switch {
	case why == hosted.IneligibleDeleting:
		return why
	case hosted.Bound(a) || a.Labels[capiproviderv1.AgentMachineRefLabel] != "":
		return "is bound"
	case why == hosted.IneligibleNotApproved:
		return why
	case !meta.IsStatusConditionTrue(a.Status.Conditions, agentv1.ConnectedCondition):
		return "is not connected"
	case why != "":
		return why
	case a.Status.DebugInfo.State != agentapi.StateKnownUnbound:
		return "is " + a.Status.DebugInfo.State
	case am.Spec.MinCPUs > 0 && a.Status.Inventory.Cpu.Count < int64(am.Spec.MinCPUs):
		return fmt.Sprintf("has %d CPUs, fewer than %d", a.Status.Inventory.Cpu.Count, am.Spec.MinCPUs)
	case am.Spec.MinMemoryMiB > 0 && a.Status.Inventory.Memory.PhysicalBytes>>20 < int64(am.Spec.MinMemoryMiB):
		return fmt.Sprintf("has %d MiB of memory, less than %d", a.Status.Inventory.Memory.PhysicalBytes>>20, am.Spec.MinMemoryMiB)
	}
	return ""
}

// reportAgent mirrors the bound Agent's conditions and addresses onto the machine.
func reportAgent(am *capiproviderv1.AgentMachine, a *agentv1.Agent) {
	setCondition(am, capiproviderv1.AgentReservedCondition, true, "AgentReserved", "Agent "+a.Namespace+"/"+a.Name+" is reserved for this machine")
	mirror := func(t, from string) bool {
		c := meta.FindStatusCondition(a.Status.Conditions, from)
		if c == nil {
			setCondition(am, t, false, "NotReported", "The Agent has not reported "+from+" yet")
			return false
		}
		setCondition(am, t, c.Status == metav1.ConditionTrue, c.Reason, c.Message)
		return c.Status == metav1.ConditionTrue
	}
	mirror(capiproviderv1.AgentSpecSyncedCondition, agentv1.SpecSyncedCondition)
	mirror(capiproviderv1.AgentValidatedCondition, agentv1.ValidatedCondition)
	mirror(capiproviderv1.AgentRequirementsMetCondition, agentv1.RequirementsMetCondition)
	installed := mirror(capiproviderv1.InstalledCondition, agentv1.InstalledCondition)
	am.Status.Initialization.Provisioned = ptr.To(installed)
	am.Status.Ready = installed
	if installed {
		setCondition(am, clusterv1.ReadyCondition, true, "Installed", "Agent "+a.Name+" is installed")
	} else {
		info := a.Status.DebugInfo.State
		if st := a.Status.Progress.CurrentStage; st != "" {
			info += ", stage " + st
			if pi := a.Status.Progress.ProgressInfo; pi != "" {
				info += ": " + pi
			}
		}
		setCondition(am, clusterv1.ReadyCondition, false, "Installing", "Agent "+a.Name+" is "+info)
	}
	am.Status.Addresses = nil
	if h := hosted.Hostname(a); h != "" {
		am.Status.Addresses = append(am.Status.Addresses, capiproviderv1.MachineAddress{Type: "Hostname", Address: h})
	}
	for _, n := range a.Status.Inventory.Interfaces {
		for _, ip := range n.IPV4Addresses {
			ip, _, _ = strings.Cut(ip, "/")
			am.Status.Addresses = append(am.Status.Addresses, capiproviderv1.MachineAddress{Type: "InternalIP", Address: ip})
		}
	}
}

func setCondition(am *capiproviderv1.AgentMachine, t string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	if reason == "" {
		reason = "Unknown"
	}
	meta.SetStatusCondition(&am.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: am.Generation})
}

// releaseForMachine runs while the Machine is being deleted: once Cluster API
// waits on the pre-terminate hook (the node is drained), the Agent is
// unbound; when it is, the hook is released.
func (r *Reconciler) releaseForMachine(ctx context.Context, am *capiproviderv1.AgentMachine, m *clusterv1.Machine) (ctrl.Result, error) {
	if _, ok := m.Annotations[PreTerminateHook]; !ok {
		return ctrl.Result{}, nil
	}
	if c := meta.FindStatusCondition(m.Status.Conditions, clusterv1.MachineDeletingCondition); m.Status.NodeRef.Name != "" &&
		(c == nil || c.Reason != clusterv1.MachineDeletingWaitingForPreTerminateHookReason) {
		// Still draining.
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	released, err := r.unbind(ctx, am)
	if err != nil || !released {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, err
	}
	before := m.DeepCopy()
	delete(m.Annotations, PreTerminateHook)
	return ctrl.Result{}, r.Client.Patch(ctx, m, client.MergeFrom(before))
}

// unbind releases the machine's Agent and reports whether it has left the
// cluster: unbound, or waiting for its host to be booted into discovery again.
func (r *Reconciler) unbind(ctx context.Context, am *capiproviderv1.AgentMachine) (bool, error) {
	list := &agentv1.AgentList{}
	if err := r.Client.List(ctx, list, client.MatchingLabels{capiproviderv1.AgentMachineRefLabel: am.Name, capiproviderv1.AgentMachineRefNamespaceLabel: am.Namespace}); err != nil {
		return false, err
	}
	done := true
	for i := range list.Items {
		a := &list.Items[i]
		if hosted.Bound(a) || a.Spec.IgnitionEndpointTokenReference != nil {
			a.Spec.ClusterDeploymentName, a.Spec.IgnitionEndpointTokenReference = nil, nil
			if err := r.Client.Update(ctx, a); err != nil {
				return false, err
			}
			done = false
			continue
		}
		switch a.Status.DebugInfo.State {
		case agentapi.StateUnbindingPendingUserAction, agentapi.StateKnownUnbound, agentapi.StateDiscoveringUnbound,
			agentapi.StateInsufficientUnbound, agentapi.StateDisconnectedUnbound:
			// Left the cluster: drop the reservation.
			delete(a.Labels, capiproviderv1.AgentMachineRefLabel)
			delete(a.Labels, capiproviderv1.AgentMachineRefNamespaceLabel)
			delete(a.Labels, hyperv1.NodePoolLabel)
			if err := r.Client.Update(ctx, a); err != nil {
				return false, err
			}
		default:
			done = false
		}
	}
	return done, nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, am *capiproviderv1.AgentMachine) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(am, Finalizer) {
		return ctrl.Result{}, nil
	}
	released, err := r.unbind(ctx, am)
	if err != nil || !released {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, err
	}
	controllerutil.RemoveFinalizer(am, Finalizer)
	return ctrl.Result{}, r.Client.Update(ctx, am)
}
