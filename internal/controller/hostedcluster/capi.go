package hostedcluster

import (
	"context"
	"fmt"

	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// ensureClusterAPI keeps the Cluster API objects of a hosted cluster in its
// control plane namespace: the Cluster <infraID>, whose control plane is the
// HostedControlPlane and whose infrastructure is the AgentCluster <infraID>.
// Machines of the cluster's NodePools belong to this Cluster.
func (r *Reconciler) ensureClusterAPI(ctx context.Context, hc *hyperv1.HostedCluster, hcp *hyperv1.HostedControlPlane, cpns string) error {
	ep := hcp.Status.ControlPlaneEndpoint
	ac := &capiproviderv1.AgentCluster{}
	ac.Namespace, ac.Name = cpns, hc.Spec.InfraID
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, ac, func() error {
		if ac.Labels == nil {
			ac.Labels = map[string]string{}
		}
		ac.Labels[hosted.ManagedLabel] = hc.Name
		ac.Labels[clusterv1.ClusterNameLabel] = hc.Spec.InfraID
		ac.Spec.ClusterName = hc.Name
		ac.Spec.BaseDomain = hc.Spec.DNS.BaseDomain
		ac.Spec.ReleaseImage = hc.Spec.Release.Image
		if ep.Port != 0 {
			ac.Spec.ControlPlaneEndpoint = capiproviderv1.APIEndpoint{Host: ep.Host, Port: ep.Port}
		}
		if r.IgnitionEndpoint != "" {
			ac.Spec.IgnitionEndpoint = &capiproviderv1.IgnitionEndpoint{URL: "https://" + r.IgnitionEndpoint + "/ignition"}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("AgentCluster %s/%s: %w", cpns, ac.Name, err)
	}
	// The infrastructure of agent clusters is the hosts themselves: it is ready
	// as soon as the control plane has an endpoint for them to join.
	if ep.Port != 0 && !ptr.Deref(ac.Status.Initialization.Provisioned, false) {
		before := ac.DeepCopy()
		ac.Status.Initialization.Provisioned, ac.Status.Ready = ptr.To(true), true
		if err := r.Client.Status().Patch(ctx, ac, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("AgentCluster %s/%s status: %w", cpns, ac.Name, err)
		}
	}
	cl := &clusterv1.Cluster{}
	cl.Namespace, cl.Name = cpns, hc.Spec.InfraID
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, cl, func() error {
		if cl.Labels == nil {
			cl.Labels = map[string]string{}
		}
		cl.Labels[hosted.ManagedLabel] = hc.Name
		if cl.Annotations == nil {
			cl.Annotations = map[string]string{}
		}
		cl.Annotations[hyperv1.HostedClusterAnnotation] = hc.Namespace + "/" + hc.Name
		cl.Spec.ControlPlaneRef = clusterv1.ContractVersionedObjectReference{APIGroup: hyperv1.GroupVersion.Group, Kind: "HostedControlPlane", Name: hcp.Name}
		cl.Spec.InfrastructureRef = clusterv1.ContractVersionedObjectReference{APIGroup: capiproviderv1.GroupVersion.Group, Kind: "AgentCluster", Name: ac.Name}
		if ep.Port != 0 {
			cl.Spec.ControlPlaneEndpoint = clusterv1.APIEndpoint{Host: ep.Host, Port: ep.Port}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("Cluster %s/%s: %w", cpns, cl.Name, err)
	}
	return nil
}

// deleteClusterAPI deletes the Cluster (Cluster API then deletes its
// MachineDeployments, MachineSets and Machines, draining their nodes while the
// control plane still serves) and reports whether it is gone.
func (r *Reconciler) deleteClusterAPI(ctx context.Context, hc *hyperv1.HostedCluster, cpns string) (bool, error) {
	cl := &clusterv1.Cluster{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Spec.InfraID}, cl)
	if err != nil {
		return client.IgnoreNotFound(err) == nil, client.IgnoreNotFound(err)
	}
	if cl.DeletionTimestamp.IsZero() {
		if err := r.Client.Delete(ctx, cl); client.IgnoreNotFound(err) != nil {
			return false, err
		}
	}
	return false, nil
}

// deleteNodePools deletes the cluster's NodePools and reports whether they are gone.
func (r *Reconciler) deleteNodePools(ctx context.Context, hc *hyperv1.HostedCluster) (bool, error) {
	list := &hyperv1.NodePoolList{}
	if err := r.Client.List(ctx, list, client.InNamespace(hc.Namespace)); err != nil {
		return false, err
	}
	gone := true
	for i := range list.Items {
		np := &list.Items[i]
		if np.Spec.ClusterName != hc.Name {
			continue
		}
		gone = false
		if np.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, np); client.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
	}
	return gone, nil
}
