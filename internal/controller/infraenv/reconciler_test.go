package infraenv

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/infra"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

// An InfraEnv gets download URLs whose tokens the service accepts, or the
// reason it cannot have them.
func TestInfraEnvArtifacts(t *testing.T) {
	signer, err := infra.NewSigner([]byte(strings.Repeat("k", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	artifacts := &infra.Artifacts{ServiceURL: "https://192.0.2.1:8088", Signer: signer, TokenTTL: time.Hour}
	env.Run(t, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Artifacts: artifacts}).SetupWithManager(mgr)
	})
	ns := env.Namespace(t)
	env.Create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}, Data: map[string][]byte{"x": nil}})
	for _, tc := range []struct {
		name    string
		spec    agentv1.InfraEnvSpec
		problem string
	}{
		{"good", agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "pull"}}, ""},
		{"missing-pull-secret", agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "nosuch"}}, `secret "nosuch" does not exist`},
		{"empty-pull-secret", agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "empty"}}, "has no key .dockerconfigjson"},
		{"bad-proxy", agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "pull"},
			Proxy: &agentv1.Proxy{HTTPProxy: "ftp://proxy"}}, "spec.proxy.httpProxy"},
		{"bad-override", agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: "pull"},
			IgnitionConfigOverride: `{"ignition":{"version":"9.9.9"}}`}, "spec.ignitionConfigOverride"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ie := &agentv1.InfraEnv{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}, Spec: tc.spec}
			env.Create(t, ie)
			got := &agentv1.InfraEnv{}
			env.Eventually(t, "ImageCreated", func(ctx context.Context) error {
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ie), got); err != nil {
					return err
				}
				if meta.FindStatusCondition(got.Status.Conditions, agentv1.ImageCreatedCondition) == nil {
					return fmt.Errorf("no ImageCreated condition yet")
				}
				return nil
			})
			c := meta.FindStatusCondition(got.Status.Conditions, agentv1.ImageCreatedCondition)
			if got.Status.AgentLabelSelector.MatchLabels[agentv1.InfraEnvNameLabel] != tc.name {
				t.Errorf("agent selector %v", got.Status.AgentLabelSelector)
			}
			if tc.problem != "" {
				if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, tc.problem) {
					t.Errorf("ImageCreated %s: %s; want False mentioning %q", c.Status, c.Message, tc.problem)
				}
				if got.Status.BootArtifacts.ScriptURL != "" {
					t.Errorf("an InfraEnv with a problem has a script URL")
				}
				return
			}
			if c.Status != metav1.ConditionTrue {
				t.Fatalf("ImageCreated %s: %s", c.Status, c.Message)
			}
			u, err := url.Parse(got.Status.BootArtifacts.ScriptURL)
			if err != nil || !strings.HasPrefix(got.Status.BootArtifacts.ScriptURL, artifacts.ServiceURL) {
				t.Fatalf("script URL %q", got.Status.BootArtifacts.ScriptURL)
			}
			if err := signer.Verify(u.Query().Get("api_key"), string(got.UID)); err != nil {
				t.Errorf("the script URL's token is refused: %v", err)
			}
			if got.Status.BootArtifacts.DiscoveryIgnitionURL == "" {
				t.Error("no discovery Ignition URL")
			}
		})
	}
}
