// Package etcdbackup reconciles HCPEtcdBackups: each takes one backup of a
// hosted cluster (internal/backup) and reports where the archive is.
package etcdbackup

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
)

// Reasons of BackupCompleted.
const (
	ReasonBackupSucceeded          = "BackupSucceeded"
	ReasonBackupFailed             = "BackupFailed"
	ReasonHostedClusterNotFound    = "HostedClusterNotFound"
	ReasonWaitingForControlPlane   = "WaitingForControlPlane"
	ReasonBackupInProgress         = "BackupInProgress"
	ReasonControlPlaneNotAvailable = "ControlPlaneNotAvailable"
)

// waitForControlPlane is how long a backup waits for its cluster to be
// Available before it fails.
const waitForControlPlane = 5 * time.Minute

// Reconciler reconciles HCPEtcdBackups.
type Reconciler struct {
	Client client.Client
	// Backups takes the backups: in this process (the local runtime) or as
	// Jobs (the Kubernetes runtime).
	Backups backup.Taker
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&hyperv1.HCPEtcdBackup{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(r)
}

// Reconcile takes the backup once; a finished one (BackupCompleted True or
// False) is never taken again.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	b := &hyperv1.HCPEtcdBackup{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c := meta.FindStatusCondition(b.Status.Conditions, hyperv1.ConditionBackupCompleted); c != nil && c.Status != metav1.ConditionUnknown {
		return ctrl.Result{}, nil
	}
	before := b.DeepCopy()
	defer func() {
		if err := r.Client.Status().Patch(ctx, b, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, fmt.Errorf("updating status: %w", err))
		}
	}()
	set := func(status metav1.ConditionStatus, reason, format string, args ...any) {
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionBackupCompleted, Status: status,
			Reason: reason, Message: fmt.Sprintf(format, args...), ObservedGeneration: b.Generation})
	}

	hc := &hyperv1.HostedCluster{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.Spec.HostedCluster.Name}, hc); apierrors.IsNotFound(err) {
		set(metav1.ConditionFalse, ReasonHostedClusterNotFound, "spec.hostedCluster: HostedCluster %q does not exist in namespace %q", b.Spec.HostedCluster.Name, b.Namespace)
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if !meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable) {
		if time.Since(b.CreationTimestamp.Time) > waitForControlPlane {
			set(metav1.ConditionFalse, ReasonControlPlaneNotAvailable, "HostedCluster %s was not Available within %s; create another HCPEtcdBackup once it is", hc.Name, waitForControlPlane)
			return ctrl.Result{}, nil
		}
		set(metav1.ConditionUnknown, ReasonWaitingForControlPlane, "Waiting for HostedCluster %s to be Available", hc.Name)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	res, err := r.Backups.Take(ctx, hc, b.Spec.Storage, backup.ArchiveName(hc, b.CreationTimestamp.Time))
	if errors.Is(err, backup.ErrInProgress) {
		set(metav1.ConditionUnknown, ReasonBackupInProgress, "Taking the backup")
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if err != nil {
		set(metav1.ConditionFalse, ReasonBackupFailed, "%v", err)
		return ctrl.Result{}, nil
	}
	b.Status.URL, b.Status.Size, b.Status.SHA256, b.Status.Revision = res.URL, res.Size, res.SHA256, res.Manifest.Revision
	b.Status.CompletionTime = &metav1.Time{Time: res.Manifest.Time}
	set(metav1.ConditionTrue, ReasonBackupSucceeded, "Archive of etcd revision %d (%d keys, %d bytes) written to %s", res.Manifest.Revision, res.Manifest.Keys, res.Size, res.URL)
	ctrl.LoggerFrom(ctx).Info("backup written", "url", res.URL, "bytes", res.Size, "revision", res.Manifest.Revision)
	return ctrl.Result{}, nil
}
