package hostedcluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

// ManagedClusterLabel marks a namespace that belongs to a managed cluster of a
// multicluster hub; hosted clusters must not be created in one.
const ManagedClusterLabel = "cluster.open-cluster-management.io/managedCluster"

// ReservedName is the default namespace of hosted clusters, which the
// documentation forbids as a cluster name.
const ReservedName = "clusters"

// problem is a validation failure: the condition it falsifies and what to do.
type problem struct {
	condition string
	reason    string
	message   string
}

// validate checks what the API server cannot: names against other objects,
// referenced objects, and the release. It returns every problem found.
func (r *Reconciler) validate(ctx context.Context, hc *hyperv1.HostedCluster) ([]problem, *release.Release, error) {
	var out []problem
	bad := func(cond, reason, format string, args ...any) {
		out = append(out, problem{cond, reason, fmt.Sprintf(format, args...)})
	}
	if hc.Name == ReservedName {
		bad(hyperv1.ConditionValidConfiguration, "InvalidName", "metadata.name %q is reserved (it is the default namespace of hosted clusters); delete this HostedCluster and create it with another name", hc.Name)
	}
	cpns := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	if errs := validation.IsDNS1123Label(cpns); len(errs) > 0 {
		bad(hyperv1.ConditionValidConfiguration, "InvalidName", "the control plane namespace %q (<namespace>-<name>) is not a valid namespace name: %s; use a shorter name", cpns, strings.Join(errs, "; "))
	}

	all := &hyperv1.HostedClusterList{}
	if err := r.Client.List(ctx, all); err != nil {
		return nil, nil, err
	}
	for _, other := range all.Items {
		if other.Name != hc.Name || other.Namespace == hc.Namespace {
			continue
		}
		if other.CreationTimestamp.Before(&hc.CreationTimestamp) ||
			(other.CreationTimestamp.Equal(&hc.CreationTimestamp) && other.Namespace < hc.Namespace) {
			bad(hyperv1.ConditionValidConfiguration, "DuplicateName", "a HostedCluster named %q already exists in namespace %q; hosted cluster names must be unique across the management cluster, so delete this one and choose another name", hc.Name, other.Namespace)
		}
	}

	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: hc.Namespace}, ns); err == nil {
		if v, ok := ns.Labels[ManagedClusterLabel]; ok {
			bad(hyperv1.ConditionSupportedHostedCluster, "ManagedClusterNamespace", "namespace %q belongs to managed cluster %q; create the HostedCluster in another namespace (e.g. clusters)", hc.Namespace, v)
		}
	}

	if hc.Spec.Platform.Type == hyperv1.AgentPlatform && hc.Spec.Platform.Agent != nil {
		agentNS := hc.Spec.Platform.Agent.AgentNamespace
		if err := r.Client.Get(ctx, client.ObjectKey{Name: agentNS}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
			bad(hyperv1.ConditionValidConfiguration, "AgentNamespaceNotFound", "spec.platform.agent.agentNamespace %q does not exist; create it (kubectl create namespace %s) or name an existing one", agentNS, agentNS)
		} else if err != nil {
			return nil, nil, err
		}
	}

	ps := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hc.Namespace, Name: hc.Spec.PullSecret.Name}, ps); apierrors.IsNotFound(err) {
		bad(hyperv1.ConditionValidConfiguration, "PullSecretNotFound", "spec.pullSecret: secret %q does not exist in namespace %q; create it with key .dockerconfigjson", hc.Spec.PullSecret.Name, hc.Namespace)
	} else if err != nil {
		return nil, nil, err
	} else if len(ps.Data[corev1.DockerConfigJsonKey]) == 0 {
		bad(hyperv1.ConditionValidConfiguration, "InvalidPullSecret", "spec.pullSecret: secret %q has no key .dockerconfigjson", hc.Spec.PullSecret.Name)
	}

	if _, err := hosted.ResolveStorageClass(ctx, r.Client, hosted.StorageClassName(hc.Spec.Etcd)); err != nil {
		bad(hyperv1.ConditionValidConfiguration, "StorageClassNotFound", "%s", err.Error())
	}

	switch t := hc.Annotations[hyperv1.TopologyAnnotation]; t {
	case "", hyperv1.DedicatedRequestServingTopology, hyperv1.DedicatedTopology:
	default:
		bad(hyperv1.ConditionValidConfiguration, "UnknownTopology", "metadata.annotations[%s]: %q is not a topology; use %q or %q, or leave it unset to share nodes",
			hyperv1.TopologyAnnotation, t, hyperv1.DedicatedRequestServingTopology, hyperv1.DedicatedTopology)
	}
	if img := hc.Annotations[hyperv1.ControlPlaneImageAnnotation]; img != "" {
		if _, err := name.ParseReference(img, name.StrictValidation); err != nil {
			bad(hyperv1.ConditionValidConfiguration, "InvalidImage", "metadata.annotations[%s]: %q is not an image reference (%v); use <registry>/<repository>@sha256:<digest> or :<tag>",
				hyperv1.ControlPlaneImageAnnotation, img, err)
		}
	}
	for _, s := range hc.Spec.Services {
		if r.SupportedPublishing != nil && !r.SupportedPublishing[s.Type] {
			bad(hyperv1.ConditionValidConfiguration, "UnsupportedPublishingStrategy", "spec.services[%s]: publishing strategy %s is not supported by this management cluster's runtime; use NodePort", s.Service, s.Type)
		}
	}
	if !hasService(hc, hyperv1.APIServer) {
		bad(hyperv1.ConditionValidConfiguration, "MissingService", "spec.services must publish APIServer (e.g. type NodePort with nodePort.address set to the API address)")
	}

	if se := hc.Spec.SecretEncryption; se != nil && se.AESCBC != nil {
		keys := []struct{ field, name string }{{"activeKey", se.AESCBC.ActiveKey.Name}}
		if b := se.AESCBC.BackupKey; b != nil && b.Name != "" {
			keys = append(keys, struct{ field, name string }{"backupKey", b.Name})
		}
		for _, k := range keys {
			s := &corev1.Secret{}
			if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hc.Namespace, Name: k.name}, s); apierrors.IsNotFound(err) {
				bad(hyperv1.ConditionValidConfiguration, ReasonInvalidSecretEncryption, "spec.secretEncryption.aescbc.%s: secret %q does not exist in namespace %q; create it with key %q holding 32 random bytes (kubectl create secret generic %s --from-file=key=<(head -c 32 /dev/urandom))",
					k.field, k.name, hc.Namespace, hyperv1.AESCBCKeySecretKey, k.name)
			} else if err != nil {
				return nil, nil, err
			} else if err := hosted.CheckEncryptionKey(s.Data[hyperv1.AESCBCKeySecretKey]); err != nil {
				bad(hyperv1.ConditionValidConfiguration, ReasonInvalidSecretEncryption, "spec.secretEncryption.aescbc.%s: secret %q %v", k.field, k.name, err)
			}
		}
	}

	if m := hc.Spec.Etcd.Managed; m != nil && m.Backup != nil && m.Backup.Schedule != "" {
		if _, err := cron.ParseStandard(m.Backup.Schedule); err != nil {
			bad(hyperv1.ConditionValidConfiguration, ReasonInvalidSchedule, "spec.etcd.managed.backup.schedule: %q is not a cron schedule (%v); use e.g. %q or @every 1h",
				m.Backup.Schedule, err, DefaultBackupSchedule)
		}
	}

	rel, cond := hosted.ReleaseImage(r.Releases, hc.Spec.Release.Image, hc.Generation)
	if rel == nil {
		bad(cond.Type, cond.Reason, "%s", cond.Message)
	} else if err := hosted.CheckChange(hc, rel.Name, hc.Spec.Release.Image); err != nil {
		bad(hyperv1.ConditionValidReleaseImage, err.Reason, "spec.release.image: %s; to force it, annotate the HostedCluster %s=%s",
			err.Message, hyperv1.ForceUpgradeToAnnotation, hc.Spec.Release.Image)
	}
	return out, rel, nil
}

// releaseRefused reports whether the problems include one with spec.release:
// the control plane keeps the release it has.
// ReasonInvalidSecretEncryption: a key spec.secretEncryption names is
// missing or not an AES key.
const ReasonInvalidSecretEncryption = "InvalidSecretEncryption"

// encryptionRefused reports whether the problems include one with
// spec.secretEncryption: the control plane keeps the keys it has.
func encryptionRefused(problems []problem) bool {
	for _, p := range problems {
		if p.reason == ReasonInvalidSecretEncryption {
			return true
		}
	}
	return false
}

func releaseRefused(problems []problem) bool {
	for _, p := range problems {
		if p.condition == hyperv1.ConditionValidReleaseImage {
			return true
		}
	}
	return false
}

func hasService(hc *hyperv1.HostedCluster, svc hyperv1.ServiceType) bool {
	for _, s := range hc.Spec.Services {
		if s.Service == svc {
			return true
		}
	}
	return false
}
