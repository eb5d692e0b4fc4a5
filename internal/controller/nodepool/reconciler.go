// Package nodepool reconciles NodePools: per NodePool, an ignition token that
// rotates, a bootstrap token inside the hosted cluster that nodes join with, and
// the user-data Secret (an Ignition pointer config to the ignition server) that
// hosts boot with. Binding Agents to machines is not here yet: a NodePool with
// replicas reports that it waits for machines.
package nodepool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/csrapprover"
	"github.com/hcp-dev/hcp/internal/guest"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/release"
)

// Finalizer holds a NodePool until its Secrets are gone.
const Finalizer = "hypershift.openshift.io/nodepool"

// Condition types and reasons of NodePools.
const (
	ConditionReady            = "Ready"
	ConditionAllMachinesReady = "AllMachinesReady"
	ConditionAllNodesHealthy  = "AllNodesHealthy"
	ConditionValidPlatform    = "ValidPlatformConfig"
	ConditionIgnitionToken    = "ValidGeneratedPayload"
	// ConditionReachedIgnitionEndpoint is true once a host fetched the NodePool's Ignition.
	ConditionReachedIgnitionEndpoint = "ReachedIgnitionEndpoint"
	// ConditionValidReleaseImage: spec.release names a release the
	// management cluster has.
	ConditionValidReleaseImage = "ValidReleaseImage"
	// ConditionSupportedVersionSkew: the NodePool's release is not newer than
	// its HostedCluster's and trails it by at most hosted.MaxNodeSkew minor
	// versions.
	ConditionSupportedVersionSkew = "SupportedVersionSkew"
)

// BootstrapGroupPrefix prefixes the group a NodePool's bootstrap token
// authenticates as: system:bootstrappers:nodepool:<namespace>:<name>.
const BootstrapGroupPrefix = "system:bootstrappers:nodepool:"

// Reconciler reconciles NodePools.
type Reconciler struct {
	Client client.Client
	// IgnitionURL is the ignition server's URL as hosts reach it.
	IgnitionURL string
	// IgnitionCA verifies the ignition server.
	IgnitionCA []byte
	// Releases resolves the NodePool's release to the Kubernetes version its
	// machines run.
	Releases release.Store
	// TokenRotation is how often ignition and bootstrap tokens are renewed.
	TokenRotation time.Duration
	Now           func() time.Time

	guests guest.Clients
	csrs   *csrapprover.Approvers
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.TokenRotation == 0 {
		r.TokenRotation = 24 * time.Hour
	}
	r.csrs = &csrapprover.Approvers{Client: mgr.GetClient(), KubeconfigSecret: controlplane.SecretLocalhostKubecfg,
		Log: mgr.GetLogger().WithName("csr-approver")}
	byAnnotation := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		ns, name, ok := strings.Cut(o.GetAnnotations()[NodePoolAnnotation], "/")
		if !ok {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).For(&hyperv1.NodePool{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Watches(&clusterv1.Machine{}, byAnnotation).
		Watches(&clusterv1.MachineDeployment{}, byAnnotation).
		Watches(&clusterv1.MachineSet{}, byAnnotation).
		Watches(&corev1.Secret{}, byAnnotation).
		Complete(r)
}

// Reconcile brings one NodePool's tokens, payload and machines up to date. A
// write that lost a race with another controller is retried, not reported.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	np := &hyperv1.NodePool{}
	if err := r.Client.Get(ctx, req.NamespacedName, np); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	hc := &hyperv1.HostedCluster{}
	hcErr := r.Client.Get(ctx, client.ObjectKey{Namespace: np.Namespace, Name: np.Spec.ClusterName}, hc)
	cpns := hosted.ControlPlaneNamespace(np.Namespace, np.Spec.ClusterName)
	if !np.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, np, cpns)
	}
	if controllerutil.AddFinalizer(np, Finalizer) {
		if err := r.Client.Update(ctx, np); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := np.DeepCopy()
	result, err := r.reconcileNormal(ctx, np, hc, hcErr, cpns)
	if perr := r.Client.Status().Patch(ctx, np, client.MergeFrom(before)); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

func setCondition(np *hyperv1.NodePool, t string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&np.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: np.Generation})
}

func (r *Reconciler) reconcileNormal(ctx context.Context, np *hyperv1.NodePool, hc *hyperv1.HostedCluster, hcErr error, cpns string) (ctrl.Result, error) {
	if apierrors.IsNotFound(hcErr) {
		setCondition(np, ConditionReady, false, "HostedClusterNotFound", fmt.Sprintf("HostedCluster %s/%s does not exist; spec.clusterName must name one in this namespace", np.Namespace, np.Spec.ClusterName))
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	} else if hcErr != nil {
		return ctrl.Result{}, hcErr
	}
	if np.Spec.Platform.Type != hc.Spec.Platform.Type {
		setCondition(np, ConditionValidPlatform, false, "PlatformMismatch", fmt.Sprintf("spec.platform.type %s differs from the HostedCluster's %s", np.Spec.Platform.Type, hc.Spec.Platform.Type))
		return ctrl.Result{}, nil
	}
	setCondition(np, ConditionValidPlatform, true, "AsExpected", "The platform matches the HostedCluster's")
	rel, ok := r.checkRelease(np, hc)
	if !ok {
		// Nothing changes on the nodes while the release is refused.
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: cpns}, &corev1.Namespace{}); err != nil {
		setCondition(np, ConditionReady, false, "WaitingForControlPlane", "The control plane namespace "+cpns+" does not exist yet")
		return ctrl.Result{RequeueAfter: 5 * time.Second}, client.IgnoreNotFound(err)
	}
	if r.IgnitionURL == "" {
		msg := "The operator runs no infrastructure service, so no host can fetch this NodePool's Ignition; run it with --infra-url (hcp install --infra-url)"
		setCondition(np, ConditionIgnitionToken, false, "NoIgnitionServer", msg)
		setCondition(np, ConditionReady, false, "NoIgnitionServer", msg)
		return ctrl.Result{}, nil
	}
	tokens, err := r.ensureTokens(ctx, np, hc, cpns, rel.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	pointer, err := ignition.Pointer(r.IgnitionURL, tokens.Current, np.Namespace+"/"+np.Name, r.IgnitionCA)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applySecret(ctx, np, hc, cpns, hosted.UserDataSecret(np.Name), map[string][]byte{"value": pointer, "format": []byte("ignition")}); err != nil {
		return ctrl.Result{}, err
	}
	// The payload is valid once the bootstrap token it carries exists in the
	// hosted cluster.
	requeue := r.TokenRotation / 4
	switch {
	case !meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable):
		setCondition(np, ConditionIgnitionToken, false, "WaitingForControlPlane", "The bootstrap token goes into the hosted cluster once it is Available")
		requeue = 5 * time.Second
	default:
		if err := r.ensureBootstrapToken(ctx, np, hc, cpns, tokens); err != nil {
			setCondition(np, ConditionIgnitionToken, false, "BootstrapTokenFailed", "Putting the bootstrap token into the hosted cluster: "+err.Error())
			requeue = 5 * time.Second
		} else {
			setCondition(np, ConditionIgnitionToken, true, "AsExpected", "The ignition token and user data are in "+cpns+" and the bootstrap token is in the hosted cluster")
		}
	}
	want := ptr.Deref(np.Spec.Replicas, 0)
	if hc.Spec.InfraID == "" {
		setCondition(np, ConditionReady, false, "WaitingForControlPlane", "The HostedCluster has no infraID yet")
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Spec.InfraID}, &clusterv1.Cluster{}); err != nil {
		setCondition(np, ConditionReady, false, "WaitingForControlPlane", "The Cluster API cluster "+cpns+"/"+hc.Spec.InfraID+" does not exist yet")
		return ctrl.Result{RequeueAfter: time.Second}, client.IgnoreNotFound(err)
	}
	scope := machineScope{np: np, hc: hc, cpns: cpns, infraID: hc.Spec.InfraID, version: rel.KubernetesVersion(), release: rel.Name}
	template, err := r.ensureTemplate(ctx, scope)
	if err != nil {
		return ctrl.Result{}, err
	}
	scope.template = template
	if err := r.ensureMachines(ctx, scope, template); err != nil {
		return ctrl.Result{}, err
	}
	step := ""
	if np.Spec.Management.UpgradeType == hyperv1.UpgradeTypeInPlace && meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable) {
		if step, err = r.upgradeInPlace(ctx, scope); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.machineStatus(ctx, scope, want); err != nil {
		return ctrl.Result{}, err
	}
	if c := meta.FindStatusCondition(np.Status.Conditions, ConditionUpdatingVersion); step != "" && c != nil && c.Status == metav1.ConditionTrue {
		setCondition(np, ConditionUpdatingVersion, true, "InPlaceUpgrade", c.Message+"; now: "+step)
	}
	if step != "" {
		requeue = 2 * time.Second
	}
	if t := r.reachedAt(ctx, cpns, np.Name); t != "" {
		setCondition(np, ConditionReachedIgnitionEndpoint, true, "AsExpected", "A host fetched its Ignition at "+t)
	} else if want > 0 {
		setCondition(np, ConditionReachedIgnitionEndpoint, false, "NoHostYet", "No host has fetched its Ignition from the ignition endpoint yet")
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// checkRelease sets ValidReleaseImage and SupportedVersionSkew: the
// NodePool's release must exist, not be newer than the version its
// HostedCluster's control plane runs (or, before it completed one, its
// spec.release), and trail it by at most hosted.MaxNodeSkew minor versions.
func (r *Reconciler) checkRelease(np *hyperv1.NodePool, hc *hyperv1.HostedCluster) (*release.Release, bool) {
	rel, cond := hosted.ReleaseImage(r.Releases, np.Spec.Release.Image, np.Generation)
	meta.SetStatusCondition(&np.Status.Conditions, cond)
	if rel == nil {
		setCondition(np, ConditionReady, false, cond.Reason, cond.Message)
		return nil, false
	}
	cluster := hosted.CompletedVersion(hc.Status.Version)
	if cluster == "" {
		if crel, err := r.Releases.Resolve(hc.Spec.Release.Image); err == nil {
			cluster = crel.Name
		}
	}
	if cluster == "" {
		setCondition(np, ConditionSupportedVersionSkew, true, "AsExpected", "The HostedCluster's release is not known yet")
		return rel, true
	}
	var ue *hosted.UpgradeError
	if err := hosted.CheckNodeSkew(rel.Name, cluster); errors.As(err, &ue) {
		msg := "spec.release.image: " + ue.Message
		setCondition(np, ConditionSupportedVersionSkew, false, ue.Reason, msg)
		setCondition(np, ConditionReady, false, ue.Reason, msg)
		return nil, false
	}
	setCondition(np, ConditionSupportedVersionSkew, true, "AsExpected", fmt.Sprintf("Release %s is supported with the HostedCluster's %s", rel.Name, cluster))
	return rel, true
}

// ensureTokens keeps the NodePool's token Secret, rotating it when due.
func (r *Reconciler) ensureTokens(ctx context.Context, np *hyperv1.NodePool, hc *hyperv1.HostedCluster, cpns, releaseName string) (ignition.Tokens, error) {
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret(np.Name)}, s)
	if err != nil && !apierrors.IsNotFound(err) {
		return ignition.Tokens{}, err
	}
	t := ignition.TokensFrom(s)
	now := r.Now()
	sameRelease := string(s.Data[ignition.KeyRelease]) == releaseName
	if !t.Due(now, r.TokenRotation) && len(s.Data[ignition.KeyBootstrapID]) == 6 && sameRelease {
		return t, nil
	}
	t = t.Rotate(now)
	if !sameRelease {
		// Ignition for another release: the old token stops working.
		t.Previous = ""
	}
	data := map[string][]byte{
		ignition.KeyRelease: []byte(releaseName),
		ignition.KeyToken:   []byte(t.Current), ignition.KeyPreviousToken: []byte(t.Previous),
		ignition.KeyRotatedAt:   []byte(t.RotatedAt.UTC().Format(time.RFC3339)),
		ignition.KeyBootstrapID: []byte(ignition.RandomHex(3)), ignition.KeyBootstrapToken: []byte(ignition.RandomHex(8)),
	}
	return t, r.applySecret(ctx, np, hc, cpns, hosted.TokenSecret(np.Name), data)
}

// ensureBootstrapToken puts the NodePool's bootstrap token into the hosted
// cluster, with the RBAC that lets its nodes request and get client
// certificates, and removes the NodePool's older tokens.
func (r *Reconciler) ensureBootstrapToken(ctx context.Context, np *hyperv1.NodePool, hc *hyperv1.HostedCluster, cpns string, t ignition.Tokens) error {
	kc := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: controlplane.SecretLocalhostKubecfg}, kc); err != nil {
		return err
	}
	// The nodes' serving certificates are approved against their Agents.
	if a := hc.Spec.Platform.Agent; a != nil {
		if err := r.csrs.Ensure(cpns, kc.Data[controlplane.KeyKubeconfig], a.AgentNamespace); err != nil {
			return fmt.Errorf("kubelet serving certificate approver: %w", err)
		}
	}
	gc, err := r.guests.Get(cpns, kc.Data[controlplane.KeyKubeconfig])
	if err != nil {
		return err
	}
	ts := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret(np.Name)}, ts); err != nil {
		return err
	}
	id := string(ts.Data[ignition.KeyBootstrapID])
	group := BootstrapGroup(np)
	bt := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bootstrap-token-" + id}}
	if _, err := controllerutil.CreateOrUpdate(ctx, gc, bt, func() error {
		if bt.Labels == nil {
			bt.Labels = map[string]string{}
		}
		bt.Labels[hyperv1.NodePoolLabel] = np.Namespace + "." + np.Name
		bt.Type = corev1.SecretTypeBootstrapToken
		bt.StringData = map[string]string{
			"token-id": id, "token-secret": string(ts.Data[ignition.KeyBootstrapToken]),
			"usage-bootstrap-authentication": "true", "auth-extra-groups": group,
			"expiration":  t.RotatedAt.Add(2 * r.TokenRotation).UTC().Format(time.RFC3339),
			"description": "joins nodes of NodePool " + np.Namespace + "/" + np.Name,
		}
		return nil
	}); err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	old := &corev1.SecretList{}
	if err := gc.List(ctx, old, client.InNamespace("kube-system"), client.MatchingLabels{hyperv1.NodePoolLabel: np.Namespace + "." + np.Name}); err != nil {
		return err
	}
	for i := range old.Items {
		if o := &old.Items[i]; o.Name != bt.Name && r.Now().Sub(o.CreationTimestamp.Time) > r.TokenRotation {
			_ = gc.Delete(ctx, o)
		}
	}
	for _, b := range []struct{ name, role string }{
		{"hcp:nodepool-bootstrapper:" + np.Namespace + ":" + np.Name, "system:node-bootstrapper"},
		{"hcp:nodepool-autoapprove:" + np.Namespace + ":" + np.Name, "system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
	} {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: b.name}}
		if _, err := controllerutil.CreateOrUpdate(ctx, gc, crb, func() error {
			crb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role}
			crb.Subjects = []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}}
			return nil
		}); err != nil {
			return fmt.Errorf("cluster role binding %s: %w", b.name, err)
		}
	}
	// Only now may the ignition server hand out Ignition carrying this token:
	// a host that got it earlier would be refused by the API server.
	if ts.Annotations[ignition.BootstrapTokenReadyAnnotation] != id {
		before := ts.DeepCopy()
		if ts.Annotations == nil {
			ts.Annotations = map[string]string{}
		}
		ts.Annotations[ignition.BootstrapTokenReadyAnnotation] = id
		if err := r.Client.Patch(ctx, ts, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("recording the bootstrap token on %s/%s: %w", cpns, ts.Name, err)
		}
	}
	return nil
}

// BootstrapGroup is the group a NodePool's bootstrap token authenticates as.
func BootstrapGroup(np *hyperv1.NodePool) string {
	return strings.ToLower(BootstrapGroupPrefix + np.Namespace + ":" + np.Name)
}

// reachedAt is when a host last fetched the NodePool's Ignition, as the
// ignition server records it on the token Secret; "" if never.
func (r *Reconciler) reachedAt(ctx context.Context, cpns, np string) string {
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret(np)}, s); err != nil {
		return ""
	}
	return s.Annotations[ignition.ReachedAnnotation]
}

func (r *Reconciler) applySecret(ctx context.Context, np *hyperv1.NodePool, hc *hyperv1.HostedCluster, namespace, name string, data map[string][]byte) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, s, func() error {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[NodePoolAnnotation] = np.Namespace + "/" + np.Name
		// Labelled like the control plane's own Secrets, so they go with the cluster.
		s.Labels[hosted.ManagedLabel] = hc.Name
		s.Data = data
		return nil
	})
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, np *hyperv1.NodePool, cpns string) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(np, Finalizer) {
		return ctrl.Result{}, nil
	}
	// Machines go first: their nodes are drained and their Agents unbound
	// while the tokens still exist.
	if gone, err := r.deleteMachines(ctx, np, cpns); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	for _, name := range []string{hosted.TokenSecret(np.Name), hosted.UserDataSecret(np.Name)} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cpns, Name: name}}
		if err := r.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
	}
	controllerutil.RemoveFinalizer(np, Finalizer)
	return ctrl.Result{}, r.Client.Update(ctx, np)
}
