package nodepool

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/hub/hubtest"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/pki"
)

var env *hubtest.Env

func TestMain(m *testing.M) { hubtest.Main(m, &env) }

// start runs the NodePool controller; ignitionURL "" runs it without an
// ignition server.
func start(t *testing.T, ignitionURL string, now *clocktesting.FakeClock) {
	ca, err := pki.NewCA("test-ignition")
	if err != nil {
		t.Fatal(err)
	}
	env.Run(t, func(mgr ctrl.Manager) error {
		return (&Reconciler{Client: mgr.GetClient(), IgnitionURL: ignitionURL, IgnitionCA: ca.CertPEM,
			Releases: env.Releases, TokenRotation: time.Hour, Now: now.Now}).SetupWithManager(mgr)
	})
}

// hostedCluster makes, in ns, what the HostedCluster controller would have:
// the HostedCluster (with an infraID, not Available), its control plane
// namespace and its Cluster API Cluster.
func hostedCluster(t *testing.T, ns, name string) string {
	hc := &hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hyperv1.HostedClusterSpec{Release: hyperv1.Release{Image: env.Release.Image}, InfraID: name + "-x1y2z",
			Platform: hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform, Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: ns}},
			Networking: hyperv1.ClusterNetworking{
				ClusterNetwork: []hyperv1.ClusterNetworkEntry{{CIDR: hyperv1.CIDR(hosted.DefaultClusterCIDR)}},
				ServiceNetwork: []hyperv1.ServiceNetworkEntry{{CIDR: hyperv1.CIDR(hosted.DefaultServiceCIDR)}}},
			Services: []hyperv1.ServicePublishingStrategyMapping{{Service: hyperv1.APIServer,
				ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: "192.0.2.10"}}}},
			Etcd: hyperv1.EtcdSpec{ManagementType: hyperv1.Managed, Managed: &hyperv1.ManagedEtcdSpec{
				Storage: hyperv1.ManagedEtcdStorageSpec{Type: "PersistentVolume", PersistentVolume: &hyperv1.PersistentVolumeEtcdStorageSpec{}}}},
		}}
	cpns := hosted.ControlPlaneNamespace(ns, name)
	cpNamespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cpns}}
	env.Create(t, hc, cpNamespace)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cpNamespace) })
	env.Create(t, &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: cpns, Name: hc.Spec.InfraID},
		Spec: clusterv1.ClusterSpec{ControlPlaneRef: clusterv1.ContractVersionedObjectReference{APIGroup: hyperv1.GroupVersion.Group, Kind: "HostedControlPlane", Name: name}}})
	return cpns
}

func wantCondition(t *testing.T, key client.ObjectKey, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	hubtest.WaitCondition(t, env, hubtest.Timeout, key, func(np *hyperv1.NodePool) []metav1.Condition { return np.Status.Conditions }, typ, status, reason)
}

// A NodePool whose HostedCluster does not exist, or whose operator runs no
// ignition server, says so.
func TestNodePoolSaysWhatItWaitsFor(t *testing.T) {
	start(t, "", clocktesting.NewFakeClock(time.Now()))
	ns := env.Namespace(t)
	orphan := clusterspec.NodePool(ns, "orphan", "nosuch", env.Release.Image, 1, nil)
	env.Create(t, orphan)
	wantCondition(t, client.ObjectKeyFromObject(orphan), ConditionReady, metav1.ConditionFalse, "HostedClusterNotFound")

	hostedCluster(t, ns, "c1")
	np := clusterspec.NodePool(ns, "c1", "c1", env.Release.Image, 1, nil)
	env.Create(t, np)
	wantCondition(t, client.ObjectKeyFromObject(np), ConditionIgnitionToken, metav1.ConditionFalse, "NoIgnitionServer")
	wantCondition(t, client.ObjectKeyFromObject(np), ConditionReady, metav1.ConditionFalse, "NoIgnitionServer")
}

// A NodePool gets its token and user-data Secrets and a MachineDeployment of
// its replicas; scaling changes the MachineDeployment; the token rotates when
// due, keeping the previous one; deleting the NodePool removes its Secrets.
func TestNodePoolScalesRotatesAndCleansUp(t *testing.T) {
	now := clocktesting.NewFakeClock(time.Now())
	start(t, "https://192.0.2.1:8088/ignition", now)
	ns := env.Namespace(t)
	cpns := hostedCluster(t, ns, "c2")
	np := clusterspec.NodePool(ns, "workers", "c2", env.Release.Image, 2, nil)
	env.Create(t, np)
	key := client.ObjectKeyFromObject(np)

	md := &clusterv1.MachineDeployment{}
	env.Eventually(t, "a MachineDeployment of 2", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: "workers"}, md); err != nil {
			return err
		}
		if got := ptr.Deref(md.Spec.Replicas, -1); got != 2 {
			return fmt.Errorf("replicas %d", got)
		}
		return nil
	})
	if md.Spec.Template.Spec.Bootstrap.DataSecretName == nil || *md.Spec.Template.Spec.Bootstrap.DataSecretName != hosted.UserDataSecret("workers") {
		t.Errorf("machines boot from %v, want the user-data Secret %s", md.Spec.Template.Spec.Bootstrap.DataSecretName, hosted.UserDataSecret("workers"))
	}
	tokens := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret("workers")}, tokens); err != nil {
		t.Fatal(err)
	}
	first := ignition.TokensFrom(tokens)
	if first.Current == "" || len(tokens.Data[ignition.KeyBootstrapID]) != 6 {
		t.Fatalf("token Secret without a token or bootstrap ID: %v", tokens.Data)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: cpns, Name: hosted.UserDataSecret("workers")}, &corev1.Secret{}); err != nil {
		t.Fatalf("user-data Secret: %v", err)
	}
	// The hosted cluster is not Available: no bootstrap token yet, and no
	// machine exists, so the pool is scaling up.
	wantCondition(t, key, ConditionIgnitionToken, metav1.ConditionFalse, "WaitingForControlPlane")
	wantCondition(t, key, ConditionAllMachinesReady, metav1.ConditionFalse, "WaitingForMachines")
	wantCondition(t, key, ConditionReady, metav1.ConditionFalse, "ScalingUp")

	patch := func(change func(*hyperv1.NodePool)) {
		t.Helper()
		got := &hyperv1.NodePool{}
		if err := env.Client.Get(context.Background(), key, got); err != nil {
			t.Fatal(err)
		}
		before := got.DeepCopy()
		change(got)
		if err := env.Client.Patch(context.Background(), got, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	patch(func(np *hyperv1.NodePool) { np.Spec.Replicas = ptr.To[int32](5) })
	env.Eventually(t, "the MachineDeployment to scale to 5", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: "workers"}, md); err != nil {
			return err
		}
		if got := ptr.Deref(md.Spec.Replicas, -1); got != 5 {
			return fmt.Errorf("replicas %d", got)
		}
		return nil
	})

	now.Step(2 * time.Hour)
	patch(func(np *hyperv1.NodePool) { np.Annotations = map[string]string{"touch": "1"} })
	env.Eventually(t, "the token to rotate", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret("workers")}, tokens); err != nil {
			return err
		}
		got := ignition.TokensFrom(tokens)
		if got.Current == first.Current {
			return fmt.Errorf("not rotated")
		}
		if got.Previous != first.Current {
			return fmt.Errorf("the previous token %q is not the one before rotation", got.Previous)
		}
		return nil
	})

	// Another release: new tokens at once, the old ones no longer valid,
	// and the machines' version follows.
	all, err := env.Releases.List()
	if err != nil || len(all) < 2 {
		t.Fatalf("the release payload has %d releases (%v); make build builds two", len(all), err)
	}
	older := all[len(all)-2]
	rotated := ignition.TokensFrom(tokens)
	patch(func(np *hyperv1.NodePool) { np.Spec.Release.Image = older.Image })
	env.Eventually(t, "new tokens for release "+older.Name, func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret("workers")}, tokens); err != nil {
			return err
		}
		got := ignition.TokensFrom(tokens)
		if got.Current == rotated.Current || string(tokens.Data[ignition.KeyRelease]) != older.Name {
			return fmt.Errorf("tokens of release %q", tokens.Data[ignition.KeyRelease])
		}
		if got.Previous != "" || got.Valid(rotated.Current, now.Now(), time.Hour) {
			return fmt.Errorf("the token of the release before still works (previous %q)", got.Previous)
		}
		return nil
	})
	env.Eventually(t, "the MachineDeployment on "+older.KubernetesVersion(), func(ctx context.Context) error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: "workers"}, md); err != nil {
			return err
		}
		if md.Spec.Template.Spec.Version != older.KubernetesVersion() {
			return fmt.Errorf("version %q", md.Spec.Template.Spec.Version)
		}
		return nil
	})

	if err := env.Client.Delete(context.Background(), np); err != nil {
		t.Fatal(err)
	}
	env.Eventually(t, "the NodePool and its Secrets to be gone", func(ctx context.Context) error {
		if err := env.Client.Get(ctx, key, &hyperv1.NodePool{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("NodePool still there (%v)", err)
		}
		for _, name := range []string{hosted.TokenSecret("workers"), hosted.UserDataSecret("workers")} {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("secret %s still there (%v)", name, err)
			}
		}
		return nil
	})
}

// Ready and replicas come from the pool's Machines: counted when their node is
// healthy, scaling up while fewer exist than asked for.
func TestMachineStatus(t *testing.T) {
	ready := func(name string, node bool) clusterv1.Machine {
		m := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name}}
		m.Status.Conditions = []metav1.Condition{{Type: clusterv1.MachineReadyCondition, Status: metav1.ConditionTrue}}
		if node {
			m.Status.NodeRef.Name = name
			m.Status.Conditions = append(m.Status.Conditions, metav1.Condition{Type: clusterv1.MachineNodeHealthyCondition, Status: metav1.ConditionTrue})
		}
		return m
	}
	pending := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "m-pending"}}
	pending.Status.Conditions = []metav1.Condition{{Type: clusterv1.MachineInfrastructureReadyCondition, Status: metav1.ConditionFalse, Message: "no agent"}}
	for _, tc := range []struct {
		name        string
		machines    []clusterv1.Machine
		want        int32
		replicas    int32
		readyReason string
		allMachines string
	}{
		{"none asked, none there", nil, 0, 0, "AsExpected", "AsExpected"},
		{"two asked, none there", nil, 2, 0, "ScalingUp", "WaitingForMachines"},
		{"two asked, one pending", []clusterv1.Machine{ready("m-a", true), pending}, 2, 1, "ScalingUp", "MachinesNotReady"},
		{"two ready", []clusterv1.Machine{ready("m-a", true), ready("m-b", true)}, 2, 2, "AsExpected", "AsExpected"},
		{"machine ready, no node", []clusterv1.Machine{ready("m-a", false)}, 1, 0, "ScalingUp", "AsExpected"},
		{"one too many", []clusterv1.Machine{ready("m-a", true), ready("m-b", true)}, 1, 2, "ScalingDown", "AsExpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := &hyperv1.NodePool{}
			setMachineStatus(np, tc.machines, tc.want)
			if np.Status.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", np.Status.Replicas, tc.replicas)
			}
			for typ, reason := range map[string]string{ConditionReady: tc.readyReason, ConditionAllMachinesReady: tc.allMachines} {
				if c := meta.FindStatusCondition(np.Status.Conditions, typ); c == nil || c.Reason != reason {
					t.Errorf("%s: got %+v, want reason %s", typ, c, reason)
				}
			}
		})
	}
}

// UpdatingVersion, UpdatingConfig and status.version come from the
// Machines' versions and templates.
func TestVersionAndConfigStatus(t *testing.T) {
	machine := func(name, version, template string) clusterv1.Machine {
		m := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name}}
		m.Spec.Version, m.Spec.InfrastructureRef.Name = version, template
		return m
	}
	for _, tc := range []struct {
		name            string
		upgrade         hyperv1.UpgradeType
		machines        []clusterv1.Machine
		want            int32
		updatingVersion metav1.ConditionStatus
		updatingConfig  metav1.ConditionStatus
		versionReason   string
		configReason    string
		statusVersion   string
	}{
		{"all on the release", hyperv1.UpgradeTypeReplace, []clusterv1.Machine{machine("a", "v1.37.2", "t2"), machine("b", "v1.37.2", "t2")}, 2,
			metav1.ConditionFalse, metav1.ConditionFalse, "AsExpected", "AsExpected", "1.37.2"},
		{"replacing for a release", hyperv1.UpgradeTypeReplace, []clusterv1.Machine{machine("a", "v1.36.3", "t2"), machine("b", "v1.37.2", "t2")}, 2,
			metav1.ConditionTrue, metav1.ConditionFalse, "RollingOut", "AsExpected", ""},
		{"in place, one to go", hyperv1.UpgradeTypeInPlace, []clusterv1.Machine{machine("a", "v1.36.3", "t2"), machine("b", "v1.37.2", "t2")}, 2,
			metav1.ConditionTrue, metav1.ConditionFalse, "InPlaceUpgrade", "AsExpected", ""},
		{"replacing for a configuration", hyperv1.UpgradeTypeReplace, []clusterv1.Machine{machine("a", "v1.37.2", "t1"), machine("b", "v1.37.2", "t2")}, 2,
			metav1.ConditionFalse, metav1.ConditionTrue, "AsExpected", "RollingOut", "1.37.2"},
		{"in place keeps the configuration", hyperv1.UpgradeTypeInPlace, []clusterv1.Machine{machine("a", "v1.37.2", "t1")}, 1,
			metav1.ConditionFalse, metav1.ConditionFalse, "AsExpected", "NewNodesOnly", "1.37.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := &hyperv1.NodePool{}
			np.Spec.Management.UpgradeType = tc.upgrade
			setVersionStatus(np, tc.machines, tc.want, "v1.37.2", "1.37.2")
			setConfigStatus(np, tc.machines, "t2")
			if np.Status.Version != tc.statusVersion {
				t.Errorf("status.version %q, want %q", np.Status.Version, tc.statusVersion)
			}
			v := meta.FindStatusCondition(np.Status.Conditions, ConditionUpdatingVersion)
			c := meta.FindStatusCondition(np.Status.Conditions, ConditionUpdatingConfig)
			if v == nil || v.Status != tc.updatingVersion || v.Reason != tc.versionReason {
				t.Errorf("UpdatingVersion %+v, want %s/%s", v, tc.updatingVersion, tc.versionReason)
			}
			if c == nil || c.Status != tc.updatingConfig || c.Reason != tc.configReason {
				t.Errorf("UpdatingConfig %+v, want %s/%s", c, tc.updatingConfig, tc.configReason)
			}
		})
	}
}
