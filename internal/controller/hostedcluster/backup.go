package hostedcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
)

// Reasons of EtcdBackupSucceeded.
const (
	ReasonBackupSucceeded = "BackupSucceeded"
	ReasonBackupFailed    = "BackupFailed"
	ReasonInvalidSchedule = "InvalidSchedule"
)

// DefaultBackupSchedule and DefaultBackupRetention apply when the spec's
// backup leaves them out.
const (
	DefaultBackupSchedule  = "0 */4 * * *"
	DefaultBackupRetention = 6
	// retryFailedBackup is how soon a failed scheduled backup is tried again.
	retryFailedBackup = 5 * time.Minute
)

// scheduledBackup takes the cluster's scheduled backup when it is due,
// deletes archives beyond the retention count, and returns how long until
// the next one is due (0: none is scheduled). A backup that fails turns
// EtcdBackupSucceeded False until one succeeds again.
func (r *Reconciler) scheduledBackup(ctx context.Context, hc *hyperv1.HostedCluster) time.Duration {
	var sch *hyperv1.EtcdBackupSchedule
	if m := hc.Spec.Etcd.Managed; m != nil {
		sch = m.Backup
	}
	if sch == nil || r.Backups == nil {
		meta.RemoveStatusCondition(&hc.Status.Conditions, hyperv1.ConditionEtcdBackupSucceeded)
		return 0
	}
	set := func(status metav1.ConditionStatus, reason, format string, args ...any) {
		meta.SetStatusCondition(&hc.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionEtcdBackupSucceeded, Status: status,
			Reason: reason, Message: fmt.Sprintf(format, args...), ObservedGeneration: hc.Generation})
	}
	spec := sch.Schedule
	if spec == "" {
		spec = DefaultBackupSchedule
	}
	schedule, err := cron.ParseStandard(spec)
	if err != nil {
		set(metav1.ConditionFalse, ReasonInvalidSchedule, "spec.etcd.managed.backup.schedule: %q is not a cron schedule (%v); use e.g. %q or @every 1h", spec, err, DefaultBackupSchedule)
		return 0
	}
	if !meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable) {
		return 30 * time.Second
	}
	last := hc.CreationTimestamp.Time
	if t := hc.Status.LastEtcdBackupTime; t != nil {
		last = t.Time
	}
	c := meta.FindStatusCondition(hc.Status.Conditions, hyperv1.ConditionEtcdBackupSucceeded)
	due := dueAt(schedule, last, c != nil && c.Reason == ReasonBackupFailed)
	now := time.Now()
	if now.Before(due) {
		return due.Sub(now)
	}
	// Named after the slot it is taken for: a backup that runs elsewhere
	// keeps its name until it has finished.
	res, err := r.Backups.Take(ctx, hc, sch.Storage, backup.ScheduledArchiveName(hc, due))
	if errors.Is(err, backup.ErrInProgress) {
		return 2 * time.Second
	}
	hc.Status.LastEtcdBackupTime = &metav1.Time{Time: now}
	next := schedule.Next(time.Now()).Sub(time.Now())
	if err != nil {
		next = min(next, retryFailedBackup)
		lastGood := "none yet"
		if hc.Status.LastSuccessfulEtcdBackupURL != "" {
			lastGood = hc.Status.LastSuccessfulEtcdBackupURL
		}
		set(metav1.ConditionFalse, ReasonBackupFailed, "The backup at %s failed: %v; the last that succeeded: %s", now.UTC().Format(time.RFC3339), err, lastGood)
		ctrl.LoggerFrom(ctx).Error(err, "scheduled etcd backup failed")
		return next
	}
	hc.Status.LastSuccessfulEtcdBackupURL = res.URL
	retention := int(sch.Retention)
	if retention <= 0 {
		retention = DefaultBackupRetention
	}
	kept := fmt.Sprintf("the newest %d scheduled archives are kept", retention)
	if target, err := backup.TargetFor(ctx, r.Client, hc.Namespace, sch.Storage, r.DataDir); err == nil {
		if _, err := backup.Prune(ctx, target, backup.ScheduledPrefix(hc), retention); err != nil {
			kept = fmt.Sprintf("deleting archives beyond the newest %d failed: %v", retention, err)
		}
	}
	set(metav1.ConditionTrue, ReasonBackupSucceeded, "Backed up at %s to %s (%d bytes, etcd revision %d); %s",
		res.Manifest.Time.Format(time.RFC3339), res.URL, res.Size, res.Manifest.Revision, kept)
	return next
}

// dueAt is when the backup after one tried at last is due: the schedule's
// next slot, or retryFailedBackup after a failed one when that is sooner.
func dueAt(schedule cron.Schedule, last time.Time, failed bool) time.Time {
	due := schedule.Next(last)
	if retry := last.Add(retryFailedBackup); failed && retry.Before(due) {
		return retry
	}
	return due
}
