package hostedcontrolplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// Reasons of the SecretsEncrypted condition.
const (
	ReasonRotatingKey   = "RotatingKey"
	ReasonInvalidKey    = "InvalidKey"
	ReasonRewriteFailed = "RewriteFailed"
)

// ensureEncryption writes the API servers' encryption configuration for the
// next step of storing every Secret with the active key, rewrites the hosted
// cluster's Secrets once every API server writes with it, and returns the
// configuration's digest. observed is the control plane as the runtime last
// saw it (it ran the configuration this Secret held then).
func (r *Reconciler) ensureEncryption(ctx context.Context, hcp *hyperv1.HostedControlPlane, secrets map[string]*corev1.Secret,
	observed []hyperv1.ComponentStatus) (string, error) {
	gen := hcp.Generation
	setCond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionSecretsEncrypted, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	var current *controlplane.Encryption
	existing := &corev1.Secret{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: hcp.Namespace, Name: controlplane.SecretEncryptionConfig}, existing); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", err
	default:
		if current, err = controlplane.ParseEncryption(existing); err != nil {
			return "", err
		}
		secrets[controlplane.SecretEncryptionConfig] = existing
	}
	active, backup, err := r.encryptionKeys(ctx, hcp, secrets)
	if err != nil {
		setCond(metav1.ConditionFalse, ReasonInvalidKey, err.Error()+"; Secrets stay encrypted as they are")
		if current == nil {
			return "", err
		}
		return digest(current.Config()), nil
	}

	replicas, serving, rolledOut := 0, false, false
	for _, c := range observed {
		if c.Name == controlplane.KubeAPIServer {
			replicas = int(c.Replicas)
			serving = c.ReadyReplicas > 0
			rolledOut = c.ReadyReplicas == c.Replicas && c.UpdatedReplicas == c.Replicas
		}
	}
	if replicas == 0 {
		quorum, _ := hosted.Replicas(hcp.Spec.ControllerAvailabilityPolicy)
		replicas = quorum
	}
	next, migrate := controlplane.NextEncryption(current, active, backup, replicas, serving, rolledOut)
	var rewriteErr error
	if migrate {
		var n int
		if n, rewriteErr = r.rewriteSecrets(ctx, hcp, secrets); rewriteErr == nil {
			ctrl.LoggerFrom(ctx).Info("every Secret rewritten with the active encryption key", "key", active.Name, "secrets", n)
			next.Migrated = active.Name
			next, _ = controlplane.NextEncryption(&next, active, backup, replicas, serving, rolledOut)
		}
	}
	config := next.Secret(hcp.Namespace)
	if err := r.applySecret(ctx, hcp, config); err != nil {
		return "", err
	}
	secrets[config.Name] = config
	switch {
	case rewriteErr != nil:
		setCond(metav1.ConditionFalse, ReasonRewriteFailed, fmt.Sprintf("rewriting the hosted cluster's Secrets with key %s: %v; retrying", active.Name, rewriteErr))
	case next.Migrated == active.Name && next.Write == active.Name:
		setCond(metav1.ConditionTrue, ReasonAsExpected, fmt.Sprintf("Every Secret is stored encrypted (aescbc) with key %s", active.Name))
	case next.Write != active.Name:
		setCond(metav1.ConditionFalse, ReasonRotatingKey, fmt.Sprintf("The API servers are learning key %s before any writes with it", active.Name))
	default:
		setCond(metav1.ConditionFalse, ReasonRotatingKey, fmt.Sprintf("Rewriting every Secret with key %s once every API server writes with it", active.Name))
	}
	return digest(next.Config()), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// encryptionKeys are the active and backup keys the spec names (Secrets in
// the control plane namespace), or the key hcp made when it names none.
func (r *Reconciler) encryptionKeys(ctx context.Context, hcp *hyperv1.HostedControlPlane, secrets map[string]*corev1.Secret) (controlplane.EncryptionKey, *controlplane.EncryptionKey, error) {
	se := hcp.Spec.SecretEncryption
	if se == nil || se.AESCBC == nil {
		return controlplane.NewEncryptionKey(secrets[controlplane.SecretEncryptionKey].Data[controlplane.KeyEncryptionKey]), nil, nil
	}
	read := func(field, name string) (controlplane.EncryptionKey, error) {
		s := &corev1.Secret{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: hcp.Namespace, Name: name}, s); err != nil {
			return controlplane.EncryptionKey{}, fmt.Errorf("spec.secretEncryption.aescbc.%s: secret %q: %w", field, name, err)
		}
		if err := hosted.CheckEncryptionKey(s.Data[hyperv1.AESCBCKeySecretKey]); err != nil {
			return controlplane.EncryptionKey{}, fmt.Errorf("spec.secretEncryption.aescbc.%s: secret %q %v", field, name, err)
		}
		return controlplane.NewEncryptionKey(s.Data[hyperv1.AESCBCKeySecretKey]), nil
	}
	active, err := read("activeKey", se.AESCBC.ActiveKey.Name)
	if err != nil {
		return active, nil, err
	}
	if se.AESCBC.BackupKey == nil || se.AESCBC.BackupKey.Name == "" {
		return active, nil, nil
	}
	backup, err := read("backupKey", se.AESCBC.BackupKey.Name)
	if err != nil {
		return active, nil, err
	}
	return active, &backup, nil
}

// rewriteSecrets writes every Secret of the hosted cluster back unchanged:
// the API server stores each one again with the key it writes with. A Secret
// changed or deleted meanwhile was written anyway.
func (r *Reconciler) rewriteSecrets(ctx context.Context, hcp *hyperv1.HostedControlPlane, secrets map[string]*corev1.Secret) (int, error) {
	kc := secrets[controlplane.SecretLocalhostKubecfg]
	if kc == nil {
		return 0, fmt.Errorf("secret %s is missing", controlplane.SecretLocalhostKubecfg)
	}
	gc, err := r.guests.Get(hcp.Namespace, kc.Data[controlplane.KeyKubeconfig])
	if err != nil {
		return 0, err
	}
	n := 0
	list := &corev1.SecretList{}
	for cont := ""; ; {
		if err := gc.Client.List(ctx, list, client.Limit(500), client.Continue(cont)); err != nil {
			return n, err
		}
		for i := range list.Items {
			if err := gc.Client.Update(ctx, &list.Items[i]); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return n, fmt.Errorf("secret %s/%s: %w", list.Items[i].Namespace, list.Items[i].Name, err)
			}
			n++
		}
		if cont = list.Continue; cont == "" {
			return n, nil
		}
	}
}
