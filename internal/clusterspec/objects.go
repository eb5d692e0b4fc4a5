package clusterspec

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

// ManagedByLabel marks the objects hcp creates for users, so destroy removes
// exactly those.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// ManagedBy is ManagedByLabel's value.
const ManagedBy = "hcp"

// Objects are the objects a Spec becomes, in the order they are applied: the
// pull secret, the ssh key, the HostedCluster and its NodePool (none when
// NodePoolReplicas is negative). It is a pure function of the validated Spec.
func Objects(s *Spec, in *Inputs) []client.Object {
	labels := func() map[string]string { return map[string]string{ManagedByLabel: ManagedBy} }
	var objs []client.Object
	pull := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-pull-secret", Labels: labels()},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: s.PullSecret},
	}
	objs = append(objs, pull)
	var sshRef corev1.LocalObjectReference
	if len(s.SSHKey) > 0 {
		key := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-ssh-key", Labels: labels()},
			Data:       map[string][]byte{"id_rsa.pub": s.SSHKey},
		}
		objs = append(objs, key)
		sshRef.Name = key.Name
	}

	nodePort := func(svc hyperv1.ServiceType) hyperv1.ServicePublishingStrategyMapping {
		return hyperv1.ServicePublishingStrategyMapping{Service: svc, ServicePublishingStrategy: hyperv1.ServicePublishingStrategy{
			Type: hyperv1.NodePort, NodePort: &hyperv1.NodePortPublishingStrategy{Address: s.APIServerAddress}}}
	}
	apiServer := nodePort(hyperv1.APIServer)
	if s.APIServerPublishing == PublishLoadBalancer {
		host := s.APIServerAddress
		if s.BaseDomain != "" {
			host = "api." + s.Name + "." + s.BaseDomain
		}
		apiServer.ServicePublishingStrategy = hyperv1.ServicePublishingStrategy{Type: hyperv1.LoadBalancer,
			LoadBalancer: &hyperv1.LoadBalancerPublishingStrategy{Hostname: host}}
	}
	storage := &hyperv1.PersistentVolumeEtcdStorageSpec{Size: in.etcdSize}
	if s.EtcdStorageClass != "" {
		sc := s.EtcdStorageClass
		storage.StorageClassName = &sc
	}
	hcLabels := labels()
	for k, v := range s.Labels {
		hcLabels[k] = v
	}
	hc := &hyperv1.HostedCluster{
		TypeMeta: metav1.TypeMeta{APIVersion: hyperv1.GroupVersion.String(), Kind: "HostedCluster"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Labels: hcLabels,
			Annotations: s.Annotations},
		Spec: hyperv1.HostedClusterSpec{
			Release:                          hyperv1.Release{Image: s.ReleaseImage},
			PullSecret:                       corev1.LocalObjectReference{Name: pull.Name},
			SSHKey:                           sshRef,
			ControllerAvailabilityPolicy:     hyperv1.AvailabilityPolicy(s.ControlPlaneAvailabilityPolicy),
			InfrastructureAvailabilityPolicy: hyperv1.AvailabilityPolicy(s.InfraAvailabilityPolicy),
			Platform: hyperv1.PlatformSpec{Type: hyperv1.AgentPlatform,
				Agent: &hyperv1.AgentPlatformSpec{AgentNamespace: s.AgentNamespace}},
			DNS:     hyperv1.DNSSpec{BaseDomain: s.BaseDomain},
			InfraID: s.InfraID,
			Etcd: hyperv1.EtcdSpec{ManagementType: hyperv1.Managed, Managed: &hyperv1.ManagedEtcdSpec{
				Storage: hyperv1.ManagedEtcdStorageSpec{Type: "PersistentVolume", PersistentVolume: storage, RestoreSnapshotURL: restoreURLs(s.RestoreFrom)}}},
			Networking: hyperv1.ClusterNetworking{
				ClusterNetwork: []hyperv1.ClusterNetworkEntry{{CIDR: hyperv1.CIDR(s.ClusterCIDR)}},
				ServiceNetwork: []hyperv1.ServiceNetworkEntry{{CIDR: hyperv1.CIDR(s.ServiceCIDR)}},
				NetworkType:    "Other",
			},
			Services: []hyperv1.ServicePublishingStrategyMapping{
				apiServer, nodePort(hyperv1.OAuthServer), nodePort(hyperv1.Konnectivity), nodePort(hyperv1.Ignition),
			},
			ImageContentSources: s.ImageContentSources,
			NodeSelector:        s.NodeSelector,
			Tolerations:         in.tolerations,
		},
	}
	objs = append(objs, hc)
	if s.NodePoolReplicas >= 0 {
		objs = append(objs, NodePool(s.Namespace, s.Name, s.Name, s.ReleaseImage, s.NodePoolReplicas, in.agentSelector))
	}
	return objs
}

func restoreURLs(u string) []string {
	if u == "" {
		return nil
	}
	return []string{u}
}

// NodePool is an Agent NodePool of a HostedCluster.
func NodePool(namespace, name, cluster, releaseImage string, replicas int32, selector *metav1.LabelSelector) *hyperv1.NodePool {
	return &hyperv1.NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: hyperv1.GroupVersion.String(), Kind: "NodePool"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{ManagedByLabel: ManagedBy}},
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
