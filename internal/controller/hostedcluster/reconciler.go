// Package hostedcluster reconciles HostedClusters: it validates them, creates
// the control plane namespace and the HostedControlPlane, copies status back,
// and publishes the admin kubeconfig as <name>-admin-kubeconfig.
package hostedcluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

// Finalizer holds a HostedCluster until its control plane is gone.
const Finalizer = "hypershift.openshift.io/finalizer"

// CreatedNamespaceAnnotation marks a control plane namespace that hcp created
// (and so deletes with the cluster); a namespace the user made is left in place.
const CreatedNamespaceAnnotation = "hypershift.openshift.io/created-by-hostedcluster"

// copiedConditions are the HostedControlPlane conditions a HostedCluster shows.
var copiedConditions = []string{
	hyperv1.ConditionAvailable, hyperv1.ConditionProgressing, hyperv1.ConditionDegraded,
	hyperv1.ConditionEtcdAvailable, hyperv1.ConditionKubeAPIServerAvailable, hyperv1.ConditionInfrastructureReady,
	hyperv1.ConditionSecretsEncrypted,
}

// Reconciler reconciles HostedClusters.
type Reconciler struct {
	Client   client.Client
	Releases release.Store
	// SupportedPublishing lists the publishing strategies the runtime serves;
	// nil allows all.
	SupportedPublishing map[hyperv1.PublishingStrategyType]bool
	// IgnitionEndpoint is host:port of the ignition server nodes fetch their
	// Ignition from (path /ignition); empty when none runs.
	IgnitionEndpoint string
	// IgnitionCheck, when set, says whether the ignition server answers.
	IgnitionCheck func(context.Context) error
	// Backups takes scheduled backups (none when nil). DataDir holds Local
	// backups and archives while a control plane is restored from them.
	Backups backup.Taker
	DataDir string
	// RemoteRestore: control planes' etcd pods fetch the archive they are
	// restored from themselves (the Kubernetes runtime), so it must be at
	// an http(s) URL.
	RemoteRestore bool
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&hyperv1.HostedCluster{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Watches(&hyperv1.HostedControlPlane{}, handler.EnqueueRequestsFromMapFunc(ownerIn(hyperv1.HostedClusterAnnotation))).
		// A cluster created again under the same name waits for the old
		// control plane namespace to finish terminating.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(ownerIn(CreatedNamespaceAnnotation))).
		Complete(r)
}

// ownerIn maps an object to the HostedCluster named ("namespace/name") by one
// of its annotations.
func ownerIn(annotation string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		ns, name, ok := strings.Cut(o.GetAnnotations()[annotation], "/")
		if !ok {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
}

// Reconcile brings one HostedCluster to its desired state.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	hc := &hyperv1.HostedCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, hc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !hc.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, hc)
	}
	if controllerutil.AddFinalizer(hc, Finalizer) {
		if err := r.Client.Update(ctx, hc); err != nil {
			return ctrl.Result{}, err
		}
	}
	if hc.Spec.InfraID == "" || hc.Spec.ClusterID == "" {
		if hc.Spec.InfraID == "" {
			hc.Spec.InfraID = hc.Name + "-" + utilrand.String(5)
		}
		if hc.Spec.ClusterID == "" {
			hc.Spec.ClusterID = string(uuid.NewUUID())
		}
		if err := r.Client.Update(ctx, hc); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := hc.DeepCopy()
	defer func() {
		if err := r.Client.Status().Patch(ctx, hc, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, fmt.Errorf("updating status: %w", err))
		}
	}()
	return r.reconcileNormal(ctx, hc)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, hc *hyperv1.HostedCluster) (ctrl.Result, error) {
	problems, rel, err := r.validate(ctx, hc)
	if err != nil {
		return ctrl.Result{}, err
	}
	cpns := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	hcp := &hyperv1.HostedControlPlane{}
	err = r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Name}, hcp)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	// A cluster created from a backup starts from a checked archive, or is
	// not created at all.
	var restore *backup.Contents
	if !exists && len(problems) == 0 && restoreURL(hc) != "" {
		var p *problem
		if restore, p = r.fetchRestore(ctx, hc, rel, cpns); p != nil {
			problems = append(problems, *p)
		}
	}
	setValidationConditions(hc, problems)

	if len(problems) > 0 && !exists {
		// Nothing is created for an invalid cluster; look again later, since
		// what was missing may appear.
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionAvailable, Status: metav1.ConditionFalse,
			Reason: problems[0].reason, Message: problems[0].message, ObservedGeneration: hc.Generation})
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionProgressing, Status: metav1.ConditionFalse,
			Reason: "Blocked", Message: "Fix the configuration: " + problems[0].message, ObservedGeneration: hc.Generation})
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}

	if err := r.ensureNamespace(ctx, hc, cpns); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.copySecrets(ctx, hc, cpns); err != nil {
		return ctrl.Result{}, err
	}
	if restore != nil {
		if err := r.restoreSecrets(ctx, hc, cpns, restore); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.copyEncryptionKeys(ctx, hc, cpns, encryptionRefused(problems)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensureHostedControlPlane(ctx, hc, hcp, cpns, releaseRefused(problems), encryptionRefused(problems)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensureClusterAPI(ctx, hc, hcp, cpns); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.copyStatus(ctx, hc, hcp); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.scheduledBackup(ctx, hc)}, nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, hc *hyperv1.HostedCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(hc, Finalizer) {
		return ctrl.Result{}, nil
	}
	cpns := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	// Node pools go first, then the Cluster API cluster with its machines, while
	// the control plane still serves and their nodes can be drained.
	if gone, err := r.deleteNodePools(ctx, hc); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	if gone, err := r.deleteClusterAPI(ctx, hc, cpns); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	hcp := &hyperv1.HostedControlPlane{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Name}, hcp)
	if err == nil {
		if hcp.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, hcp); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: 500 * time.Millisecond}, nil
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	ns := &corev1.Namespace{}
	err = r.Client.Get(ctx, client.ObjectKey{Name: cpns}, ns)
	switch {
	case err == nil && ns.Annotations[CreatedNamespaceAnnotation] == hc.Namespace+"/"+hc.Name:
		// The control plane is gone (its processes or workloads with it);
		// what is left in the namespace (Secrets, volumes) the namespace
		// controller removes in the background. A new cluster of the same
		// name waits for that (ensureNamespace).
		if ns.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
		}
	case err == nil:
		// A namespace the user made (for example the agent namespace) stays;
		// only hcp's marks on it go.
		if ns.Labels[hyperv1.HostedControlPlaneNamespaceLabel] != "" || ns.Annotations[hyperv1.HostedClusterAnnotation] != "" {
			delete(ns.Labels, hyperv1.HostedControlPlaneNamespaceLabel)
			delete(ns.Annotations, hyperv1.HostedClusterAnnotation)
			if err := r.Client.Update(ctx, ns); err != nil {
				return ctrl.Result{}, err
			}
		}
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, err
	}
	kc := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hc.Namespace, Name: AdminKubeconfigName(hc)}}
	if err := r.Client.Delete(ctx, kc); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	controllerutil.RemoveFinalizer(hc, Finalizer)
	return ctrl.Result{}, r.Client.Update(ctx, hc)
}

// AdminKubeconfigName is the Secret in the HostedCluster's namespace holding its
// admin kubeconfig (key kubeconfig).
func AdminKubeconfigName(hc *hyperv1.HostedCluster) string { return hc.Name + "-admin-kubeconfig" }

func (r *Reconciler) ensureNamespace(ctx context.Context, hc *hyperv1.HostedCluster, name string) error {
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	owner := hc.Namespace + "/" + hc.Name
	if apierrors.IsNotFound(err) {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{hyperv1.HostedControlPlaneNamespaceLabel: "true"},
			Annotations: map[string]string{hyperv1.HostedClusterAnnotation: owner, CreatedNamespaceAnnotation: owner}}}
		return r.Client.Create(ctx, ns)
	}
	if err != nil {
		return err
	}
	if !ns.DeletionTimestamp.IsZero() {
		return fmt.Errorf("namespace %s is being deleted; wait for it to go", name)
	}
	if ns.Labels[hyperv1.HostedControlPlaneNamespaceLabel] == "true" && ns.Annotations[hyperv1.HostedClusterAnnotation] == owner {
		return nil
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Labels[hyperv1.HostedControlPlaneNamespaceLabel] = "true"
	ns.Annotations[hyperv1.HostedClusterAnnotation] = owner
	return r.Client.Update(ctx, ns)
}

// copySecrets copies the pull secret and ssh key into the control plane namespace.
func (r *Reconciler) copySecrets(ctx context.Context, hc *hyperv1.HostedCluster, cpns string) error {
	if err := r.copySecret(ctx, hc, cpns, hc.Spec.PullSecret.Name, hosted.PullSecretName, nil); err != nil {
		return err
	}
	if hc.Spec.SSHKey.Name != "" {
		return r.copySecret(ctx, hc, cpns, hc.Spec.SSHKey.Name, hosted.SSHKeySecret, nil)
	}
	return nil
}

// copySecret copies Secret src of the HostedCluster's namespace to dst in
// the control plane namespace: its keys, or only those named.
func (r *Reconciler) copySecret(ctx context.Context, hc *hyperv1.HostedCluster, cpns, src, dst string, keys []string) error {
	from := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hc.Namespace, Name: src}, from); err != nil {
		return fmt.Errorf("reading secret %s/%s: %w", hc.Namespace, src, err)
	}
	to := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cpns, Name: dst}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, to, func() error {
		if to.Labels == nil {
			to.Labels = map[string]string{}
		}
		to.Labels[hosted.ManagedLabel] = hc.Name
		to.Type, to.Data = from.Type, from.Data
		if keys != nil {
			to.Data = map[string][]byte{}
			for _, k := range keys {
				to.Data[k] = from.Data[k]
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("copying secret %s: %w", src, err)
	}
	return nil
}

// copyEncryptionKeys copies the key Secrets spec.secretEncryption names into
// the control plane namespace, unless they were refused (the control plane
// keeps the keys it has).
func (r *Reconciler) copyEncryptionKeys(ctx context.Context, hc *hyperv1.HostedCluster, cpns string, refused bool) error {
	se := hc.Spec.SecretEncryption
	if refused || se == nil || se.AESCBC == nil {
		return nil
	}
	names := []string{se.AESCBC.ActiveKey.Name}
	if b := se.AESCBC.BackupKey; b != nil && b.Name != "" {
		names = append(names, b.Name)
	}
	for _, name := range names {
		if err := r.copySecret(ctx, hc, cpns, name, hosted.EncryptionKeyPrefix+name, []string{hyperv1.AESCBCKeySecretKey}); err != nil {
			return err
		}
	}
	return nil
}

// ensureHostedControlPlane creates or updates the HostedControlPlane from the
// HostedCluster's spec; with keepRelease (spec.release is refused) an existing
// one keeps the release it has.
func (r *Reconciler) ensureHostedControlPlane(ctx context.Context, hc *hyperv1.HostedCluster, hcp *hyperv1.HostedControlPlane, cpns string, keepRelease, keepEncryption bool) error {
	hcp.Namespace, hcp.Name = cpns, hc.Name
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, hcp, func() error {
		if hcp.Annotations == nil {
			hcp.Annotations = map[string]string{}
		}
		hcp.Annotations[hyperv1.HostedClusterAnnotation] = hc.Namespace + "/" + hc.Name
		for _, a := range []string{hyperv1.TopologyAnnotation, hyperv1.ControlPlaneImageAnnotation} {
			if v := hc.Annotations[a]; v != "" {
				hcp.Annotations[a] = v
			} else {
				delete(hcp.Annotations, a)
			}
		}
		running, encryption := hcp.Spec.ReleaseImage, hcp.Spec.SecretEncryption
		hcp.Spec = specFor(hc)
		if keepRelease && running != "" {
			hcp.Spec.ReleaseImage = running
		}
		if keepEncryption {
			hcp.Spec.SecretEncryption = encryption
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("HostedControlPlane %s/%s: %w", cpns, hc.Name, err)
	}
	return nil
}

// specFor is the HostedControlPlane spec of a HostedCluster.
func specFor(hc *hyperv1.HostedCluster) hyperv1.HostedControlPlaneSpec {
	s := hc.Spec
	spec := hyperv1.HostedControlPlaneSpec{
		ReleaseImage:                     s.Release.Image,
		PullSecret:                       corev1.LocalObjectReference{Name: hosted.PullSecretName},
		IssuerURL:                        s.IssuerURL,
		ClusterID:                        s.ClusterID,
		InfraID:                          s.InfraID,
		Platform:                         s.Platform,
		DNS:                              s.DNS,
		Networking:                       s.Networking,
		ControllerAvailabilityPolicy:     s.ControllerAvailabilityPolicy,
		InfrastructureAvailabilityPolicy: s.InfrastructureAvailabilityPolicy,
		Etcd:                             s.Etcd,
		Services:                         s.Services,
		ImageContentSources:              s.ImageContentSources,
		NodeSelector:                     s.NodeSelector,
		Tolerations:                      s.Tolerations,
		PausedUntil:                      s.PausedUntil,
	}
	if s.SSHKey.Name != "" {
		spec.SSHKey = corev1.LocalObjectReference{Name: hosted.SSHKeySecret}
	}
	if se := s.SecretEncryption; se != nil && se.AESCBC != nil {
		spec.SecretEncryption = &hyperv1.SecretEncryptionSpec{Type: se.Type, AESCBC: &hyperv1.AESCBCSpec{
			ActiveKey: corev1.LocalObjectReference{Name: hosted.EncryptionKeyPrefix + se.AESCBC.ActiveKey.Name}}}
		if b := se.AESCBC.BackupKey; b != nil && b.Name != "" {
			spec.SecretEncryption.AESCBC.BackupKey = &corev1.LocalObjectReference{Name: hosted.EncryptionKeyPrefix + b.Name}
		}
	}
	return spec
}

// copyStatus copies the control plane's conditions, version and endpoint, and
// publishes its admin kubeconfig in the HostedCluster's namespace.
func (r *Reconciler) copyStatus(ctx context.Context, hc *hyperv1.HostedCluster, hcp *hyperv1.HostedControlPlane) error {
	for _, t := range copiedConditions {
		c := meta.FindStatusCondition(hcp.Status.Conditions, t)
		if c == nil {
			meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionUnknown,
				Reason: "StatusUnknown", Message: "The control plane has not reported yet", ObservedGeneration: hc.Generation})
			continue
		}
		copied := *c
		copied.ObservedGeneration = hc.Generation
		meta.SetStatusCondition(&hc.Status.Conditions, copied)
	}
	hc.Status.Version = hcp.Status.VersionStatus.DeepCopy()
	hc.Status.IgnitionEndpoint = r.IgnitionEndpoint
	var ignitionErr error
	if r.IgnitionEndpoint != "" && r.IgnitionCheck != nil {
		ignitionErr = r.IgnitionCheck(ctx)
	}
	switch {
	case r.IgnitionEndpoint != "" && ignitionErr != nil:
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionIgnitionEndpointAvailable, Status: metav1.ConditionFalse,
			Reason: "IgnitionServerUnavailable", Message: ignitionErr.Error(), ObservedGeneration: hc.Generation})
	case r.IgnitionEndpoint != "":
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionIgnitionEndpointAvailable, Status: metav1.ConditionTrue,
			Reason: "AsExpected", Message: "Ignition is served at https://" + r.IgnitionEndpoint + "/ignition", ObservedGeneration: hc.Generation})
	default:
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionIgnitionEndpointAvailable, Status: metav1.ConditionFalse,
			Reason: "NoIgnitionServer", Message: "The operator runs no ignition server (start it with an infrastructure service address)", ObservedGeneration: hc.Generation})
	}
	hc.Status.ControlPlaneEndpoint = hcp.Status.ControlPlaneEndpoint
	if hcp.Status.KubeConfig == nil {
		return nil
	}
	src := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hcp.Namespace, Name: hcp.Status.KubeConfig.Name}, src); err != nil {
		return client.IgnoreNotFound(err)
	}
	dst := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hc.Namespace, Name: AdminKubeconfigName(hc)}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, dst, func() error {
		dst.Data = map[string][]byte{controlplane.KeyKubeconfig: src.Data[hcp.Status.KubeConfig.Key]}
		return controllerutil.SetControllerReference(hc, dst, r.Client.Scheme())
	}); err != nil {
		return fmt.Errorf("publishing the admin kubeconfig: %w", err)
	}
	hc.Status.KubeConfig = &corev1.LocalObjectReference{Name: dst.Name}
	return nil
}

// setValidationConditions sets ValidConfiguration, ValidReleaseImage and
// SupportedHostedCluster from the problems found.
func setValidationConditions(hc *hyperv1.HostedCluster, problems []problem) {
	for _, t := range []string{hyperv1.ConditionValidConfiguration, hyperv1.ConditionValidReleaseImage, hyperv1.ConditionSupportedHostedCluster} {
		var msgs []string
		reason := ""
		for _, p := range problems {
			if p.condition == t {
				msgs = append(msgs, p.message)
				if reason == "" {
					reason = p.reason
				}
			}
		}
		c := metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: "AsExpected", Message: "OK", ObservedGeneration: hc.Generation}
		if len(msgs) > 0 {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, strings.Join(msgs, "; ")
		}
		meta.SetStatusCondition(&hc.Status.Conditions, c)
	}
}
