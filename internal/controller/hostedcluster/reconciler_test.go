package hostedcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

// start runs the HostedCluster controller against the test's management plane.
func start(t *testing.T) {
	env.Run(t, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), Releases: env.Releases}).SetupWithManager(mgr)
	})
}

// cluster is a valid HostedCluster in ns, with its pull secret, as hcp create
// cluster agent makes it; its agent namespace is ns itself.
func cluster(ns, name string) (*corev1.Secret, *hyperv1.HostedCluster) {
	s := &clusterspec.Spec{Name: name, Namespace: ns, AgentNamespace: ns, PullSecret: []byte(`{"auths":{}}`),
		ControlPlaneAvailabilityPolicy: "SingleReplica", InfraAvailabilityPolicy: "SingleReplica", ReleaseImage: env.Release.Image,
		ServiceCIDR: hosted.DefaultServiceCIDR, ClusterCIDR: hosted.DefaultClusterCIDR, APIServerAddress: "192.0.2.10", NodePoolReplicas: -1}
	in, err := s.Validate()
	if err != nil {
		panic(err)
	}
	objs := clusterspec.Objects(s, in)
	return objs[0].(*corev1.Secret), objs[1].(*hyperv1.HostedCluster)
}

func condition(ctx context.Context, key client.ObjectKey, typ string) (*metav1.Condition, error) {
	hc := &hyperv1.HostedCluster{}
	if err := env.Client.Get(ctx, key, hc); err != nil {
		return nil, err
	}
	c := meta.FindStatusCondition(hc.Status.Conditions, typ)
	if c == nil {
		return nil, fmt.Errorf("no %s condition yet", typ)
	}
	return c, nil
}

// An invalid HostedCluster gets the condition that names its problem, and
// nothing is created for it.
func TestInvalidClustersAreReportedAndGetNothing(t *testing.T) {
	start(t)
	for i, tc := range []struct {
		name      string
		change    func(hc *hyperv1.HostedCluster, pull *corev1.Secret) (skipSecret bool)
		condition string
		reason    string
	}{
		{"missing pull secret", func(*hyperv1.HostedCluster, *corev1.Secret) bool { return true },
			hyperv1.ConditionValidConfiguration, "PullSecretNotFound"},
		{"pull secret without its key", func(_ *hyperv1.HostedCluster, s *corev1.Secret) bool {
			s.Type, s.Data = corev1.SecretTypeOpaque, map[string][]byte{"other": []byte("x")}
			return false
		}, hyperv1.ConditionValidConfiguration, "InvalidPullSecret"},
		{"unknown release", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			hc.Spec.Release.Image = "hcp.dev/release:0.0.1"
			return false
		}, hyperv1.ConditionValidReleaseImage, hosted.ReleaseImageNotFound},
		{"missing agent namespace", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			hc.Spec.Platform.Agent.AgentNamespace = "no-such-namespace"
			return false
		}, hyperv1.ConditionValidConfiguration, "AgentNamespaceNotFound"},
		{"missing storage class", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			sc := "no-such-class"
			hc.Spec.Etcd.Managed.Storage.PersistentVolume.StorageClassName = &sc
			return false
		}, hyperv1.ConditionValidConfiguration, "StorageClassNotFound"},
		{"unknown topology", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			hc.Annotations = map[string]string{hyperv1.TopologyAnnotation: "sideways"}
			return false
		}, hyperv1.ConditionValidConfiguration, "UnknownTopology"},
		{"no API server service", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			hc.Spec.Services = hc.Spec.Services[1:]
			return false
		}, hyperv1.ConditionValidConfiguration, "MissingService"},
		{"backup schedule that is not cron", func(hc *hyperv1.HostedCluster, _ *corev1.Secret) bool {
			hc.Spec.Etcd.Managed.Backup = &hyperv1.EtcdBackupSchedule{Schedule: "every tuesday",
				Storage: hyperv1.EtcdBackupStorage{Type: hyperv1.LocalBackupStorage}}
			return false
		}, hyperv1.ConditionValidConfiguration, ReasonInvalidSchedule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Names are unique across the management cluster.
			ns, name := env.Namespace(t), fmt.Sprintf("bad-%d", i)
			pull, hc := cluster(ns, name)
			if !tc.change(hc, pull) {
				env.Create(t, pull)
			}
			env.Create(t, hc)
			key := client.ObjectKeyFromObject(hc)
			env.Eventually(t, tc.condition+" to be False/"+tc.reason, func(ctx context.Context) error {
				c, err := condition(ctx, key, tc.condition)
				if err != nil {
					return err
				}
				if c.Status != metav1.ConditionFalse || c.Reason != tc.reason {
					return fmt.Errorf("%s is %s/%s: %s", tc.condition, c.Status, c.Reason, c.Message)
				}
				return nil
			})
			c, err := condition(context.Background(), key, hyperv1.ConditionAvailable)
			if err != nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason {
				t.Errorf("Available should be False with reason %s, got %+v (%v)", tc.reason, c, err)
			}
			err = env.Client.Get(context.Background(), client.ObjectKey{Name: hosted.ControlPlaneNamespace(ns, name)}, &corev1.Namespace{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("an invalid cluster got its control plane namespace (err %v)", err)
			}
		})
	}
}

// A valid cluster gets its control plane namespace, its secrets copied and a
// HostedControlPlane; deleting it removes all of them and its finalizer.
func TestValidClusterGetsItsControlPlaneAndDeletionRemovesIt(t *testing.T) {
	start(t)
	ns := env.Namespace(t)
	pull, hc := cluster(ns, "good")
	env.Create(t, pull, hc)
	cpns := hosted.ControlPlaneNamespace(ns, "good")
	hcp := &hyperv1.HostedControlPlane{}
	env.Eventually(t, "the HostedControlPlane", func(ctx context.Context) error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: "good"}, hcp)
	})
	if hcp.Spec.ReleaseImage != env.Release.Image || hcp.Spec.ControllerAvailabilityPolicy != hyperv1.SingleReplica {
		t.Errorf("HostedControlPlane spec: release %q policy %q", hcp.Spec.ReleaseImage, hcp.Spec.ControllerAvailabilityPolicy)
	}
	cpNamespace := &corev1.Namespace{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: cpns}, cpNamespace); err != nil {
		t.Fatal(err)
	}
	if cpNamespace.Labels[hyperv1.HostedControlPlaneNamespaceLabel] != "true" || cpNamespace.Annotations[CreatedNamespaceAnnotation] != ns+"/good" {
		t.Errorf("control plane namespace marks: labels %v annotations %v", cpNamespace.Labels, cpNamespace.Annotations)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: cpns, Name: hosted.PullSecretName}, &corev1.Secret{}); err != nil {
		t.Errorf("pull secret not copied: %v", err)
	}
	got := &hyperv1.HostedCluster{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(hc), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.InfraID == "" || got.Spec.ClusterID == "" || len(got.Finalizers) == 0 {
		t.Errorf("infraID %q clusterID %q finalizers %v: all should be set", got.Spec.InfraID, got.Spec.ClusterID, got.Finalizers)
	}

	if err := env.Client.Delete(context.Background(), hc); err != nil {
		t.Fatal(err)
	}
	env.Eventually(t, "the HostedCluster to be gone", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hc), &hyperv1.HostedCluster{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: cpns, Name: "good"}, &hyperv1.HostedControlPlane{}); !apierrors.IsNotFound(err) {
		t.Errorf("HostedControlPlane left behind (%v)", err)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Name: cpns}, cpNamespace)
	if err == nil && cpNamespace.DeletionTimestamp.IsZero() {
		t.Errorf("the control plane namespace hcp created is not being deleted")
	}
}

// A control plane namespace the user made beforehand is adopted (marked), and
// left in place without hcp's marks when the cluster goes.
func TestUserNamespaceIsAdoptedAndKept(t *testing.T) {
	start(t)
	ns := env.Namespace(t)
	cpns := hosted.ControlPlaneNamespace(ns, "mine")
	own := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cpns, Labels: map[string]string{"team": "a"}}}
	env.Create(t, own)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), own) })
	pull, hc := cluster(ns, "mine")
	env.Create(t, pull, hc)
	env.Eventually(t, "the namespace to be adopted", func(ctx context.Context) error {
		got := &corev1.Namespace{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: cpns}, got); err != nil {
			return err
		}
		if got.Labels[hyperv1.HostedControlPlaneNamespaceLabel] != "true" || got.Annotations[hyperv1.HostedClusterAnnotation] != ns+"/mine" {
			return fmt.Errorf("not marked: labels %v annotations %v", got.Labels, got.Annotations)
		}
		if _, created := got.Annotations[CreatedNamespaceAnnotation]; created {
			return fmt.Errorf("a user's namespace is marked as created by hcp")
		}
		return nil
	})
	if err := env.Client.Delete(context.Background(), hc); err != nil {
		t.Fatal(err)
	}
	env.Eventually(t, "the HostedCluster to be gone and the namespace unmarked", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hc), &hyperv1.HostedCluster{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("HostedCluster still there (%v)", err)
		}
		got := &corev1.Namespace{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: cpns}, got); err != nil {
			return err
		}
		if !got.DeletionTimestamp.IsZero() {
			return fmt.Errorf("the user's namespace is being deleted")
		}
		if got.Labels["team"] != "a" || got.Labels[hyperv1.HostedControlPlaneNamespaceLabel] != "" || got.Annotations[hyperv1.HostedClusterAnnotation] != "" {
			return fmt.Errorf("marks not removed or user's label lost: labels %v annotations %v", got.Labels, got.Annotations)
		}
		return nil
	})
}

// Two clusters of one name in different namespaces: the later one is refused.
func TestDuplicateNameIsRefused(t *testing.T) {
	start(t)
	first, second := env.Namespace(t), env.Namespace(t)
	pull, hc := cluster(first, "twin")
	env.Create(t, pull, hc)
	env.Eventually(t, "the first cluster's control plane", func(ctx context.Context) error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: hosted.ControlPlaneNamespace(first, "twin"), Name: "twin"}, &hyperv1.HostedControlPlane{})
	})
	// Creation times have one-second resolution: the second is created a
	// second later, so which one is older is not a tie.
	time.Sleep(time.Second)
	pull2, hc2 := cluster(second, "twin")
	env.Create(t, pull2, hc2)
	env.Eventually(t, "DuplicateName", func(ctx context.Context) error {
		c, err := condition(ctx, client.ObjectKeyFromObject(hc2), hyperv1.ConditionValidConfiguration)
		if err != nil {
			return err
		}
		if c.Reason != "DuplicateName" {
			return fmt.Errorf("ValidConfiguration is %s/%s", c.Status, c.Reason)
		}
		return nil
	})
	for _, h := range []*hyperv1.HostedCluster{hc, hc2} {
		_ = env.Client.Delete(context.Background(), h)
	}
}
