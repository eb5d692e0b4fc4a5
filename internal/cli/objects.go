package cli

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

// clusterObjects are the objects hcp create cluster agent makes, in the order
// they are applied: the pull secret, the ssh key, the HostedCluster and its
// NodePool. It is a pure function of the validated flags.
func clusterObjects(o *ClusterOptions, in *clusterInputs) []client.Object {
	labels := func() map[string]string { return map[string]string{ManagedByLabel: managedBy} }
	var objs []client.Object
	pull := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name + "-pull-secret", Labels: labels()},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: in.pullSecret},
	}
	objs = append(objs, pull)
	var sshRef corev1.LocalObjectReference
	if in.sshKey != nil {
		key := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name + "-ssh-key", Labels: labels()},
			Data:       map[string][]byte{"id_rsa.pub": in.sshKey},
		}
		objs = append(objs, key)
		sshRef.Name = key.Name
	}

	publish := func(svc hyperv1.ServiceType) hyperv1.ServicePublishingStrategyMapping {
		return hyperv1.ServicePublishingStrategyMapping{Service: svc, ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{
			Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: o.APIServerAddress}}}
	}
	storage := &hyperv1.PersistentVolumeEtcdStorageSpec{Size: in.etcdSize}
	if o.EtcdStorageClass != "" {
		sc := o.EtcdStorageClass
		storage.StorageClassName = &sc
	}
	hcLabels := labels()
	for k, v := range o.Labels {
		hcLabels[k] = v
	}
	hc := &hyperv1.HostedCluster{
		TypeMeta: metav1.TypeMeta{APIVersion: hyperv1.GroupVersion.String(), Kind: "HostedCluster"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Labels: hcLabels,
			Annotations: o.Annotations},
		Spec: hyperv1.HostedClusterSpec{
			Release:                          hyperv1.Release{Image: o.ReleaseImage},
			PullSecret:                       corev1.LocalObjectReference{Name: pull.Name},
			SSHKey:                           sshRef,
			ControllerAvailabilityPolicy:     hyperv1.AvailabilityPolicy(o.ControlPlaneAvailabilityPolicy),
			InfrastructureAvailabilityPolicy: hyperv1.AvailabilityPolicy(o.InfraAvailabilityPolicy),
			Platform: hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform,
				Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: o.AgentNamespace}},
			DNS: hyperv1.DNSSpec{BaseDomain: o.BaseDomain},
			Etcd: hyperv1.EtcdSpec{ManagementType: hyperv1.Managed, Managed: &hyperv1.ManagedEtcdSpec{
				Storage: hyperv1.ManagedEtcdStorageSpec{Type: "PersistentVolume", PersistentVolume: storage}}},
			Networking: hyperv1.ClusterNetworking{
				ClusterNetwork: []hyperv1.ClusterNetworkEntry{{CIDR: hyperv1.CIDR(o.ClusterCIDR)}},
				ServiceNetwork: []hyperv1.ServiceNetworkEntry{{CIDR: hyperv1.CIDR(o.ServiceCIDR)}},
				NetworkType:    "Other",
			},
			Services: []hyperv1.ServicePublishingStrategyMapping{
				publish(hyperv1.APIServer), publish(hyperv1.OAuthServer), publish(hyperv1.Konnectivity), publish(hyperv1.Ignition),
			},
			ImageContentSources: in.imageContentSources,
			NodeSelector:        o.NodeSelector,
			Tolerations:         in.tolerations,
		},
	}
	objs = append(objs, hc)
	if o.NodePoolReplicas >= 0 {
		objs = append(objs, nodePool(o.Namespace, o.Name, o.Name, o.ReleaseImage, o.NodePoolReplicas, in.agentSelector))
	}
	return objs
}

// nodePool is an Agent NodePool of a HostedCluster.
func nodePool(namespace, name, cluster, releaseImage string, replicas int32, selector *metav1.LabelSelector) *hyperv1.NodePool {
	return &hyperv1.NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: hyperv1.GroupVersion.String(), Kind: "NodePool"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{ManagedByLabel: managedBy}},
		Spec: hyperv1.NodePoolSpec{
			ClusterName: cluster,
			Release:     hyperv1.Release{Image: releaseImage},
			Replicas:    &replicas,
			Management:  hyperv1.NodePoolManagement{UpgradeType: hyperv1.UpgradeTypeReplace},
			Platform: hyperv1.NodePoolPlatform{Type: hyperv1.AgentPlatform,
				Agent: &hyperv1.AgentNodePoolPlatform{AgentLabelSelector: selector}},
		},
	}
}
