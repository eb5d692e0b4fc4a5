// Package hosted holds the rules that several parts of hcp derive from a hosted
// cluster's objects: where its control plane lives, what its objects are
// called, how many replicas a policy means, which StorageClass holds etcd,
// when an Agent counts as bound, and how a machine names its Agent. The
// controllers, the infrastructure service, the ignition server, the CLI and the
// console import these instead of each other, so each rule has one definition.
package hosted

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/release"
)

// ControlPlaneNamespace is the namespace of a HostedCluster's control plane:
// <namespace>-<name>, as the seeds name it.
func ControlPlaneNamespace(namespace, name string) string { return namespace + "-" + name }

// ManagedLabel marks the objects made for a hosted control plane (its Secrets,
// ConfigMaps, Cluster API objects) with the HostedCluster's name.
const ManagedLabel = "hypershift.openshift.io/hosted-control-plane"

// Default networks of a hosted cluster.
const (
	DefaultServiceCIDR = "172.31.0.0/16"
	DefaultClusterCIDR = "10.132.0.0/14"
)

// DefaultControlPlanePolicy is the availability policy a new cluster gets
// when none is given (hcp create cluster agent, the console's wizard).
const DefaultControlPlanePolicy = hyperv1.HighlyAvailable

// Replicas returns how many replicas a policy runs of each kind of control
// plane component: etcd members, API servers and their konnectivity servers
// (quorum), and the leader-elected controllers (others).
func Replicas(policy hyperv1.AvailabilityPolicy) (quorum, others int) {
	if policy == hyperv1.HighlyAvailable {
		return 3, 2
	}
	return 1, 1
}

// StorageClassName is the StorageClass a HostedCluster's etcd spec names, ""
// for the default one.
func StorageClassName(etcd hyperv1.EtcdSpec) string {
	if m := etcd.Managed; m != nil && m.Storage.PersistentVolume != nil && m.Storage.PersistentVolume.StorageClassName != nil {
		return *m.Storage.PersistentVolume.StorageClassName
	}
	return ""
}

// ResolveStorageClass returns the StorageClass name when it exists, or the
// default StorageClass when name is empty.
func ResolveStorageClass(ctx context.Context, c client.Reader, name string) (*storagev1.StorageClass, error) {
	if name != "" {
		sc := &storagev1.StorageClass{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, sc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("StorageClass %q does not exist; set spec.etcd.managed.storage.persistentVolume.storageClassName to an existing one (kubectl get storageclass)", name)
			}
			return nil, err
		}
		return sc, nil
	}
	list := &storagev1.StorageClassList{}
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no StorageClass is named for etcd and there is no default StorageClass; set spec.etcd.managed.storage.persistentVolume.storageClassName")
}

// Names of a NodePool's Secrets in the control plane namespace.

// TokenSecret holds a NodePool's ignition and bootstrap tokens.
func TokenSecret(nodePool string) string { return "token-" + nodePool }

// UserDataSecret holds a NodePool's machines' user data (the Ignition pointer).
func UserDataSecret(nodePool string) string { return "user-data-" + nodePool }

// Names of the Secrets a HostedCluster's control plane namespace gets from
// its spec.
const (
	PullSecretName = "pull-secret"
	SSHKeySecret   = "ssh-key"
	// EncryptionKeyPrefix prefixes the copies of a HostedCluster's
	// encryption key Secrets in its control plane namespace.
	EncryptionKeyPrefix = "secret-encryption-"
)

// Bound says whether an Agent is bound to a cluster.
func Bound(a *agentv1.Agent) bool { return a.Spec.ClusterDeploymentName != nil }

// Hostname is a host's name: spec.hostname when set, else the reported one.
func Hostname(a *agentv1.Agent) string {
	if a.Spec.Hostname != "" {
		return a.Spec.Hostname
	}
	return a.Status.Inventory.Hostname
}

// providerIDPrefix starts the provider ID of a node that runs on an Agent.
const providerIDPrefix = "agent://"

// ProviderID is the provider ID of the node that runs on the Agent (its host ID).
func ProviderID(agent string) string { return providerIDPrefix + agent }

// AgentOf is the Agent a provider ID names, or "" when it names none.
func AgentOf(providerID string) string {
	name, ok := strings.CutPrefix(providerID, providerIDPrefix)
	if !ok {
		return ""
	}
	return name
}

// ReleaseImageNotFound is the ValidReleaseImage reason of a release image that
// is not one of the served releases.
const ReleaseImageNotFound = "ReleaseImageNotFound"

// ReleaseImage resolves a HostedCluster's or HostedControlPlane's release
// image among the served releases: the release (nil when it is none of them)
// and the ValidReleaseImage condition that says so.
func ReleaseImage(store release.Store, image string, generation int64) (*release.Release, metav1.Condition) {
	rel, err := store.Resolve(image)
	if err != nil {
		return nil, metav1.Condition{Type: hyperv1.ConditionValidReleaseImage, Status: metav1.ConditionFalse, Reason: ReleaseImageNotFound,
			Message: fmt.Sprintf("spec.release.image: %v; use one of the available releases (hcp version lists them)", err), ObservedGeneration: generation}
	}
	return rel, metav1.Condition{Type: hyperv1.ConditionValidReleaseImage, Status: metav1.ConditionTrue, Reason: "AsExpected",
		Message: "Release " + rel.Image + " is available", ObservedGeneration: generation}
}

// Ineligible says why an Agent's host may not be installed as a worker of any
// cluster ("" when it may): it is being deleted, is not approved, or fails its
// validations. Binding it to a machine and starting its installation both
// require this; each adds what is its own (unbound and connected; bound and
// not started).
func Ineligible(a *agentv1.Agent) string {
	switch {
	case !a.DeletionTimestamp.IsZero():
		return IneligibleDeleting
	case !a.Spec.Approved:
		return IneligibleNotApproved
	case !meta.IsStatusConditionTrue(a.Status.Conditions, agentv1.ValidatedCondition):
		return IneligibleNotValidated
	}
	return ""
}

// What Ineligible says.
const (
	IneligibleDeleting     = "is being deleted"
	IneligibleNotApproved  = "is not approved"
	IneligibleNotValidated = "is not validated"
)

// ServiceCIDR is a cluster's service network: the first one its networking
// names, else the default.
func ServiceCIDR(n hyperv1.ClusterNetworking) string {
	if len(n.ServiceNetwork) > 0 {
		return string(n.ServiceNetwork[0].CIDR)
	}
	return DefaultServiceCIDR
}

// ClusterCIDR is a cluster's pod network: the first one its networking
// names, else the default.
func ClusterCIDR(n hyperv1.ClusterNetworking) string {
	if len(n.ClusterNetwork) > 0 {
		return string(n.ClusterNetwork[0].CIDR)
	}
	return DefaultClusterCIDR
}

// ServiceIP is the i-th address of a service network: 1 is the kubernetes
// Service's, DNSServiceIndex the cluster DNS's.
func ServiceIP(cidr string, i int) (string, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("service network %q: %w", cidr, err)
	}
	ip := n.IP.To16()
	v := new(big.Int).SetBytes(ip)
	v.Add(v, big.NewInt(int64(i)))
	b := v.FillBytes(make([]byte, len(ip)))
	if !n.Contains(b) {
		return "", fmt.Errorf("service network %q has no address %d", cidr, i)
	}
	return net.IP(b).String(), nil
}

// DNSServiceIndex places the cluster DNS Service at the tenth address of the
// service network, where kubelets are told to find it.
const DNSServiceIndex = 10

// Paused says whether spec.pausedUntil pauses reconciliation at now, and for
// how long: "true" pauses until the field changes (wait 0), an RFC 3339 time
// until then. Anything else pauses nothing and is reported as invalid.
func Paused(pausedUntil *string, now time.Time) (paused bool, wait time.Duration, err error) {
	if pausedUntil == nil || *pausedUntil == "" {
		return false, 0, nil
	}
	if *pausedUntil == "true" {
		return true, 0, nil
	}
	until, err := time.Parse(time.RFC3339, *pausedUntil)
	if err != nil {
		return false, 0, fmt.Errorf("spec.pausedUntil: %q is neither \"true\" nor an RFC 3339 time (e.g. 2026-12-31T00:00:00Z)", *pausedUntil)
	}
	if now.Before(until) {
		return true, until.Sub(now), nil
	}
	return false, 0, nil
}

// CheckEncryptionKey says what is wrong with an AES key for Secrets at rest
// (the bytes under an encryption key Secret's key "key"), or nil.
func CheckEncryptionKey(secret []byte) error {
	switch len(secret) {
	case 16, 24, 32:
		return nil
	case 0:
		return fmt.Errorf("has no key %q", "key")
	}
	return fmt.Errorf("key %q holds %d bytes; an AES key is 16, 24 or 32 random bytes (e.g. head -c 32 /dev/urandom)", "key", len(secret))
}
