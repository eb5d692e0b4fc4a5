package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/release"
)

// BackupApp labels the pods of backup Jobs.
const BackupApp = "etcd-backup"

// backupDeadline bounds a backup Job's run.
const backupDeadline = 10 * time.Minute

// Backups takes hosted clusters' backups as Jobs in their control plane
// namespaces: only the namespace's own pods reach etcd (its NetworkPolicy).
// The Job's pod runs hcp-operator etcd-backup from the backup image, writes
// the same archive as a local backup to S3 and reports the Result as its
// termination message.
type Backups struct {
	Runtime  *Runtime
	Client   client.Client
	Releases release.Store
}

// Take starts the backup's Job, or reports on the one started before:
// backup.ErrInProgress until it has finished. A finished Job is deleted
// once its result is read.
func (b Backups) Take(ctx context.Context, hc *hyperv1.HostedCluster, st hyperv1.EtcdBackupStorage, name string) (*backup.Result, error) {
	if st.Type != hyperv1.S3BackupStorage || st.S3 == nil {
		return nil, fmt.Errorf("storage.type %s: control planes on the Kubernetes runtime back up to S3 only (the backup runs as a Job in the control plane namespace, which sees no directory of the management plane)", st.Type)
	}
	cpns := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	sum := sha256.Sum256([]byte(name))
	jobName := "etcd-backup-" + hex.EncodeToString(sum[:])[:10]
	job := &batchv1.Job{}
	err := b.Runtime.opts.Reader.Get(ctx, client.ObjectKey{Namespace: cpns, Name: jobName}, job)
	if apierrors.IsNotFound(err) {
		return nil, b.start(ctx, hc, st, cpns, jobName, name)
	}
	if err != nil {
		return nil, err
	}
	done, failed := false, false
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			done = done || c.Type == batchv1.JobComplete
			failed = failed || c.Type == batchv1.JobFailed
		}
	}
	if !done && !failed {
		return nil, backup.ErrInProgress
	}
	msg, err := b.message(ctx, job)
	if err != nil {
		return nil, err
	}
	if derr := b.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); derr != nil && !apierrors.IsNotFound(derr) {
		return nil, derr
	}
	if failed {
		if msg == "" {
			msg = "the Job failed without saying why: " + jobFailure(job)
		}
		// The pod writes "Error: <why>"; the reason reads as the local
		// runtime's does.
		return nil, errors.New(strings.TrimPrefix(strings.TrimSpace(msg), "Error: "))
	}
	res := &backup.Result{}
	if err := json.Unmarshal([]byte(msg), res); err != nil || res.URL == "" {
		return nil, fmt.Errorf("the backup Job %s/%s reported no archive: %q", cpns, jobName, msg)
	}
	return res, nil
}

// start creates the Job and, owned by it, the Secret with its input and the
// S3 credentials.
func (b Backups) start(ctx context.Context, hc *hyperv1.HostedCluster, st hyperv1.EtcdBackupStorage, cpns, jobName, name string) error {
	creds := &corev1.Secret{}
	if err := b.Client.Get(ctx, client.ObjectKey{Namespace: hc.Namespace, Name: st.S3.Credentials.Name}, creds); err != nil {
		return fmt.Errorf("storage.s3.credentials: secret %s/%s: %w", hc.Namespace, st.S3.Credentials.Name, err)
	}
	id, key := creds.Data[hyperv1.S3AccessKeyIDKey], creds.Data[hyperv1.S3SecretAccessKeyKey]
	if len(id) == 0 || len(key) == 0 {
		return fmt.Errorf("storage.s3.credentials: secret %s/%s needs keys %s and %s", hc.Namespace, st.S3.Credentials.Name, hyperv1.S3AccessKeyIDKey, hyperv1.S3SecretAccessKeyKey)
	}
	src, err := backup.SourceFor(ctx, b.Client, b.Releases, b.Runtime.Network, hc)
	if err != nil {
		return err
	}
	hcp := &hyperv1.HostedControlPlane{}
	if err := b.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Name}, hcp); err != nil {
		return err
	}
	rel, err := b.Releases.Resolve(hcp.Spec.ReleaseImage)
	if err != nil {
		return err
	}
	image, err := b.Runtime.BackupImage(rel)
	if err != nil {
		return err
	}
	input, err := json.Marshal(backup.JobInput{Name: name, Endpoints: src.Endpoints, Manifest: src.Manifest, Secrets: src.Secrets,
		S3: backup.JobS3{Endpoint: st.S3.Endpoint, Region: st.S3.Region, Bucket: st.S3.Bucket, Prefix: st.S3.Prefix}})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{}
	if err := b.Runtime.opts.Reader.Get(ctx, client.ObjectKey{Name: cpns}, ns); err != nil {
		return err
	}
	dedicated, err := b.Runtime.dedicatedNodes(ctx)
	if err != nil {
		return err
	}
	in := Input{ControlPlane: &controlplane.ControlPlane{Namespace: cpns, Placement: controlplane.Placement{
		NodeSelector: hcp.Spec.NodeSelector, Tolerations: hcp.Spec.Tolerations}}, UID: UIDFor(cpns, ns.Annotations), DedicatedNodes: dedicated}
	job := BackupJob(in, jobName, image, name)
	if err := b.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the backup Job: %w", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cpns, Name: jobName, Labels: job.Labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}}},
		Data: map[string][]byte{backup.JobInputFile: input, "AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": key}}
	if err := b.Client.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the backup Job's input: %w", err)
	}
	return backup.ErrInProgress
}

// BackupJob is the Job that writes archive name: one pod, never restarted,
// placed as the control plane's pods are, that reaches etcd from inside the
// namespace. Its input Secret has the Job's name.
func BackupJob(in Input, jobName, image, archive string) *batchv1.Job {
	c := controlplane.Component{Name: BackupApp}
	spec := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext:              podSecurity(in.UID),
		Containers: []corev1.Container{{
			Name:    BackupApp,
			Image:   image,
			Command: []string{"/usr/local/bin/hcp-operator", "etcd-backup"},
			Env:     []corev1.EnvVar{secretEnv("AWS_ACCESS_KEY_ID", jobName), secretEnv("AWS_SECRET_ACCESS_KEY", jobName)},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "input", MountPath: backup.JobInputDir, ReadOnly: true},
				{Name: "etcd-client", MountPath: backup.JobEtcdClientDir, ReadOnly: true},
				{Name: "work", MountPath: backup.JobWorkDir},
			},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext:          containerSecurity(),
		}},
		Volumes: []corev1.Volume{
			{Name: "input", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: jobName, DefaultMode: ptr.To(int32(0o440)),
				Items: []corev1.KeyToPath{{Key: backup.JobInputFile, Path: backup.JobInputFile}}}}},
			{Name: "etcd-client", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: controlplane.SecretEtcdClient, DefaultMode: ptr.To(int32(0o440))}}},
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	place(in, c, &spec)
	m := meta(in, jobName, BackupApp)
	m.Annotations = map[string]string{"hcp.dev/archive": archive}
	return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: m,
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To(int32(0)),
			ActiveDeadlineSeconds: ptr.To(int64(backupDeadline / time.Second)),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{AppLabel: BackupApp,
				hyperv1.HostedControlPlaneNamespaceLabel: in.ControlPlane.Namespace}}, Spec: spec},
		}}
}

func secretEnv(key, secret string) corev1.EnvVar {
	return corev1.EnvVar{Name: key, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
}

// message is the termination message of the Job's pod ("" when none).
func (b Backups) message(ctx context.Context, job *batchv1.Job) (string, error) {
	pods := &corev1.PodList{}
	if err := b.Runtime.opts.Reader.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			if t := s.State.Terminated; t != nil && t.Message != "" {
				return t.Message, nil
			}
		}
	}
	return "", nil
}

func jobFailure(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed {
			return c.Reason + ": " + c.Message
		}
	}
	return "unknown"
}

// BackupImage is the release's backup image in the runtime's repository,
// by digest: built from the operator's own program (images.OperatorProgram).
func (r *Runtime) BackupImage(rel *release.Release) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if img := r.backupImages[rel.Name]; img != "" {
		return img, nil
	}
	prog := images.OperatorProgram()
	if prog == "" {
		return "", fmt.Errorf("the backup image needs the hcp-operator program beside this one")
	}
	d, err := images.Digest(images.EtcdBackupSpec(rel, prog))
	if err != nil {
		return "", fmt.Errorf("the backup image: %w", err)
	}
	img := r.repository() + "/" + images.EtcdBackupImage + "@" + d.String()
	r.backupImages[rel.Name] = img
	return img, nil
}
