package hostedcontrolplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/hcp-dev/hcp/api/config/v1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/runtime/local"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

// start runs the HostedControlPlane controller with the local runtime, whose
// control planes live under the returned directory.
func start(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "controlplanes")
	changes := make(chan string, 64)
	var rt *local.Runtime
	env.Run(t, func(mgr ctrl.Manager) error {
		var err error
		rt, err = local.New(local.Options{Dir: dir, Client: mgr.GetAPIReader(), Log: mgr.GetLogger().WithName("runtime"),
			StopOnClose: true, BalancerCommand: []string{filepath.Join(env.Bin, "hcp"), "balance"},
			Notify: func(ns string) {
				select {
				case changes <- ns:
				default:
				}
			}})
		if err != nil {
			return err
		}
		return (&Reconciler{Client: mgr.GetClient(), Runtime: rt, Releases: env.Releases, Changes: changes}).SetupWithManager(mgr)
	})
	t.Cleanup(func() { rt.Close() })
	return dir
}

// plane is a SingleReplica HostedControlPlane in ns as the HostedCluster
// controller makes it, with its pull secret.
func plane(t *testing.T, ns string) *hyperv1.HostedControlPlane {
	env.Create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: hosted.PullSecretName},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	publish := func(svc hyperv1.ServiceType) hyperv1.ServicePublishingStrategyMapping {
		return hyperv1.ServicePublishingStrategyMapping{Service: svc, ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{
			Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: "127.0.0.1"}}}
	}
	return &hyperv1.HostedControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "example"},
		Spec: hyperv1.HostedControlPlaneSpec{
			ReleaseImage: env.Release.Image, InfraID: "example-a1b2c", ClusterID: "5e7c3a7e-1111-4c4c-8a8a-0123456789ab",
			PullSecret:                       corev1.LocalObjectReference{Name: hosted.PullSecretName},
			ControllerAvailabilityPolicy:     hyperv1.SingleReplica,
			InfrastructureAvailabilityPolicy: hyperv1.SingleReplica,
			Platform:                         hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform, Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: ns}},
			Networking: hyperv1.ClusterNetworking{
				ClusterNetwork: []hyperv1.ClusterNetworkEntry{{CIDR: hyperv1.CIDR(hosted.DefaultClusterCIDR)}},
				ServiceNetwork: []hyperv1.ServiceNetworkEntry{{CIDR: hyperv1.CIDR(hosted.DefaultServiceCIDR)}}},
			Etcd: hyperv1.EtcdSpec{ManagementType: hyperv1.Managed, Managed: &hyperv1.ManagedEtcdSpec{
				Storage: hyperv1.ManagedEtcdStorageSpec{Type: "PersistentVolume", PersistentVolume: &hyperv1.PersistentVolumeEtcdStorageSpec{}}}},
			Services: []hyperv1.ServicePublishingStrategyMapping{publish(hyperv1.APIServer), publish(hyperv1.Konnectivity)},
		}}
}

func waitCondition(t *testing.T, timeout time.Duration, key client.ObjectKey, typ string, status metav1.ConditionStatus, reason string) *hyperv1.HostedControlPlane {
	t.Helper()
	return hubtest.WaitCondition(t, env, timeout, key, func(h *hyperv1.HostedControlPlane) []metav1.Condition { return h.Status.Conditions }, typ, status, reason)
}

// A control plane whose release or storage is not there says so and starts
// nothing.
func TestControlPlaneRefusesWhatItCannotRun(t *testing.T) {
	dir := start(t)
	for _, tc := range []struct {
		name   string
		change func(*hyperv1.HostedControlPlane)
		cond   string
		reason string
	}{
		{"release", func(h *hyperv1.HostedControlPlane) { h.Spec.ReleaseImage = "hcp.dev/release:0.0.1" }, hyperv1.ConditionValidReleaseImage, hosted.ReleaseImageNotFound},
		{"storage", func(h *hyperv1.HostedControlPlane) {
			h.Spec.Etcd.Managed.Storage.PersistentVolume.StorageClassName = ptr.To("no-such-class")
		}, hyperv1.ConditionValidConfiguration, ReasonInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			hcp := plane(t, ns)
			tc.change(hcp)
			env.Create(t, hcp)
			waitCondition(t, hubtest.Timeout, client.ObjectKeyFromObject(hcp), tc.cond, metav1.ConditionFalse, tc.reason)
			if _, err := os.Stat(filepath.Join(dir, ns)); !os.IsNotExist(err) {
				t.Errorf("the runtime made a directory for a control plane it cannot run (%v)", err)
			}
			if err := env.Client.Delete(context.Background(), hcp); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A control plane starts, is Available with its endpoint and kubeconfig, its
// hosted cluster has a ClusterVersion; deleting it ends its processes and
// removes its Secrets.
func TestControlPlaneRunsAndGoes(t *testing.T) {
	dir := start(t)
	ns := env.Namespace(t)
	hcp := plane(t, ns)
	env.Create(t, hcp)
	key := client.ObjectKeyFromObject(hcp)
	got := waitCondition(t, 2*time.Minute, key, hyperv1.ConditionAvailable, metav1.ConditionTrue, "")
	for _, c := range []string{hyperv1.ConditionEtcdAvailable, hyperv1.ConditionKubeAPIServerAvailable, hyperv1.ConditionValidReleaseImage, hyperv1.ConditionInfrastructureReady} {
		if !meta.IsStatusConditionTrue(got.Status.Conditions, c) {
			t.Errorf("%s is not True: %+v", c, meta.FindStatusCondition(got.Status.Conditions, c))
		}
	}
	if got.Status.ControlPlaneEndpoint.Port == 0 || !got.Status.Ready || !got.Status.Initialized {
		t.Errorf("endpoint %+v ready %v initialized %v", got.Status.ControlPlaneEndpoint, got.Status.Ready, got.Status.Initialized)
	}
	ready := map[string]bool{}
	for _, c := range got.Status.Components {
		ready[c.Name] = c.ReadyReplicas > 0
	}
	if !ready["etcd"] || !ready["kube-apiserver"] {
		t.Errorf("Available while etcd or kube-apiserver has no ready replica: %+v", got.Status.Components)
	}
	kc := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: controlplane.SecretAdminKubeconfig}, kc); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc.Data[controlplane.KeyKubeconfig])
	if err != nil {
		t.Fatal(err)
	}
	guest, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	cv := &configv1.ClusterVersion{}
	if err := guest.Get(context.Background(), client.ObjectKey{Name: "version"}, cv); err != nil {
		t.Errorf("the hosted cluster has no ClusterVersion: %v", err)
	}
	// Its own objects: cluster DNS at the service network's tenth address.
	env.Eventually(t, "the hosted cluster's DNS Service", func(ctx context.Context) error {
		svc := &corev1.Service{}
		if err := guest.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-dns"}, svc); err != nil {
			return err
		}
		if svc.Spec.ClusterIP != "172.31.0.10" {
			return fmt.Errorf("kube-dns at %s", svc.Spec.ClusterIP)
		}
		return nil
	})

	if err := env.Client.Delete(context.Background(), hcp); err != nil {
		t.Fatal(err)
	}
	env.EventuallyWithin(t, time.Minute, "the HostedControlPlane to be gone", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, key, &hyperv1.HostedControlPlane{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	secrets := &corev1.SecretList{}
	if err := env.Client.List(context.Background(), secrets, client.InNamespace(ns), client.MatchingLabels{hosted.ManagedLabel: "example"}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) > 0 {
		t.Errorf("%d control plane Secrets left behind", len(secrets.Items))
	}
	if _, err := os.Stat(filepath.Join(dir, ns)); !os.IsNotExist(err) {
		t.Errorf("the control plane's directory is left behind (%v)", err)
	}
	env.Eventually(t, "the hosted API to stop answering", func(ctx context.Context) error {
		if err := guest.Get(ctx, client.ObjectKey{Name: "version"}, &configv1.ClusterVersion{}); err == nil {
			return fmt.Errorf("the hosted API still answers")
		}
		return nil
	})
}
