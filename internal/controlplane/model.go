// Package controlplane describes a hosted control plane as data: its PKI and
// kubeconfigs (as Secrets) and a runtime-neutral list of components, each with
// a replica count, command, argument and file templates, ports, probes,
// resources, priority and placement. Where a replica is (its addresses, the
// names it reaches others by) is a runtime's Network, which fills in the
// templates' placement variables. Runtimes (internal/runtime/local,
// internal/runtime/kubernetes) interpret that description; nothing here starts
// anything.
//
// Arguments name files under MountRoot (one directory per volume) and data under
// DataRoot; a runtime maps those roots to where it keeps them.
package controlplane

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// Roots of the paths used in component arguments.
const (
	// MountRoot holds one directory per volume: MountRoot/<volume>/<key>.
	MountRoot = "/etc/hcp"
	// DataRoot holds a component's persistent data: DataRoot/<component>.
	DataRoot = "/var/lib/hcp"
)

// Component names.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	KonnectivityServer    = "konnectivity-server"
)

// Priority classes, from the documentation of hosted control planes.
const (
	PriorityEtcd         = "hypershift-etcd"
	PriorityAPICritical  = "hypershift-api-critical"
	PriorityControlPlane = "hypershift-control-plane"
)

// ControlPlane is everything a runtime needs to run one hosted control plane.
type ControlPlane struct {
	// Namespace is the control plane namespace.
	Namespace string
	// Components in start order: a component may depend on the ones before it.
	Components []Component
	// Published are the services reachable from outside the control plane.
	Published []PublishedService
	// Placement says which management nodes may run the control plane's pods
	// (Kubernetes runtime).
	Placement Placement
	// Image, when set, is the image control plane pods run instead of the
	// release's (Kubernetes runtime).
	Image string
	// Secrets are the control plane namespace's Secrets as the reconciler
	// wrote them, by name: the runtime does not read them again.
	Secrets map[string]*corev1.Secret `json:"-"`
	// Storage is the StorageClass of the persistent components, resolved.
	Storage *storagev1.StorageClass `json:"-"`
}

// Placement constrains where a control plane's pods run.
type Placement struct {
	// HighlyAvailable spreads each component's replicas over zones and hosts.
	HighlyAvailable bool
	// NodeSelector is added to every pod.
	NodeSelector map[string]string
	// Tolerations are added to every pod.
	Tolerations []corev1.Toleration
	// Topology is "", hyperv1.DedicatedRequestServingTopology or
	// hyperv1.DedicatedTopology.
	Topology string
}

// Component is one control plane program and its replicas.
type Component struct {
	// Name is the component's name, e.g. kube-apiserver.
	Name string
	// Binary is the release payload's executable for it.
	Binary string
	// Release is the release payload whose Binary it runs; Version is that
	// release's version of it. A change of Version restarts the replicas
	// one at a time; Release itself is not part of the specification.
	Release *release.Release `json:"-"`
	Version string
	// Replicas is how many instances run.
	Replicas int
	// Args are every replica's command-line arguments: a template in which
	// the placement variables (see Var) stand for where the replica is.
	Args []string
	// Files are configuration files of each replica, mounted as
	// MountRoot/ReplicaVolume/<name>: templates too.
	Files map[string]string `json:",omitempty"`
	// Volumes are Secrets mounted as files under MountRoot/<volume name>.
	Volumes []Volume
	// Persistent marks a component whose DataRoot/<name> survives restarts
	// (etcd); its storage comes from StorageClass.
	Persistent bool
	// StorageClass and StorageSize describe the persistent volume.
	StorageClass string
	StorageSize  string
	// Probe says how readiness is checked.
	Probe Probe
	// PriorityClass is the scheduling priority of the component's pods.
	PriorityClass string
	// RequestServing marks components that serve requests from outside.
	RequestServing bool
	// Resources are the requests of one replica.
	Resources Resources
	// Env is added to the environment (e.g. GOMEMLIMIT).
	Env []string
	// StopGrace is how long a replica may take to stop after it is asked to
	// before it is killed; 0: the runtime's default. Not part of the
	// specification.
	StopGrace time.Duration `json:"-"`
	// Restore, for etcd, is what each member's data directory is restored
	// from before the member first starts (a cluster created from a
	// backup): a snapshot file on the local runtime, the archive's http(s)
	// URL on the Kubernetes runtime (part of its pods' specification there).
	// A member that has data keeps it. Not part of the specification.
	Restore string `json:"-"`
	// ConfigDigest changes when a file the component reads only as it
	// starts changes (the API server's encryption configuration): a change
	// restarts its replicas, one at a time, as any change of its
	// specification does.
	ConfigDigest string `json:",omitempty"`
	// StartAfter names a component that must have a ready replica before this
	// one starts (kube-controller-manager and kube-scheduler wait for
	// kube-apiserver instead of crash-looping and taking CPU from it).
	StartAfter string
}

// Replica is one instance of a component, placed: its template with the
// placement variables filled in.
type Replica struct {
	// Host is the address the replica listens on.
	Host string
	// Args are its command-line arguments.
	Args []string
	// Files are configuration files of this replica only, mounted as
	// MountRoot/ReplicaVolume/<name>.
	Files map[string]string
}

// ReplicaVolume is the volume holding a replica's own Files.
const ReplicaVolume = "replica"

// Volume mounts one Secret's keys as files.
type Volume struct {
	// Name is the directory under MountRoot.
	Name string
	// Secret is the Secret in the control plane namespace.
	Secret string
}

// Probe is a readiness check: an HTTPS GET (trusting the root CA, with the
// client certificate of Secret when set), or HTTP when Scheme says so.
type Probe struct {
	// Scheme is https (the default) or http.
	Scheme string
	// Port on the replica's host.
	Port int
	// Path, e.g. /readyz or /health.
	Path string
	// Secret holds the CA (ca.crt) and client certificate (tls.crt, tls.key)
	// used to probe.
	Secret string
}

// Resources are resource requests.
type Resources struct {
	CPU    string
	Memory string
}

// PublishedService is a service exposed outside the control plane: clients
// reach Port on the runtime's public address, which forwards to TargetPort on
// the hosts of Component's replicas.
type PublishedService struct {
	// Service is the HostedCluster service type (APIServer, Konnectivity, ...).
	Service string
	// Component serves it.
	Component string
	// TargetPort is the port on the component's hosts.
	TargetPort int
	// Port is the requested public port; 0 lets the runtime choose.
	Port int
	// Strategy is how the HostedControlPlane publishes it (a service the spec
	// does not name is published as the API server is).
	Strategy hyperv1.ServicePublishingStrategy
}

// Endpoint is where clients reach a published service.
type Endpoint struct {
	// Host is the address; empty means the one the HostedControlPlane's spec names.
	Host string
	Port int
	// Note says why the port is not the one users expect, if it is not.
	Note string
}

// Endpoints are the published services of a control plane, by service type.
type Endpoints map[string]Endpoint

// Hash is a stable digest of a component's specification: a runtime restarts
// replicas when it changes.
func (c Component) Hash() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
