// Package infraenv reconciles InfraEnvs: it publishes their discovery artifacts'
// download URLs and the selector of their Agents.
package infraenv

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/infra"
)

// Reconciler reconciles InfraEnvs.
type Reconciler struct {
	Client    client.Client
	Artifacts *infra.Artifacts
	Now       func() time.Time
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).For(&agentv1.InfraEnv{}).Complete(r)
}

// Reconcile publishes one InfraEnv's artifacts.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ie := &agentv1.InfraEnv{}
	if err := r.Client.Get(ctx, req.NamespacedName, ie); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ie.DeepCopy()
	ie.Status.AgentLabelSelector = metav1.LabelSelector{MatchLabels: map[string]string{agentv1.InfraEnvNameLabel: ie.Name}}
	problem := r.check(ctx, ie)
	result := ctrl.Result{}
	if problem != "" {
		meta.SetStatusCondition(&ie.Status.Conditions, metav1.Condition{Type: agentv1.ImageCreatedCondition, Status: metav1.ConditionFalse,
			Reason: "ImageCreationError", Message: problem, ObservedGeneration: ie.Generation})
		ie.Status.BootArtifacts = agentv1.BootArtifacts{}
		result.RequeueAfter = 15 * time.Second
	} else {
		// URLs carry a token; they are renewed at half its lifetime.
		renew := ie.Status.CreatedTime == nil || r.Now().Sub(ie.Status.CreatedTime.Time) > r.Artifacts.TokenTTL/2 ||
			ie.Status.BootArtifacts.ScriptURL == "" || !meta.IsStatusConditionTrue(ie.Status.Conditions, agentv1.ImageCreatedCondition)
		if renew {
			now := metav1.NewTime(r.Now())
			ie.Status.CreatedTime = &now
			ie.Status.BootArtifacts = agentv1.BootArtifacts{
				DiscoveryIgnitionURL: r.Artifacts.URL(ie, infra.FileIgnition),
				ScriptURL:            r.Artifacts.URL(ie, infra.FileScript),
			}
		}
		meta.SetStatusCondition(&ie.Status.Conditions, metav1.Condition{Type: agentv1.ImageCreatedCondition, Status: metav1.ConditionTrue,
			Reason: "ImageCreated", Message: "Discovery artifacts are available: run curl -fsSk '<scriptURL>' | sh on a Linux host, or boot a CoreOS host with the discovery Ignition", ObservedGeneration: ie.Generation})
		result.RequeueAfter = r.Artifacts.TokenTTL / 2
	}
	if err := r.Client.Status().Patch(ctx, ie, client.MergeFrom(before)); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// check returns what keeps the artifacts from being made, or "".
func (r *Reconciler) check(ctx context.Context, ie *agentv1.InfraEnv) string {
	if ie.Spec.PullSecretRef == nil || ie.Spec.PullSecretRef.Name == "" {
		return "spec.pullSecretRef is required"
	}
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ie.Namespace, Name: ie.Spec.PullSecretRef.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("spec.pullSecretRef: secret %q does not exist in namespace %s", ie.Spec.PullSecretRef.Name, ie.Namespace)
		}
		return err.Error()
	}
	if len(s.Data[corev1.DockerConfigJsonKey]) == 0 {
		return fmt.Sprintf("spec.pullSecretRef: secret %q has no key .dockerconfigjson", s.Name)
	}
	if arch := infra.GOARCH(ie.Spec.CpuArchitecture); arch != runtime.GOARCH {
		return fmt.Sprintf("spec.cpuArchitecture %s: this service has an hcp-agent for %s only", ie.Spec.CpuArchitecture, runtime.GOARCH)
	}
	if p := ie.Spec.Proxy; p != nil {
		for field, v := range map[string]string{"httpProxy": p.HTTPProxy, "httpsProxy": p.HTTPSProxy} {
			if v == "" {
				continue
			}
			if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return fmt.Sprintf("spec.proxy.%s %q: must be an http:// or https:// URL", field, v)
			}
		}
	}
	if o := ie.Spec.IgnitionConfigOverride; o != "" {
		if _, rpt, err := ignition.Parse([]byte(o)); err != nil {
			return fmt.Sprintf("spec.ignitionConfigOverride is not a valid Ignition 3.4 config: %v %s", err, rpt.String())
		}
	}
	return ""
}
