// Package hostedcontrolplane reconciles HostedControlPlanes: it keeps the PKI and
// kubeconfigs as Secrets in the control plane namespace, builds the component
// model, hands it to a runtime, and reports health as conditions.
package hostedcontrolplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/guest"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/release"
)

// Finalizer holds a HostedControlPlane until its runtime has removed everything.
const Finalizer = "hypershift.openshift.io/hostedcontrolplane"

// Runtime runs control planes; local and kubernetes runtimes implement it.
type Runtime interface {
	// Network places n replicas of each component of a control plane.
	Network(namespace string, n int) (controlplane.Network, error)
	// Apply makes the control plane run as described.
	Apply(ctx context.Context, cp *controlplane.ControlPlane, rel *release.Release) (controlplane.Endpoints, error)
	// Status is the latest readiness of each component; nil while the
	// runtime has not observed the control plane yet (an operator that just
	// started has not probed the processes it adopted).
	Status(namespace string) []hyperv1.ComponentStatus
	// Delete removes everything of a control plane, data included.
	Delete(ctx context.Context, namespace string) error
}

// StorageResolver checks that a StorageClass can hold etcd's data.
type StorageResolver func(ctx context.Context, name string) error

// Reconciler reconciles HostedControlPlanes.
type Reconciler struct {
	Client   client.Client
	Runtime  Runtime
	Releases release.Store
	// Changes receives the namespace of a control plane whose health changed.
	Changes <-chan string
	// WatchWorkloads reconciles a control plane when one of its Deployments or
	// StatefulSets changes (Kubernetes runtime).
	WatchWorkloads bool
	// OperatorOutside says the operator runs outside the management
	// cluster's pod network (hcp up with management nodes): it reaches hosted
	// API servers on their published endpoints, not their Services.
	OperatorOutside bool
	// DataDir holds the snapshots control planes created from a backup
	// start from (backup.RestoreDir).
	DataDir string

	guests guest.Clients
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	events := make(chan event.TypedGenericEvent[*hyperv1.HostedControlPlane], 64)
	if r.Changes != nil {
		go func() {
			for ns := range r.Changes {
				list := &hyperv1.HostedControlPlaneList{}
				if err := mgr.GetClient().List(context.Background(), list, client.InNamespace(ns)); err != nil {
					continue
				}
				for i := range list.Items {
					events <- event.TypedGenericEvent[*hyperv1.HostedControlPlane]{Object: &list.Items[i]}
				}
			}
		}()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&hyperv1.HostedControlPlane{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		WatchesRawSource(source.Channel(events, &handler.TypedEnqueueRequestForObject[*hyperv1.HostedControlPlane]{}))
	if r.WatchWorkloads {
		toPlane := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			list := &hyperv1.HostedControlPlaneList{}
			if err := mgr.GetClient().List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
				return nil
			}
			var out []reconcile.Request
			for _, p := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
			}
			return out
		})
		b = b.Watches(&appsv1.Deployment{}, toPlane).Watches(&appsv1.StatefulSet{}, toPlane)
	}
	return b.Complete(r)
}

// Reconcile brings one HostedControlPlane to its desired state.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	log := ctrl.LoggerFrom(ctx)
	hcp := &hyperv1.HostedControlPlane{}
	if err := r.Client.Get(ctx, req.NamespacedName, hcp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !hcp.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, hcp)
	}
	if controllerutil.AddFinalizer(hcp, Finalizer) {
		if err := r.Client.Update(ctx, hcp); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := hcp.DeepCopy()
	defer func() {
		if err := r.Client.Status().Patch(ctx, hcp, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, fmt.Errorf("updating status: %w", err))
		}
	}()
	paused, wait, perr := hosted.Paused(hcp.Spec.PausedUntil, time.Now())
	active := metav1.Condition{Type: hyperv1.ConditionReconciliationActive, Status: metav1.ConditionTrue, Reason: ReasonAsExpected,
		Message: "Reconciliation active", ObservedGeneration: hcp.Generation}
	switch {
	case perr != nil:
		active.Message = perr.Error() + "; reconciling"
	case paused:
		active.Status, active.Reason, active.Message = metav1.ConditionFalse, "ReconciliationPaused", "Reconciliation paused by spec.pausedUntil="+*hcp.Spec.PausedUntil
	}
	meta.SetStatusCondition(&hcp.Status.Conditions, active)
	if paused {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	res, err := r.reconcileNormal(ctx, hcp)
	if err != nil {
		log.Error(err, "reconciling", "hostedControlPlane", klog.KObj(hcp))
	}
	return res, err
}

func (r *Reconciler) reconcileNormal(ctx context.Context, hcp *hyperv1.HostedControlPlane) (ctrl.Result, error) {
	gen := hcp.Generation
	rel, cond := hosted.ReleaseImage(r.Releases, hcp.Spec.ReleaseImage, gen)
	meta.SetStatusCondition(&hcp.Status.Conditions, cond)
	if rel == nil {
		return ctrl.Result{}, nil
	}

	quorum, _ := hosted.Replicas(hcp.Spec.ControllerAvailabilityPolicy)
	network, err := r.Runtime.Network(hcp.Namespace, quorum)
	if err != nil {
		return ctrl.Result{}, err
	}
	secrets, err := r.ensureSecrets(ctx, hcp, network)
	if err != nil {
		return ctrl.Result{}, err
	}
	storage, err := hosted.ResolveStorageClass(ctx, r.Client, hosted.StorageClassName(hcp.Spec.Etcd))
	if err != nil {
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionValidConfiguration,
			Status: metav1.ConditionFalse, Reason: ReasonInvalidConfig, Message: err.Error(), ObservedGeneration: gen})
		return ctrl.Result{}, nil
	}
	meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionValidConfiguration,
		Status: metav1.ConditionTrue, Reason: ReasonAsExpected, Message: "Configuration is valid", ObservedGeneration: gen})
	// A change of release rolls out in stages (controlplane.PlanRollout),
	// planned from what the runtime observes, or from the status last
	// recorded while it has not observed this control plane yet (an operator
	// that just started): a restart never rolls every component at once.
	observed := r.Runtime.Status(hcp.Namespace)
	if observed == nil {
		observed = hcp.Status.Components
	}
	plan := controlplane.PlanRollout(rel, observed, r.runningRelease(hcp))
	encryption, err := r.ensureEncryption(ctx, hcp, secrets, observed)
	if err != nil {
		return ctrl.Result{}, err
	}
	restore, err := r.restoreSnapshot(hcp)
	if err != nil {
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionValidConfiguration,
			Status: metav1.ConditionFalse, Reason: ReasonInvalidConfig, Message: err.Error(), ObservedGeneration: gen})
		return ctrl.Result{}, nil
	}
	cp, err := controlplane.Build(controlplane.Input{HCP: hcp, Release: rel, Releases: plan.Releases, Network: network, StorageClass: storage.Name,
		Encryption: encryption, RestoreSnapshot: restore})
	if err != nil {
		return ctrl.Result{}, err
	}
	cp.Secrets, cp.Storage = secrets, storage
	endpoints, err := r.Runtime.Apply(ctx, cp, rel)
	if err != nil {
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionInfrastructureReady,
			Status: metav1.ConditionFalse, Reason: ReasonInvalidConfig, Message: err.Error(), ObservedGeneration: gen})
		return ctrl.Result{}, err
	}
	host, port := endpoints[string(hyperv1.APIServer)].Host, endpoints[string(hyperv1.APIServer)].Port
	if host == "" {
		host = PublishedAddress(hcp, hyperv1.APIServer)
	}
	meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionInfrastructureReady,
		Status: metav1.ConditionTrue, Reason: ReasonAsExpected, ObservedGeneration: gen,
		Message: fmt.Sprintf("The API server is published on %s", net.JoinHostPort(host, strconv.Itoa(port))) + noteOf(endpoints[string(hyperv1.APIServer)])})
	hcp.Status.ControlPlaneEndpoint = hyperv1.APIEndpoint{Host: host, Port: int32(port)}
	if kp := endpoints[string(hyperv1.Konnectivity)]; kp.Port != 0 {
		if kp.Host == "" {
			kp.Host = PublishedAddress(hcp, hyperv1.Konnectivity)
		}
		if err := r.publishKonnectivity(ctx, hcp, kp.Host, kp.Port); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.ensureAdminKubeconfig(ctx, hcp, "https://"+net.JoinHostPort(host, strconv.Itoa(port)), secrets); err != nil {
		return ctrl.Result{}, err
	}
	hcp.Status.KubeConfig = &hyperv1.KubeconfigSecretRef{Name: controlplane.SecretAdminKubeconfig, Key: controlplane.KeyKubeconfig}
	// Cluster API reaches the hosted cluster through <infraID>-kubeconfig (key value).
	capiKubeconfig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hcp.Namespace, Name: hcp.Spec.InfraID + "-kubeconfig",
		Labels: map[string]string{clusterv1.ClusterNameLabel: hcp.Spec.InfraID}},
		Data: map[string][]byte{"value": secrets[controlplane.SecretLocalhostKubecfg].Data[controlplane.KeyKubeconfig]}}
	if err := r.applySecret(ctx, hcp, capiKubeconfig); err != nil {
		return ctrl.Result{}, err
	}
	hcp.Status.ExternalManagedControlPlane = ptr.To(true)

	components := r.Runtime.Status(hcp.Namespace)
	if components == nil {
		// Not observed yet: what the conditions say stays until it is,
		// rather than a running control plane reported down.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	hcp.Status.Components = components
	plan = controlplane.PlanRollout(rel, components, r.runningRelease(hcp))
	setVersion(hcp, rel, plan.Complete)
	// The hosted cluster's ClusterVersion and ClusterOperators exist before it
	// is first reported Available: a user who runs kubectl get co the moment
	// it is finds them.
	var guestErr error
	if serving(components) {
		// Bounded: a hosted API server whose etcd just went away (a
		// restart the probes have not seen yet) holds requests, and the
		// control plane's own rollout must not wait on it.
		gctx, cancel := context.WithTimeout(ctx, guestSyncTimeout)
		guestErr = r.syncGuest(gctx, hcp, secrets, components, rel)
		cancel()
		if guestErr != nil {
			ctrl.LoggerFrom(ctx).V(1).Info("updating cluster operators in the hosted cluster", "error", guestErr.Error())
		}
	}
	// A hosted API that does not answer the operator at all (it is served
	// where the operator cannot reach) does not hold Available back.
	guestWait := ""
	if guestErr != nil && !hcp.Status.Initialized && guestAnswered(guestErr) {
		guestWait = guestErr.Error()
	}
	setHealthConditions(hcp, components, deployed(hcp), guestWait)
	if upgrading(hcp) {
		meta.SetStatusCondition(&hcp.Status.Conditions, metav1.Condition{Type: hyperv1.ConditionProgressing, Status: metav1.ConditionTrue,
			Reason: ReasonUpgrading, Message: capitalize(plan.Step), ObservedGeneration: gen})
	}
	available := meta.IsStatusConditionTrue(hcp.Status.Conditions, hyperv1.ConditionAvailable)
	hcp.Status.Ready = available
	if available {
		hcp.Status.Initialized = true
	}
	hcp.Status.Initialization = &hyperv1.ControlPlaneInitialization{ControlPlaneInitialized: ptr.To(hcp.Status.Initialized)}
	if guestErr != nil {
		return ctrl.Result{RequeueAfter: guestRetry(hcp, guestErr)}, nil
	}
	return ctrl.Result{RequeueAfter: time.Minute}, nil
}

// restoreSnapshot is the snapshot a control plane created from a backup
// starts from, until it has been initialized (the local runtime), or the
// archive's URL (the Kubernetes runtime); "" for others. A control plane
// whose snapshot is not there does not start (it would start empty).
func (r *Reconciler) restoreSnapshot(hcp *hyperv1.HostedControlPlane) (string, error) {
	m := hcp.Spec.Etcd.Managed
	if m == nil || len(m.Storage.RestoreSnapshotURL) == 0 {
		return "", nil
	}
	if r.WatchWorkloads {
		// Each etcd pod's init container fetches the archive itself and
		// restores a member that has no data; it stays while the spec names
		// the archive, so that the restore's end does not roll etcd.
		u := m.Storage.RestoreSnapshotURL[0]
		if err := backup.CheckPodURL(u); err != nil {
			return "", fmt.Errorf("spec.etcd.managed.storage.restoreSnapshotURL: %w", err)
		}
		if hcp.Status.Initialized && r.DataDir != "" {
			_ = os.RemoveAll(backup.RestoreDir(r.DataDir, hcp.Namespace))
		}
		return u, nil
	}
	if hcp.Status.Initialized {
		// Restored: the unpacked archive is not needed any more.
		if r.DataDir != "" {
			_ = os.RemoveAll(backup.RestoreDir(r.DataDir, hcp.Namespace))
		}
		return "", nil
	}
	p := filepath.Join(backup.RestoreDir(r.DataDir, hcp.Namespace), backup.SnapshotName)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("spec.etcd.managed.storage.restoreSnapshotURL: the snapshot to start from is not at %s (%v); create the HostedCluster again", p, err)
	}
	return p, nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, hcp *hyperv1.HostedControlPlane) error {
	if !controllerutil.ContainsFinalizer(hcp, Finalizer) {
		return nil
	}
	r.guests.Forget(hcp.Namespace)
	if err := r.Runtime.Delete(ctx, hcp.Namespace); err != nil {
		return fmt.Errorf("removing the control plane: %w", err)
	}
	if err := r.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(hcp.Namespace), client.MatchingLabels{hosted.ManagedLabel: hcp.Name}); err != nil {
		return fmt.Errorf("removing control plane secrets: %w", err)
	}
	if err := r.Client.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(hcp.Namespace), client.MatchingLabels{hosted.ManagedLabel: hcp.Name}); err != nil {
		return fmt.Errorf("removing control plane config maps: %w", err)
	}
	controllerutil.RemoveFinalizer(hcp, Finalizer)
	return r.Client.Update(ctx, hcp)
}

// ensureSecrets creates or updates the PKI and kubeconfig Secrets and returns
// all of them by name.
func (r *Reconciler) ensureSecrets(ctx context.Context, hcp *hyperv1.HostedControlPlane, network controlplane.Network) (map[string]*corev1.Secret, error) {
	list := &corev1.SecretList{}
	if err := r.Client.List(ctx, list, client.InNamespace(hcp.Namespace), client.MatchingLabels{hosted.ManagedLabel: hcp.Name}); err != nil {
		return nil, err
	}
	existing := map[string]*corev1.Secret{}
	for i := range list.Items {
		existing[list.Items[i].Name] = &list.Items[i]
	}
	serviceIP, err := controlplane.FirstServiceIP(controlplane.ServiceCIDR(hcp))
	if err != nil {
		return nil, err
	}
	names := []string{serviceIP, PublishedAddress(hcp, hyperv1.APIServer), PublishedAddress(hcp, hyperv1.Konnectivity)}
	if hcp.Spec.DNS.BaseDomain != "" {
		names = append(names, "api."+hcp.Name+"."+hcp.Spec.DNS.BaseDomain, "api-int."+hcp.Name+"."+hcp.Spec.DNS.BaseDomain)
	}
	desired, err := controlplane.PKI(controlplane.PKIInput{Namespace: hcp.Namespace, Network: network, APIServerNames: names}, existing)
	if err != nil {
		return nil, err
	}
	out := map[string]*corev1.Secret{}
	for _, s := range desired {
		out[s.Name] = s
	}
	operatorServer := ""
	if ep := hcp.Status.ControlPlaneEndpoint; r.OperatorOutside && ep.Host != "" {
		operatorServer = "https://" + net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port)))
	}
	kubeconfigs, err := controlplane.Kubeconfigs(hcp.Namespace, network, operatorServer, out)
	if err != nil {
		return nil, err
	}
	for _, s := range kubeconfigs {
		out[s.Name] = s
	}
	// Written concurrently: a new control plane has some twenty Secrets and
	// nothing starts before they are all there.
	var wg sync.WaitGroup
	errs := make(chan error, len(out))
	for _, s := range out {
		wg.Go(func() {
			if err := r.applySecret(ctx, hcp, s); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return out, nil
}

func (r *Reconciler) ensureAdminKubeconfig(ctx context.Context, hcp *hyperv1.HostedControlPlane, server string, secrets map[string]*corev1.Secret) error {
	b, err := controlplane.AdminKubeconfig(server, hcp.Namespace, secrets)
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hcp.Namespace, Name: controlplane.SecretAdminKubeconfig},
		Data: map[string][]byte{controlplane.KeyKubeconfig: b}}
	return r.applySecret(ctx, hcp, s)
}

// publishKonnectivity records the konnectivity server's published address
// for the nodes' agents.
func (r *Reconciler) publishKonnectivity(ctx context.Context, hcp *hyperv1.HostedControlPlane, host string, port int) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: hcp.Namespace, Name: ignition.KonnectivityConfigMap}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		cm.Labels[hosted.ManagedLabel] = hcp.Name
		cm.Data = map[string]string{"host": host, "port": strconv.Itoa(port)}
		return nil
	})
	return err
}

// applySecret creates the Secret or updates its data, labelled as ours.
func (r *Reconciler) applySecret(ctx context.Context, hcp *hyperv1.HostedControlPlane, want *corev1.Secret) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, s, func() error {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[hosted.ManagedLabel] = hcp.Name
		for k, v := range want.Labels {
			s.Labels[k] = v
		}
		if len(want.Annotations) > 0 && s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range want.Annotations {
			s.Annotations[k] = v
		}
		s.Data = want.Data
		return nil
	})
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	want.ResourceVersion = s.ResourceVersion
	return nil
}

// guestSyncTimeout bounds one update of the hosted cluster's ClusterVersion
// and ClusterOperators.
const guestSyncTimeout = 5 * time.Second

// guestRetry is how soon a hosted cluster whose ClusterVersion and
// ClusterOperators could not be written (err) is tried again. Before it is
// first available, one that answered (its CRDs are being established) is
// tried again soon, since it holds Available back; one that did not answer
// does not hold Available back, and every reconcile that tries it costs a
// worker, so it waits as long as a cluster that has just become available:
// with many control planes starting at once on the Kubernetes runtime, whose
// hosted API servers the operator may not reach, retries four times a second
// kept the workers from the control planes' own progress. A cluster whose
// Available condition last changed over a minute ago is tried every half
// minute.
func guestRetry(hcp *hyperv1.HostedControlPlane, err error) time.Duration {
	if !hcp.Status.Initialized && guestAnswered(err) {
		return 250 * time.Millisecond
	}
	if c := meta.FindStatusCondition(hcp.Status.Conditions, hyperv1.ConditionAvailable); c != nil && time.Since(c.LastTransitionTime.Time) > time.Minute {
		return 30 * time.Second
	}
	return 2 * time.Second
}

// PublishedAddress is the address clients use for a service: the NodePort
// strategy's address or the LoadBalancer's or Route's host name, else 127.0.0.1.
func PublishedAddress(hcp *hyperv1.HostedControlPlane, svc hyperv1.ServiceType) string {
	for _, s := range hcp.Spec.Services {
		if s.Service != svc {
			continue
		}
		switch {
		case s.NodePort != nil && s.NodePort.Address != "":
			return s.NodePort.Address
		case s.LoadBalancer != nil && s.LoadBalancer.Hostname != "":
			return s.LoadBalancer.Hostname
		case s.Route != nil && s.Route.Hostname != "":
			return s.Route.Hostname
		}
	}
	return "127.0.0.1"
}

// runningRelease finds the release of a component's reported version: the
// releases of the control plane's history first, newest first, then any in
// the store.
func (r *Reconciler) runningRelease(hcp *hyperv1.HostedControlPlane) func(component, version string) *release.Release {
	return func(component, version string) *release.Release {
		var candidates []*release.Release
		if vs := hcp.Status.VersionStatus; vs != nil {
			for _, h := range vs.History {
				if rel, err := r.Releases.Resolve(h.Image); err == nil {
					candidates = append(candidates, rel)
				}
			}
		}
		all, _ := r.Releases.List()
		for _, rel := range append(candidates, all...) {
			if rel.Components[component] == version {
				return rel
			}
		}
		return nil
	}
}

// upgrading reports whether the control plane is rolling out a release after
// having completed another.
func upgrading(hcp *hyperv1.HostedControlPlane) bool {
	vs := hcp.Status.VersionStatus
	return vs != nil && len(vs.History) > 1 && vs.History[0].State == hyperv1.PartialUpdate
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// setVersion keeps status.versionStatus: the desired release and a history
// entry that completes when every component is ready.
func setVersion(hcp *hyperv1.HostedControlPlane, rel *release.Release, complete bool) {
	vs := hcp.Status.VersionStatus
	if vs == nil {
		vs = &hyperv1.ClusterVersionStatus{}
		hcp.Status.VersionStatus = vs
	}
	vs.Desired = hyperv1.Release{Image: rel.Image}
	vs.ObservedGeneration = hcp.Generation
	vs.Components = rel.Components
	if len(vs.History) == 0 || vs.History[0].Image != rel.Image {
		vs.History = append([]hyperv1.UpdateHistory{{State: hyperv1.PartialUpdate, StartedTime: metav1.Now(),
			Version: rel.Name, Image: rel.Image}}, vs.History...)
	}
	if complete && vs.History[0].State != hyperv1.CompletedUpdate {
		now := metav1.Now()
		vs.History[0].State, vs.History[0].CompletionTime = hyperv1.CompletedUpdate, &now
	}
}

// noteOf is an endpoint's note as the end of a condition message.
func noteOf(ep controlplane.Endpoint) string {
	if ep.Note == "" {
		return ""
	}
	return " (" + ep.Note + ")"
}
