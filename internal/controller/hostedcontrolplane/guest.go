package hostedcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/hcp-dev/hcp/api/config/v1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/config/crd"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/guest"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/release"
)

// errNotEstablished: the hosted cluster answered, but a CRD it was given is
// not served yet.
var errNotEstablished = errors.New("not established yet")

// guestAnswered says whether a failed sync got an answer from the hosted
// cluster's API (it is starting its types), rather than no answer at all (it
// is not reachable from here).
func guestAnswered(err error) bool {
	var status apierrors.APIStatus
	return errors.Is(err, errNotEstablished) || errors.As(err, &status)
}

// syncGuest keeps, inside the hosted cluster, one ClusterOperator per control
// plane component with its real health, and the ClusterVersion.
func (r *Reconciler) syncGuest(ctx context.Context, hcp *hyperv1.HostedControlPlane, secrets map[string]*corev1.Secret,
	components []hyperv1.ComponentStatus, rel *release.Release) error {
	kc := secrets[controlplane.SecretLocalhostKubecfg]
	if kc == nil {
		return fmt.Errorf("secret %s is missing", controlplane.SecretLocalhostKubecfg)
	}
	gc, err := r.guests.Get(hcp.Namespace, kc.Data[controlplane.KeyKubeconfig])
	if err != nil {
		return err
	}
	c := gc.Client
	if !gc.Marked("crds") {
		crds, err := crd.Guest()
		if err != nil {
			return err
		}
		for _, o := range crds {
			if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("installing CRD %s in the hosted cluster: %w", o.Name, err)
			}
		}
		// kubectl finds the types only once they are established.
		for _, o := range crds {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
				return fmt.Errorf("reading CRD %s in the hosted cluster: %w", o.Name, err)
			}
			if !crdEstablished(got) {
				return fmt.Errorf("CRD %s is %w", o.Name, errNotEstablished)
			}
		}
		gc.Mark("crds")
	}
	// The cluster's own objects (DNS, RBAC for nodes) are retried on the
	// next sync when they fail; they do not hold the control plane back.
	ep := hcp.Status.ControlPlaneEndpoint
	if addons := fmt.Sprintf("addons/%s:%d", ep.Host, ep.Port); !gc.Marked(addons) {
		if err := applyAddons(ctx, c, hcp, rel); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "applying the hosted cluster's DNS and node RBAC; retrying with the next sync")
		} else {
			gc.Mark(addons)
		}
	}
	for _, comp := range components {
		co := &configv1.ClusterOperator{ObjectMeta: metav1.ObjectMeta{Name: comp.Name}}
		if err := c.Get(ctx, client.ObjectKeyFromObject(co), co); apierrors.IsNotFound(err) {
			if err := c.Create(ctx, co); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		before := co.DeepCopy()
		co.Status.Versions = []configv1.OperandVersion{{Name: "operator", Version: rel.Name}, {Name: comp.Name, Version: rel.Components[comp.Name]}}
		co.Status.RelatedObjects = []configv1.ObjectReference{{Group: "hypershift.openshift.io", Resource: "hostedcontrolplanes", Namespace: hcp.Namespace, Name: hcp.Name}}
		for _, gc := range operatorConditions(comp, deployed(hcp)) {
			setGuestCondition(&co.Status.Conditions, gc.Type, gc.Status == configv1.ConditionTrue, gc.Reason, gc.Message)
		}
		if equality.Semantic.DeepEqual(before.Status, co.Status) {
			continue
		}
		if err := c.Status().Patch(ctx, co, client.MergeFrom(before)); err != nil {
			return err
		}
	}
	cv := &configv1.ClusterVersion{ObjectMeta: metav1.ObjectMeta{Name: "version"}}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cv), cv); apierrors.IsNotFound(err) {
		cv.Spec.ClusterID = hcp.Spec.ClusterID
		if err := c.Create(ctx, cv); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	before := cv.DeepCopy()
	cv.Status.Desired = configv1.Release{Version: rel.Name, Image: rel.Image}
	if vs := hcp.Status.VersionStatus; vs != nil {
		cv.Status.History = nil
		for _, h := range vs.History {
			cv.Status.History = append(cv.Status.History, configv1.UpdateHistory{State: string(h.State), StartedTime: h.StartedTime,
				CompletionTime: h.CompletionTime, Version: h.Version, Image: h.Image, Verified: h.Verified})
		}
	}
	for _, gc := range versionConditions(components, rel.Name) {
		setGuestCondition(&cv.Status.Conditions, gc.Type, gc.Status == configv1.ConditionTrue, gc.Reason, gc.Message)
	}
	if equality.Semantic.DeepEqual(before.Status, cv.Status) {
		return nil
	}
	return c.Status().Patch(ctx, cv, client.MergeFrom(before))
}

// applyAddons puts the hosted cluster's own objects in place (guest.Addons).
func applyAddons(ctx context.Context, c client.Client, hcp *hyperv1.HostedControlPlane, rel *release.Release) error {
	ep := hcp.Status.ControlPlaneEndpoint
	objs, err := guest.Addons(guest.AddonsInput{ServiceCIDR: controlplane.ServiceCIDR(hcp), Policy: hcp.Spec.InfrastructureAvailabilityPolicy,
		CoreDNSImage: images.Reference("coredns", rel.Components["coredns"]), KubeletClientUser: controlplane.KubeletAPIClientUser,
		APIServerIP: ep.Host, APIServerPort: ep.Port})
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("hcp"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s in the hosted cluster: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return nil
}

// operatorConditions are a component's ClusterOperator conditions, from its
// replicas' readiness: Available while one replica serves, Progressing while
// replicas start after the release was applied (deployed false), Degraded
// when a replica is missing after that or reports a problem.
func operatorConditions(comp hyperv1.ComponentStatus, deployed bool) []configv1.ClusterOperatorStatusCondition {
	msg := fmt.Sprintf("%d of %d replicas are ready", comp.ReadyReplicas, comp.Replicas)
	cond := func(t string, ok bool, yes, no, msg string) configv1.ClusterOperatorStatusCondition {
		if ok {
			return configv1.ClusterOperatorStatusCondition{Type: t, Status: configv1.ConditionTrue, Reason: yes, Message: msg}
		}
		return configv1.ClusterOperatorStatusCondition{Type: t, Status: configv1.ConditionFalse, Reason: no, Message: msg}
	}
	short := comp.ReadyReplicas < comp.Replicas
	problem := comp.Message
	if problem == "" && short {
		problem = msg
	}
	return []configv1.ClusterOperatorStatusCondition{
		cond(configv1.OperatorAvailable, comp.ReadyReplicas > 0, "AsExpected", "NoReplicasReady", msg),
		cond(configv1.OperatorProgressing, short && !deployed, "Deploying", "AsExpected", msg),
		cond(configv1.OperatorDegraded, (short && deployed) || comp.Message != "", "UnavailableReplicas", "AsExpected", problem),
	}
}

// versionConditions are the ClusterVersion's conditions: Available while
// every component has a ready replica, Progressing until every replica of the
// release is ready, Failing while a component has none or reports a problem.
func versionConditions(components []hyperv1.ComponentStatus, release string) []configv1.ClusterOperatorStatusCondition {
	var down, problems []string
	for _, c := range components {
		if c.ReadyReplicas == 0 {
			down = append(down, c.Name)
		}
		if c.Message != "" {
			problems = append(problems, c.Name+": "+c.Message)
		}
	}
	done := allReady(components)
	out := []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue, Reason: "AsExpected", Message: "Done applying " + release},
		{Type: configv1.OperatorProgressing, Status: configv1.ConditionFalse, Reason: "AsExpected", Message: "Cluster version is " + release},
		{Type: configv1.OperatorFailing, Status: configv1.ConditionFalse, Reason: "AsExpected"},
	}
	if len(down) > 0 {
		out[0] = configv1.ClusterOperatorStatusCondition{Type: configv1.OperatorAvailable, Status: configv1.ConditionFalse, Reason: "ComponentsUnavailable",
			Message: "No replica is ready of: " + strings.Join(down, ", ")}
	}
	if !done {
		out[1] = configv1.ClusterOperatorStatusCondition{Type: configv1.OperatorProgressing, Status: configv1.ConditionTrue, Reason: "Rollout", Message: "Working towards " + release}
	}
	if failing := append(down, problems...); len(failing) > 0 {
		out[2] = configv1.ClusterOperatorStatusCondition{Type: configv1.OperatorFailing, Status: configv1.ConditionTrue, Reason: "ComponentsFailing", Message: strings.Join(failing, "; ")}
	}
	return out
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

func setGuestCondition(conds *[]configv1.ClusterOperatorStatusCondition, t string, ok bool, reason, msg string) {
	status := configv1.ConditionFalse
	if ok {
		status = configv1.ConditionTrue
	}
	for i := range *conds {
		c := &(*conds)[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.Now()
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	*conds = append(*conds, configv1.ClusterOperatorStatusCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()})
}
