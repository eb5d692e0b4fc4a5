package kubernetes

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

// A backup Job runs once, restricted as the control plane's pods are and
// placed with them, with its input and the etcd client certificate mounted
// and the S3 credentials from its own Secret.
func TestBackupJob(t *testing.T) {
	in := Input{ControlPlane: &controlplane.ControlPlane{Namespace: "clusters-example", Placement: controlplane.Placement{
		NodeSelector: map[string]string{"node-role.kubernetes.io/infra": ""}}}, UID: UIDFor("clusters-example", nil), DedicatedNodes: true}
	job := BackupJob(in, "etcd-backup-0123456789", "registry.hcp.test/hcp/etcd-backup@sha256:0123", "clusters-example-20261203-010203.tar.gz")
	spec := job.Spec.Template.Spec
	if *job.Spec.BackoffLimit != 0 || spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.ActiveDeadlineSeconds == nil {
		t.Errorf("the Job may run more than once or forever: %+v", job.Spec)
	}
	c := spec.Containers[0]
	if c.Image != "registry.hcp.test/hcp/etcd-backup@sha256:0123" || !slices.Equal(c.Command, []string{"/usr/local/bin/hcp-operator", "etcd-backup"}) {
		t.Errorf("container runs %s %v", c.Image, c.Command)
	}
	if cs := c.SecurityContext; cs == nil || !*cs.ReadOnlyRootFilesystem || *cs.AllowPrivilegeEscalation || *spec.SecurityContext.RunAsUser != in.UID {
		t.Errorf("not restricted: %+v %+v", cs, spec.SecurityContext)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["input"] != backup.JobInputDir || mounts["etcd-client"] != backup.JobEtcdClientDir || mounts["work"] != backup.JobWorkDir {
		t.Errorf("mounts %v", mounts)
	}
	for _, v := range spec.Volumes {
		if v.Name == "etcd-client" && v.Secret.SecretName != controlplane.SecretEtcdClient || v.Name == "input" && v.Secret.SecretName != job.Name {
			t.Errorf("volume %s from %+v", v.Name, v.Secret)
		}
	}
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom.SecretKeyRef.Name != job.Name {
			t.Errorf("env %s not from the Job's Secret: %+v", e.Name, e)
		}
	}
	if len(c.Env) != 2 {
		t.Errorf("env %+v, want the two S3 credentials", c.Env)
	}
	if spec.NodeSelector["node-role.kubernetes.io/infra"] != "" || len(spec.Tolerations) < 2 ||
		spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Errorf("not placed as the control plane: %+v %+v", spec.NodeSelector, spec.Tolerations)
	}
	if job.Labels[AppLabel] != BackupApp || job.Spec.Template.Labels[AppLabel] != BackupApp {
		t.Errorf("labels %v %v", job.Labels, job.Spec.Template.Labels)
	}
}

// A control plane created from a backup: etcd's pods restore their member
// in an init container that gets the member's own arguments; others have
// none.
func TestRestoreInitContainer(t *testing.T) {
	hcp := &hyperv1.HostedControlPlane{}
	hcp.Namespace, hcp.Name = "clusters-example", "example"
	hcp.Spec.ControllerAvailabilityPolicy = hyperv1.HighlyAvailable
	url := "http://192.0.2.1:8333/mgmt/a.tar.gz?X-Amz-Signature=00"
	cp, err := controlplane.Build(controlplane.Input{HCP: hcp, Release: &release.Release{Name: "1.37.2"},
		Network: PodsIn("clusters-example"), StorageClass: "standard", RestoreSnapshot: url})
	if err != nil {
		t.Fatal(err)
	}
	spec := func(c controlplane.Component) corev1.PodSpec {
		p, err := podTemplate(Input{ControlPlane: cp, Image: "cp", BackupImage: "bk", UID: 1}, c)
		if err != nil {
			t.Fatal(err)
		}
		return p.Spec
	}
	for _, c := range cp.Components {
		s := spec(c)
		if c.Name != controlplane.Etcd {
			if len(s.InitContainers) != 0 {
				t.Errorf("%s has init containers", c.Name)
			}
			continue
		}
		if len(s.InitContainers) != 1 {
			t.Fatalf("etcd init containers: %+v", s.InitContainers)
		}
		ic := s.InitContainers[0]
		if ic.Image != "bk" || !slices.Contains(ic.Command, "--url="+url) || !slices.Equal(ic.Args, s.Containers[0].Args) {
			t.Errorf("restore container %s %v %v, want the member's arguments %v", ic.Image, ic.Command, ic.Args, s.Containers[0].Args)
		}
		if !slices.ContainsFunc(ic.Args, func(a string) bool { return strings.HasPrefix(a, "--data-dir=") }) {
			t.Errorf("restore container is not told the data directory: %v", ic.Args)
		}
		if !slices.Equal(ic.VolumeMounts, s.Containers[0].VolumeMounts) || len(ic.Env) == 0 {
			t.Errorf("restore container sees other volumes or environment than etcd")
		}
	}
}
