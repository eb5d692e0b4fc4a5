// Package kubernetes runs hosted control planes as workloads of a Kubernetes
// management cluster: from the runtime-neutral component model it makes, in
// each control plane namespace, an etcd StatefulSet with persistent volumes,
// Deployments for the other components, Services as the HostedCluster
// publishes them, PodDisruptionBudgets and NetworkPolicies, placed by the
// rules of hosted control planes and decided by the cluster's own scheduler.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/release"
)

// FieldOwner is the server-side apply field manager of the runtime.
const FieldOwner = "hcp-operator"

// Options configure the runtime.
type Options struct {
	// Client writes to the management cluster.
	Client client.Client
	// Reader reads from it without a cache (pods, nodes, services are not
	// worth caching cluster-wide).
	Reader client.Reader
	Log    logr.Logger
	// ImageRepository is where pods pull hcp's images from: a release's
	// control plane image is <ImageRepository>/control-plane@<digest>.
	ImageRepository string
}

// Runtime runs control planes in the management cluster.
type Runtime struct {
	opts Options
	mu   sync.Mutex
	// order is each control plane's component names in start order.
	order map[string][]string
	// applied is the digest of what was last applied to each namespace.
	applied map[string]string
	// held is, per namespace, the components not started yet and what each
	// waits for.
	held map[string]map[string]heldComponent
	// backupImages is each release's backup image (BackupImage).
	backupImages map[string]string
}

// heldComponent is a component not started yet: its replicas and what it
// waits for.
type heldComponent struct {
	replicas int32
	after    string
}

// repository is where pods pull hcp's images from.
func (r *Runtime) repository() string {
	if r.opts.ImageRepository != "" {
		return r.opts.ImageRepository
	}
	return images.DefaultRepository
}

// New returns a runtime.
func New(opts Options) *Runtime {
	return &Runtime{opts: opts, order: map[string][]string{}, applied: map[string]string{}, held: map[string]map[string]heldComponent{},
		backupImages: map[string]string{}}
}

// Network: replicas listen on their pods' addresses and find one another
// through the namespace's Services.
func (r *Runtime) Network(namespace string, _ int) (controlplane.Network, error) {
	return PodsIn(namespace), nil
}

// Apply makes the control plane's objects match cp with server-side apply and
// returns its published ports.
func (r *Runtime) Apply(ctx context.Context, cp *controlplane.ControlPlane, rel *release.Release) (controlplane.Endpoints, error) {
	ns := &corev1.Namespace{}
	if err := r.opts.Reader.Get(ctx, client.ObjectKey{Name: cp.Namespace}, ns); err != nil {
		return nil, fmt.Errorf("control plane namespace: %w", err)
	}
	if err := r.restrict(ctx, ns); err != nil {
		return nil, err
	}
	routes := r.routesServed()
	for _, p := range cp.Published {
		if p.Strategy.Type == hyperv1.Route && !routes {
			return nil, fmt.Errorf("spec.services[%s]: the Route API is not served by this management cluster; use NodePort or LoadBalancer", p.Service)
		}
	}
	dedicated, err := r.dedicatedNodes(ctx)
	if err != nil {
		return nil, err
	}
	started, held := r.startable(ctx, cp)
	image := cp.Image
	if image == "" {
		image = rel.ImageRef(r.repository(), images.ControlPlaneImage)
	}
	// While a release rolls out, components not at its stage yet run the
	// image of the release they run.
	perComponent := map[string]string{}
	for _, c := range started.Components {
		if cp.Image == "" && c.Release != nil && c.Release != rel {
			perComponent[c.Name] = c.Release.ImageRef(r.repository(), images.ControlPlaneImage)
		}
	}
	backupImage := ""
	for _, c := range started.Components {
		if c.Restore != "" {
			if backupImage, err = r.BackupImage(rel); err != nil {
				return nil, err
			}
		}
	}
	objs, err := Render(Input{ControlPlane: started, Image: image, Images: perComponent, UID: UIDFor(ns.Name, ns.Annotations), DedicatedNodes: dedicated,
		BackupImage: backupImage})
	if err != nil {
		return nil, err
	}
	digest, err := digestOf(objs)
	if err != nil {
		return nil, err
	}
	if !r.upToDate(ctx, cp.Namespace, digest, objs) {
		for _, o := range objs {
			if err := apply.Object(ctx, r.opts.Client, o, FieldOwner); err != nil {
				return nil, err
			}
		}
		r.mu.Lock()
		r.applied[cp.Namespace] = digest
		r.mu.Unlock()
	}
	var names []string
	for _, c := range cp.Components {
		names = append(names, c.Name)
	}
	r.mu.Lock()
	r.order[cp.Namespace] = names
	r.held[cp.Namespace] = held
	r.mu.Unlock()
	return r.endpoints(ctx, cp)
}

// startable is the control plane without the components that are not
// created yet and wait for another one to have a ready replica (the
// controller manager and scheduler fail at start without an API server);
// held names each of those with what it waits for. A component once created
// stays, whatever happens to the one it waited for.
func (r *Runtime) startable(ctx context.Context, cp *controlplane.ControlPlane) (*controlplane.ControlPlane, map[string]heldComponent) {
	out := *cp
	out.Components = nil
	held := map[string]heldComponent{}
	for _, c := range cp.Components {
		if c.StartAfter != "" && !r.exists(ctx, cp.Namespace, c) && !r.ready(ctx, cp.Namespace, c.StartAfter) {
			held[c.Name] = heldComponent{replicas: int32(c.Replicas), after: c.StartAfter}
			continue
		}
		out.Components = append(out.Components, c)
	}
	return &out, held
}

// exists says whether a component's workload exists.
func (r *Runtime) exists(ctx context.Context, namespace string, c controlplane.Component) bool {
	var probe client.Object = &appsv1.Deployment{}
	if c.Persistent {
		probe = &appsv1.StatefulSet{}
	}
	return r.opts.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: c.Name}, probe) == nil
}

// ready says whether a component's workload has a ready replica.
func (r *Runtime) ready(ctx context.Context, namespace, name string) bool {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	d := &appsv1.Deployment{}
	if err := r.opts.Client.Get(ctx, key, d); err == nil {
		return d.Status.ReadyReplicas > 0
	}
	s := &appsv1.StatefulSet{}
	return r.opts.Client.Get(ctx, key, s) == nil && s.Status.ReadyReplicas > 0
}

// routesServed says whether the management cluster serves OpenShift's Route API.
func (r *Runtime) routesServed() bool {
	_, err := r.opts.Client.RESTMapper().RESTMapping(routeGVK.GroupKind(), routeGVK.Version)
	return err == nil
}

// upToDate says whether objs were applied last time and their workloads still
// exist (read from the operator's cache, which watches them): a control plane
// that has not changed costs no writes.
func (r *Runtime) upToDate(ctx context.Context, namespace, digest string, objs []client.Object) bool {
	r.mu.Lock()
	same := r.applied[namespace] == digest
	r.mu.Unlock()
	if !same {
		return false
	}
	for _, o := range objs {
		var probe client.Object
		switch o.(type) {
		case *appsv1.Deployment:
			probe = &appsv1.Deployment{}
		case *appsv1.StatefulSet:
			probe = &appsv1.StatefulSet{}
		default:
			continue
		}
		if err := r.opts.Client.Get(ctx, client.ObjectKeyFromObject(o), probe); err != nil {
			return false
		}
	}
	return true
}

func digestOf(objs []client.Object) (string, error) {
	h := sha256.New()
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// restrict makes the namespace enforce the restricted Pod Security level.
func (r *Runtime) restrict(ctx context.Context, ns *corev1.Namespace) error {
	missing := false
	for k, v := range podSecurityLabels {
		if ns.Labels[k] != v {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	for k, v := range podSecurityLabels {
		ns.Labels[k] = v
	}
	return r.opts.Client.Patch(ctx, ns, patch)
}

// dedicatedNodes says whether some management nodes are labelled to run
// control planes; then control planes run only on such nodes.
func (r *Runtime) dedicatedNodes(ctx context.Context) (bool, error) {
	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := r.opts.Reader.List(ctx, nodes, client.MatchingLabels{hyperv1.ControlPlaneLabel: "true"}, client.Limit(1)); err != nil {
		return false, fmt.Errorf("listing control plane nodes: %w", err)
	}
	return len(nodes.Items) > 0, nil
}

func (r *Runtime) endpoints(ctx context.Context, cp *controlplane.ControlPlane) (controlplane.Endpoints, error) {
	out := controlplane.Endpoints{}
	for _, p := range cp.Published {
		name := publishedServiceName(p.Service)
		strategy := p.Strategy
		if strategy.Type == hyperv1.Route {
			route := &unstructured.Unstructured{}
			route.SetGroupVersionKind(routeGVK)
			if err := r.opts.Reader.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, route); err != nil {
				return nil, err
			}
			host, _, _ := unstructured.NestedString(route.Object, "spec", "host")
			if host == "" {
				return nil, fmt.Errorf("waiting for the router to give Route %s/%s a host name", cp.Namespace, name)
			}
			out[p.Service] = controlplane.Endpoint{Host: host, Port: 443}
			continue
		}
		svc := &corev1.Service{}
		if err := r.opts.Reader.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, svc); err != nil {
			return nil, err
		}
		port := svc.Spec.Ports[0]
		switch svc.Spec.Type {
		case corev1.ServiceTypeNodePort:
			ep := controlplane.Endpoint{Port: int(port.NodePort)}
			if strategy.NodePort != nil {
				ep.Host = strategy.NodePort.Address
			}
			out[p.Service] = ep
		case corev1.ServiceTypeLoadBalancer:
			ep := controlplane.Endpoint{Port: int(port.Port)}
			if strategy.LoadBalancer != nil {
				ep.Host = strategy.LoadBalancer.Hostname
			}
			if ep.Host == "" {
				for _, in := range svc.Status.LoadBalancer.Ingress {
					if ep.Host = in.Hostname; ep.Host == "" {
						ep.Host = in.IP
					}
					break
				}
			}
			if ep.Host == "" {
				return nil, fmt.Errorf("waiting for Service %s/%s to get a load balancer address", cp.Namespace, name)
			}
			out[p.Service] = ep
		default:
			out[p.Service] = controlplane.Endpoint{Host: name + "." + cp.Namespace + ".svc", Port: int(port.Port)}
		}
	}
	return out, nil
}

// Status is each component's replicas and ready replicas from its workload;
// for replicas that are not ready it says why (e.g. the scheduler's reason).
func (r *Runtime) Status(namespace string) []hyperv1.ComponentStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.mu.Lock()
	order := slices.Clone(r.order[namespace])
	held := r.held[namespace]
	r.mu.Unlock()
	var out []hyperv1.ComponentStatus
	for _, name := range order {
		st := hyperv1.ComponentStatus{Name: name}
		if h, ok := held[name]; ok {
			st.Replicas, st.Message = h.replicas, fmt.Sprintf("starts once %s has a ready replica", h.after)
			out = append(out, st)
			continue
		}
		key := client.ObjectKey{Namespace: namespace, Name: name}
		d, s := &appsv1.Deployment{}, &appsv1.StatefulSet{}
		switch err := r.opts.Client.Get(ctx, key, d); {
		case err == nil:
			st.Replicas, st.ReadyReplicas, st.UpdatedReplicas = deploymentReplicas(d)
			st.Version = d.Annotations[VersionAnnotation]
		case apierrors.IsNotFound(err):
			if err := r.opts.Client.Get(ctx, key, s); err != nil {
				st.Message = err.Error()
				break
			}
			st.Replicas, st.ReadyReplicas, st.Version = ptrValue(s.Spec.Replicas), s.Status.ReadyReplicas, s.Annotations[VersionAnnotation]
			if s.Status.ObservedGeneration >= s.Generation {
				st.UpdatedReplicas = min(s.Status.UpdatedReplicas, s.Status.ReadyReplicas)
				if s.Status.UpdateRevision != "" && s.Status.CurrentRevision == s.Status.UpdateRevision {
					st.UpdatedReplicas = s.Status.ReadyReplicas
				}
			}
		default:
			st.Message = err.Error()
		}
		if st.ReadyReplicas < st.Replicas && st.Message == "" {
			st.Message = r.whyNotReady(ctx, namespace, name)
		}
		out = append(out, st)
	}
	return out
}

// deploymentReplicas are a Deployment's desired, ready and updated replicas.
// Updated counts only once the rollout is over: the controller saw this spec,
// and no pod of an older one is left, running or stopping. A stopping pod
// still serves (an API server through its shutdown delay, to the clients
// whose connections it holds), so an API server that has not learnt an
// encryption key yet could still take the requests that rewrite Secrets with
// it. Without the terminating count (a management cluster whose controller
// manager lacks the DeploymentReplicaSetTerminatingReplicas feature) stopping
// pods are not seen.
func deploymentReplicas(d *appsv1.Deployment) (replicas, ready, updated int32) {
	replicas, ready = ptrValue(d.Spec.Replicas), d.Status.ReadyReplicas
	if d.Status.ObservedGeneration < d.Generation {
		return replicas, ready, 0
	}
	updated = min(d.Status.UpdatedReplicas, ready)
	if d.Status.Replicas > replicas || ptr.Deref(d.Status.TerminatingReplicas, 0) > 0 {
		updated = min(updated, replicas-1)
	}
	return replicas, ready, updated
}

// whyNotReady is the first reason a component's pods give for not being
// ready, in the words of whoever knows: the kubelet (an image it cannot
// pull, a container that keeps failing), the scheduler (no node fits), or,
// when there are no pods, the controller that could not create them.
func (r *Runtime) whyNotReady(ctx context.Context, namespace, component string) string {
	pods := &corev1.PodList{}
	if err := r.opts.Reader.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{AppLabel: component}); err != nil {
		return err.Error()
	}
	if len(pods.Items) == 0 {
		if why := r.whyNoPods(ctx, namespace, component); why != "" {
			return why
		}
		return "no pods yet"
	}
	for i := range pods.Items {
		if why := PodProblem(&pods.Items[i]); why != "" {
			return why
		}
	}
	return "waiting for pods to become ready"
}

// PodProblem is what keeps a pod from being ready, if anyone said: a
// container's waiting reason other than being created, else a condition's
// message (the scheduler's, for a pod no node fits); with how a container
// that restarted last ended (its termination message's last line: the
// kubelet falls back to the log's tail where the pod asks for it).
func PodProblem(p *corev1.Pod) string {
	statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := fmt.Sprintf("pod %s: container %s: %s", p.Name, cs.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg + lastExit(cs)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			msg := fmt.Sprintf("pod %s: %s", p.Name, c.Message)
			for _, cs := range statuses {
				if !cs.Ready && cs.RestartCount > 0 {
					return msg + lastExit(cs)
				}
			}
			return msg
		}
	}
	return ""
}

// lastExit is how a container last ended, if it did.
func lastExit(cs corev1.ContainerStatus) string {
	t := cs.LastTerminationState.Terminated
	if t == nil {
		return ""
	}
	s := fmt.Sprintf(" (last exit: %s, code %d", t.Reason, t.ExitCode)
	lines := strings.Split(strings.TrimSpace(t.Message), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		s += ": " + last
	}
	return s + ")"
}

// whyNoPods is why a component's workload has no pods: its ReplicaFailure
// condition (Deployments) or its latest FailedCreate event (StatefulSets).
func (r *Runtime) whyNoPods(ctx context.Context, namespace, component string) string {
	d := &appsv1.Deployment{}
	if err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: component}, d); err == nil {
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
				return c.Message
			}
		}
	}
	events := &corev1.EventList{}
	if err := r.opts.Reader.List(ctx, events, client.InNamespace(namespace)); err != nil {
		return ""
	}
	var latest *corev1.Event
	for i := range events.Items {
		e := &events.Items[i]
		if e.Reason != "FailedCreate" || e.InvolvedObject.Name != component {
			continue
		}
		if latest == nil || eventTime(e).After(eventTime(latest)) {
			latest = e
		}
	}
	if latest == nil {
		return ""
	}
	return latest.Message
}

func eventTime(e *corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

// Delete removes every object the runtime made in the namespace, volumes
// included, and reports an error while some remain.
func (r *Runtime) Delete(ctx context.Context, namespace string) error {
	sel := client.MatchingLabels{ManagedByLabel: managedBy}
	in := client.InNamespace(namespace)
	kinds := []client.Object{&appsv1.StatefulSet{}, &appsv1.Deployment{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{},
		&networkingv1.NetworkPolicy{}, &corev1.ConfigMap{}, &corev1.PersistentVolumeClaim{}}
	if r.routesServed() {
		route := &unstructured.Unstructured{}
		route.SetGroupVersionKind(routeGVK)
		kinds = append(kinds, route)
	}
	var errs []error
	for _, k := range kinds {
		if err := r.opts.Client.DeleteAllOf(ctx, k, in, sel, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.order, namespace)
	delete(r.applied, namespace)
	delete(r.held, namespace)
	r.mu.Unlock()
	return nil
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
