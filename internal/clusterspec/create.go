package clusterspec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

var storageClassGVK = schema.GroupVersionKind{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}

// Create checks the Spec against the management cluster, then applies its
// objects with field owner owner. The client's credentials decide what the
// caller may do; nothing half-created stays when a write fails.
func Create(ctx context.Context, c client.Client, s *Spec, in *Inputs, owner string) ([]client.Object, error) {
	if err := CheckAgainstCluster(ctx, c, s); err != nil {
		return nil, err
	}
	if err := EnsureNamespace(ctx, c, s.Namespace); err != nil {
		return nil, err
	}
	objs := Objects(s, in)
	return objs, ApplyAll(ctx, c, objs, owner)
}

// CheckAgainstCluster checks what needs the management cluster: the name is not
// used in another namespace, the agent namespace and the StorageClass exist.
func CheckAgainstCluster(ctx context.Context, c client.Client, s *Spec) error {
	all := &hyperv1.HostedClusterList{}
	if err := c.List(ctx, all); err == nil {
		for _, hc := range all.Items {
			if hc.Name == s.Name && hc.Namespace != s.Namespace {
				return Invalid("name", fmt.Sprintf("a HostedCluster named %q already exists in namespace %q; names must be unique across the management cluster", s.Name, hc.Namespace), "another-name")
			}
		}
	} else if !apierrors.IsForbidden(err) {
		return fmt.Errorf("listing HostedClusters: %w", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: s.AgentNamespace}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
		return Invalid("agent-namespace", fmt.Sprintf("namespace %q does not exist; create it first (kubectl create namespace %s)", s.AgentNamespace, s.AgentNamespace), hosted.ControlPlaneNamespace(s.Namespace, s.Name))
	} else if err != nil && !apierrors.IsForbidden(err) {
		return err
	}
	// A release the operator does not serve would only fail once the
	// HostedCluster exists. Without a published list (no operator yet, or no
	// right to read it) the operator checks it later.
	if served, err := release.Served(ctx, c); err == nil && !slices.Contains(served, s.ReleaseImage) {
		example := "hcp.dev/release:1.37.2"
		if len(served) > 0 {
			example = served[len(served)-1]
		}
		return Invalid("release-image", fmt.Sprintf("%q is not a release this management cluster serves (available: %s; hcp version lists them)", s.ReleaseImage, strings.Join(served, ", ")), example)
	}
	if s.EtcdStorageClass != "" {
		sc := &metav1.PartialObjectMetadata{}
		sc.SetGroupVersionKind(storageClassGVK)
		if err := c.Get(ctx, client.ObjectKey{Name: s.EtcdStorageClass}, sc); apierrors.IsNotFound(err) {
			example := "local"
			if def, derr := hosted.ResolveStorageClass(ctx, c, ""); derr == nil {
				example = def.Name
			}
			return Invalid("etcd-storage-class", fmt.Sprintf("StorageClass %q does not exist (kubectl get storageclass lists them)", s.EtcdStorageClass), example)
		} else if err != nil && !apierrors.IsForbidden(err) {
			return err
		}
	}
	return nil
}

// EnsureNamespace creates a namespace unless it exists.
func EnsureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns); err == nil {
		return nil
	}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// ApplyAll applies objects in order. When one fails, the objects that did not
// exist before this call are deleted, so nothing half-created stays.
func ApplyAll(ctx context.Context, c client.Client, objs []client.Object, owner string) error {
	var created []client.Object
	for _, obj := range objs {
		probe := &metav1.PartialObjectMetadata{}
		probe.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		existed := c.Get(ctx, client.ObjectKeyFromObject(obj), probe) == nil
		err := apply.Object(ctx, c, obj, owner)
		if err == nil {
			if !existed {
				created = append(created, obj)
			}
			continue
		}
		var undo []error
		for i := len(created) - 1; i >= 0; i-- {
			if derr := c.Delete(ctx, created[i]); derr != nil && !apierrors.IsNotFound(derr) {
				undo = append(undo, derr)
			}
		}
		return errors.Join(append([]error{err}, undo...)...)
	}
	return nil
}

// DefaultAPIServerAddress is where hosted API servers are reached when no
// address is given: the first management node's internal address, as
// HyperShift does, or the host of the management API (apiHost, from its URL),
// as under hcp up, which has no nodes.
func DefaultAPIServerAddress(ctx context.Context, c client.Client, apiURL string) (string, error) {
	nodes := &corev1.NodeList{}
	if err := c.List(ctx, nodes, client.Limit(20)); err == nil {
		for _, n := range nodes.Items {
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					return a.Address, nil
				}
			}
		}
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return "", err
	}
	host := u.Hostname()
	if host == "" {
		return "", Invalid("api-server-address", fmt.Sprintf("cannot tell the API server address from %q; give one", apiURL), "api.example.krnl.es")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", Invalid("api-server-address", fmt.Sprintf("cannot tell the API server address from %q; give one", apiURL), "api.example.krnl.es")
	}
	return host, nil
}
