package nodepool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// NodePoolAnnotation on Cluster API objects names their NodePool as <namespace>/<name>.
const NodePoolAnnotation = "hypershift.openshift.io/nodePool"

// machineScope is what a NodePool's machines are made from.
type machineScope struct {
	np      *hyperv1.NodePool
	hc      *hyperv1.HostedCluster
	cpns    string
	infraID string
	// version is the Kubernetes version of the NodePool's release, release
	// its name.
	version, release string
	// template is the AgentMachineTemplate of the NodePool's current
	// configuration.
	template string
}

func (s machineScope) labels() map[string]string {
	return map[string]string{clusterv1.ClusterNameLabel: s.infraID, hyperv1.NodePoolLabel: s.np.Name}
}

// ensureTemplate keeps the AgentMachineTemplate for the NodePool's current
// spec. Its name carries a hash of the spec, so a change makes a new template
// and a MachineDeployment rolls its machines over to it.
func (r *Reconciler) ensureTemplate(ctx context.Context, s machineScope) (string, error) {
	spec := capiproviderv1.AgentMachineSpec{}
	if a := s.np.Spec.Platform.Agent; a != nil && a.AgentLabelSelector != nil {
		spec.AgentLabelSelector = a.AgentLabelSelector.DeepCopy()
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	name := s.np.Name + "-" + hex.EncodeToString(sum[:])[:8]
	t := &capiproviderv1.AgentMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: s.cpns, Name: name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, t, func() error {
		t.Labels = s.labels()
		t.Labels[hosted.ManagedLabel] = s.hc.Name
		t.Annotations = map[string]string{NodePoolAnnotation: s.np.Namespace + "/" + s.np.Name}
		t.Spec.Template.Spec = spec
		return nil
	}); err != nil {
		return "", fmt.Errorf("AgentMachineTemplate %s/%s: %w", s.cpns, name, err)
	}
	return name, nil
}

// machineTemplate is the Machine template of the NodePool's MachineDeployment or MachineSet.
func (s machineScope) machineTemplate(templateName string) clusterv1.MachineTemplateSpec {
	t := clusterv1.MachineTemplateSpec{
		ObjectMeta: clusterv1.ObjectMeta{Labels: s.labels(), Annotations: map[string]string{NodePoolAnnotation: s.np.Namespace + "/" + s.np.Name}},
		Spec: clusterv1.MachineSpec{
			ClusterName:       s.infraID,
			Version:           s.version,
			Bootstrap:         clusterv1.Bootstrap{DataSecretName: ptr.To(hosted.UserDataSecret(s.np.Name))},
			InfrastructureRef: clusterv1.ContractVersionedObjectReference{APIGroup: capiproviderv1.GroupVersion.Group, Kind: "AgentMachineTemplate", Name: templateName},
		},
	}
	if d := s.np.Spec.NodeDrainTimeout; d != nil {
		t.Spec.Deletion.NodeDrainTimeoutSeconds = ptr.To(int32(d.Seconds()))
	}
	return t
}

// ensureMachines keeps the NodePool's MachineDeployment (upgradeType Replace)
// or MachineSet (InPlace) and, with autoRepair, its MachineHealthCheck.
func (r *Reconciler) ensureMachines(ctx context.Context, s machineScope, templateName string) error {
	replicas := ptr.To(ptr.Deref(s.np.Spec.Replicas, 0))
	selector := metav1.LabelSelector{MatchLabels: s.labels()}
	meta := func(o client.Object) {
		l := s.labels()
		l[hosted.ManagedLabel] = s.hc.Name
		o.SetLabels(l)
		o.SetAnnotations(map[string]string{NodePoolAnnotation: s.np.Namespace + "/" + s.np.Name})
	}
	inPlace := s.np.Spec.Management.UpgradeType == hyperv1.UpgradeTypeInPlace
	if inPlace {
		ms := &clusterv1.MachineSet{ObjectMeta: metav1.ObjectMeta{Namespace: s.cpns, Name: s.np.Name}}
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, ms, func() error {
			meta(ms)
			ms.Spec.ClusterName, ms.Spec.Replicas, ms.Spec.Selector = s.infraID, replicas, selector
			ms.Spec.Template = s.machineTemplate(templateName)
			ms.Spec.Deletion.Order = clusterv1.NewestMachineSetDeletionOrder
			return nil
		}); err != nil {
			return fmt.Errorf("MachineSet %s/%s: %w", s.cpns, s.np.Name, err)
		}
	} else {
		md := &clusterv1.MachineDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: s.cpns, Name: s.np.Name}}
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, md, func() error {
			meta(md)
			md.Spec.ClusterName, md.Spec.Replicas, md.Spec.Selector = s.infraID, replicas, selector
			md.Spec.Template = s.machineTemplate(templateName)
			surge, unavailable := intstr.FromInt32(1), intstr.FromInt32(0)
			if rp := s.np.Spec.Management.Replace; rp != nil && rp.RollingUpdate != nil {
				if rp.RollingUpdate.MaxSurge != nil {
					surge = *rp.RollingUpdate.MaxSurge
				}
				if rp.RollingUpdate.MaxUnavailable != nil {
					unavailable = *rp.RollingUpdate.MaxUnavailable
				}
			}
			md.Spec.Rollout.Strategy = clusterv1.MachineDeploymentRolloutStrategy{Type: clusterv1.RollingUpdateMachineDeploymentStrategyType,
				RollingUpdate: clusterv1.MachineDeploymentRolloutStrategyRollingUpdate{MaxSurge: &surge, MaxUnavailable: &unavailable}}
			md.Spec.Deletion.Order = clusterv1.NewestMachineSetDeletionOrder
			return nil
		}); err != nil {
			return fmt.Errorf("MachineDeployment %s/%s: %w", s.cpns, s.np.Name, err)
		}
	}
	// The other kind goes when upgradeType changes (it is immutable, but an
	// older object may be left from before).
	var other client.Object = &clusterv1.MachineDeployment{}
	if !inPlace {
		other = &clusterv1.MachineSet{}
	}
	other.SetNamespace(s.cpns)
	other.SetName(s.np.Name)
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(other), other); err == nil && other.GetAnnotations()[NodePoolAnnotation] == s.np.Namespace+"/"+s.np.Name && len(other.GetOwnerReferences()) == 0 {
		if err := r.Client.Delete(ctx, other); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	mhc := &clusterv1.MachineHealthCheck{ObjectMeta: metav1.ObjectMeta{Namespace: s.cpns, Name: s.np.Name}}
	if !s.np.Spec.Management.AutoRepair {
		if err := r.Client.Delete(ctx, mhc); client.IgnoreNotFound(err) != nil {
			return err
		}
	} else if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, mhc, func() error {
		meta(mhc)
		mhc.Spec.ClusterName, mhc.Spec.Selector = s.infraID, selector
		timeout := ptr.To(int32(8 * 60))
		mhc.Spec.Checks.UnhealthyNodeConditions = []clusterv1.UnhealthyNodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionFalse, TimeoutSeconds: timeout},
			{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, TimeoutSeconds: timeout},
		}
		// Agents install in minutes, not the default 10.
		mhc.Spec.Checks.NodeStartupTimeoutSeconds = ptr.To(int32(20 * 60))
		return nil
	}); err != nil {
		return fmt.Errorf("MachineHealthCheck %s/%s: %w", s.cpns, s.np.Name, err)
	}
	return r.pruneTemplates(ctx, s, templateName)
}

// pruneTemplates deletes the NodePool's templates that neither the current
// spec nor any MachineSet uses.
func (r *Reconciler) pruneTemplates(ctx context.Context, s machineScope, current string) error {
	sets := &clusterv1.MachineSetList{}
	if err := r.Client.List(ctx, sets, client.InNamespace(s.cpns), client.MatchingLabels(s.labels())); err != nil {
		return err
	}
	used := map[string]bool{current: true}
	for _, ms := range sets.Items {
		used[ms.Spec.Template.Spec.InfrastructureRef.Name] = true
	}
	templates := &capiproviderv1.AgentMachineTemplateList{}
	if err := r.Client.List(ctx, templates, client.InNamespace(s.cpns), client.MatchingLabels(s.labels())); err != nil {
		return err
	}
	for i := range templates.Items {
		if t := &templates.Items[i]; !used[t.Name] {
			if err := r.Client.Delete(ctx, t); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return nil
}

// machineStatus sets the NodePool's replicas and its machine and node
// conditions from its Machines.
func (r *Reconciler) machineStatus(ctx context.Context, s machineScope, want int32) error {
	list := &clusterv1.MachineList{}
	if err := r.Client.List(ctx, list, client.InNamespace(s.cpns), client.MatchingLabels(s.labels())); err != nil {
		return err
	}
	setMachineStatus(s.np, list.Items, want)
	setVersionStatus(s.np, list.Items, want, s.version, s.release)
	setConfigStatus(s.np, list.Items, s.template)
	return nil
}

// ConditionUpdatingConfig says whether a NodePool's nodes are being replaced
// to take a change of its configuration (its machine template).
const ConditionUpdatingConfig = "UpdatingConfig"

// setConfigStatus sets UpdatingConfig from the Machines' templates: a
// Replace NodePool's MachineDeployment replaces the machines of an older
// template; an InPlace NodePool's existing nodes keep theirs.
func setConfigStatus(np *hyperv1.NodePool, machines []clusterv1.Machine, template string) {
	if template == "" {
		return
	}
	var stale []string
	for _, m := range machines {
		if m.DeletionTimestamp.IsZero() && m.Spec.InfrastructureRef.Name != template {
			stale = append(stale, m.Name)
		}
	}
	switch {
	case len(stale) == 0:
		setCondition(np, ConditionUpdatingConfig, false, "AsExpected", "Every node has the NodePool's configuration")
	case np.Spec.Management.UpgradeType == hyperv1.UpgradeTypeInPlace:
		setCondition(np, ConditionUpdatingConfig, false, "NewNodesOnly",
			"An InPlace NodePool's configuration change applies to new nodes; these keep the one before: "+limit(stale))
	default:
		setCondition(np, ConditionUpdatingConfig, true, "RollingOut", "Replacing nodes for a configuration change: "+limit(stale))
	}
}

// ConditionUpdatingVersion says whether a NodePool's nodes are being moved
// to its release.
const ConditionUpdatingVersion = "UpdatingVersion"

// setVersionStatus sets status.version (the release every node runs, once
// all do) and UpdatingVersion from the Machines' Kubernetes versions: a
// Replace NodePool's MachineDeployment rolls its machines over to the
// release's version; an InPlace NodePool's nodes keep theirs.
func setVersionStatus(np *hyperv1.NodePool, machines []clusterv1.Machine, want int32, version, release string) {
	var old []string
	var live int32
	for _, m := range machines {
		if !m.DeletionTimestamp.IsZero() {
			continue
		}
		live++
		if m.Spec.Version != version {
			old = append(old, m.Name+" runs "+m.Spec.Version)
		}
	}
	inPlace := np.Spec.Management.UpgradeType == hyperv1.UpgradeTypeInPlace
	switch {
	case len(old) == 0 && live == want:
		np.Status.Version = release
		setCondition(np, ConditionUpdatingVersion, false, "AsExpected", fmt.Sprintf("Every node runs release %s (Kubernetes %s)", release, version))
	case len(old) == 0:
		setCondition(np, ConditionUpdatingVersion, false, "AsExpected", fmt.Sprintf("New nodes run release %s (Kubernetes %s)", release, version))
	case inPlace:
		setCondition(np, ConditionUpdatingVersion, true, "InPlaceUpgrade", fmt.Sprintf("Moving nodes to release %s (Kubernetes %s) one at a time: %s", release, version, limit(old)))
	default:
		setCondition(np, ConditionUpdatingVersion, true, "RollingOut", fmt.Sprintf("Replacing nodes with nodes of release %s (Kubernetes %s): %s", release, version, limit(old)))
	}
}

// setMachineStatus sets a NodePool's replicas and its Ready, AllMachinesReady
// and AllNodesHealthy conditions from its Machines, want of them asked for.
func setMachineStatus(np *hyperv1.NodePool, machines []clusterv1.Machine, want int32) {
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })
	var notReady, unhealthy []string
	var ready int32
	for _, m := range machines {
		if !m.DeletionTimestamp.IsZero() {
			continue
		}
		if c := meta.FindStatusCondition(m.Status.Conditions, clusterv1.MachineReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
			notReady = append(notReady, m.Name+": "+machineProblem(m))
		}
		switch c := meta.FindStatusCondition(m.Status.Conditions, clusterv1.MachineNodeHealthyCondition); {
		case m.Status.NodeRef.Name == "":
			unhealthy = append(unhealthy, m.Name+": no node yet")
		case c == nil || c.Status != metav1.ConditionTrue:
			unhealthy = append(unhealthy, m.Status.NodeRef.Name+": "+conditionText(c))
		default:
			ready++
		}
	}
	np.Status.Replicas = ready
	live := int32(len(machines))
	switch {
	case len(notReady) > 0:
		setCondition(np, ConditionAllMachinesReady, false, "MachinesNotReady", limit(notReady))
	case live < want:
		setCondition(np, ConditionAllMachinesReady, false, "WaitingForMachines", fmt.Sprintf("%d of %d machines exist", live, want))
	default:
		setCondition(np, ConditionAllMachinesReady, true, "AsExpected", "All machines are ready")
	}
	if len(unhealthy) > 0 {
		setCondition(np, ConditionAllNodesHealthy, false, "NodesNotHealthy", limit(unhealthy))
	} else {
		setCondition(np, ConditionAllNodesHealthy, true, "AsExpected", "All nodes are healthy")
	}
	if ready == want && live == want {
		setCondition(np, ConditionReady, true, "AsExpected", fmt.Sprintf("%d of %d nodes are ready", ready, want))
	} else {
		msg := fmt.Sprintf("%d of %d nodes are ready", ready, want)
		if len(notReady) > 0 {
			msg += "; " + notReady[0]
		}
		setCondition(np, ConditionReady, false, "ScalingUp", msg)
		if ready > want || live > want {
			setCondition(np, ConditionReady, false, "ScalingDown", msg)
		}
	}
}

// machineProblem says why a Machine is not ready: its first false condition
// among infrastructure, node and ready.
func machineProblem(m clusterv1.Machine) string {
	for _, t := range []string{clusterv1.MachineInfrastructureReadyCondition, clusterv1.MachineNodeReadyCondition, clusterv1.MachineNodeHealthyCondition, clusterv1.MachineReadyCondition} {
		if c := meta.FindStatusCondition(m.Status.Conditions, t); c != nil && c.Status != metav1.ConditionTrue {
			return t + " " + conditionText(c)
		}
	}
	if m.Status.Phase != "" {
		return "phase " + m.Status.Phase
	}
	return "not reported yet"
}

func conditionText(c *metav1.Condition) string {
	if c == nil {
		return "not reported yet"
	}
	if c.Message != "" {
		return c.Reason + ": " + strings.ReplaceAll(c.Message, "\n", " ")
	}
	return c.Reason
}

func limit(items []string) string {
	const n = 5
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

// deleteMachines deletes the NodePool's Cluster API objects and reports
// whether its Machines are all gone.
func (r *Reconciler) deleteMachines(ctx context.Context, np *hyperv1.NodePool, cpns string) (bool, error) {
	key := np.Namespace + "/" + np.Name
	for _, list := range []client.ObjectList{&clusterv1.MachineDeploymentList{}, &clusterv1.MachineSetList{}, &clusterv1.MachineHealthCheckList{}} {
		if err := r.Client.List(ctx, list, client.InNamespace(cpns), client.MatchingLabels{hyperv1.NodePoolLabel: np.Name}); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return false, err
		}
		items, _ := meta.ExtractList(list)
		for _, o := range items {
			obj := o.(client.Object)
			if obj.GetAnnotations()[NodePoolAnnotation] != key || !obj.GetDeletionTimestamp().IsZero() {
				continue
			}
			if err := r.Client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
	}
	machines := &clusterv1.MachineList{}
	if err := r.Client.List(ctx, machines, client.InNamespace(cpns), client.MatchingLabels{hyperv1.NodePoolLabel: np.Name}); err != nil {
		return false, err
	}
	left := slices.DeleteFunc(machines.Items, func(m clusterv1.Machine) bool { return m.Annotations[NodePoolAnnotation] != key })
	if len(left) > 0 {
		return false, nil
	}
	templates := &capiproviderv1.AgentMachineTemplateList{}
	if err := r.Client.List(ctx, templates, client.InNamespace(cpns), client.MatchingLabels{hyperv1.NodePoolLabel: np.Name}); err != nil {
		return false, err
	}
	for i := range templates.Items {
		if err := r.Client.Delete(ctx, &templates.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	return true, nil
}
