package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Well-known labels and annotations, verbatim from the documentation of hosted
// control planes.
const (
	// ControlPlaneLabel marks management nodes (label and taint) that run control
	// planes only.
	ControlPlaneLabel = "hypershift.openshift.io/control-plane"
	// ClusterLabel marks management nodes (label and taint) that run the control
	// plane of one cluster only; its value is the control plane namespace.
	ClusterLabel = "hypershift.openshift.io/cluster"
	// HostedControlPlaneNamespaceLabel marks a namespace that holds a control plane.
	HostedControlPlaneNamespaceLabel = "hypershift.openshift.io/hosted-control-plane"
	// RequestServingComponentLabel marks request-serving pods and the nodes for them.
	RequestServingComponentLabel = "hypershift.openshift.io/request-serving-component"
	// HostedClusterAnnotation on objects names the HostedCluster (namespace/name)
	// they belong to.
	HostedClusterAnnotation = "hypershift.openshift.io/cluster"
	// TopologyAnnotation on a HostedCluster chooses how its control plane shares
	// management nodes: unset (shared everything), DedicatedRequestServingTopology
	// or DedicatedTopology.
	TopologyAnnotation = "hypershift.openshift.io/topology"
	// ControlPlaneImageAnnotation on a HostedCluster replaces the image its
	// control plane pods run (Kubernetes runtime), as HyperShift's annotation
	// of that name replaces its control plane operator's image: a reference
	// by tag or digest, e.g. to a mirror or a patched build.
	ControlPlaneImageAnnotation = "hypershift.openshift.io/control-plane-operator-image"
	// ForceUpgradeToAnnotation on a HostedCluster, set to the image of
	// spec.release, lets a change of release through that the upgrade rules
	// refuse (a downgrade, a skipped minor version).
	ForceUpgradeToAnnotation = "hypershift.openshift.io/force-upgrade-to"
)

// Values of TopologyAnnotation.
const (
	// DedicatedRequestServingTopology puts request-serving pods (API server,
	// konnectivity server) only on nodes labelled and tainted
	// RequestServingComponentLabel=true.
	DedicatedRequestServingTopology = "dedicated-request-serving-components"
	// DedicatedTopology puts every pod only on nodes labelled and tainted
	// ClusterLabel=<control plane namespace>.
	DedicatedTopology = "dedicated"
)

// AvailabilityPolicy says how many replicas of each component run.
// +kubebuilder:validation:Enum=SingleReplica;HighlyAvailable
type AvailabilityPolicy string

const (
	// SingleReplica runs one replica of every component.
	SingleReplica AvailabilityPolicy = "SingleReplica"
	// HighlyAvailable runs three etcd members and three API servers, spread over
	// failure domains, and two replicas of the other components.
	HighlyAvailable AvailabilityPolicy = "HighlyAvailable"
)

// PlatformType is the infrastructure a hosted cluster's nodes run on.
// +kubebuilder:validation:Enum=Agent;None
type PlatformType string

const (
	// AgentPlatform: nodes are hosts that booted the discovery agent.
	AgentPlatform PlatformType = "Agent"
	// NonePlatform: nodes are brought by the user; hcp manages no infrastructure.
	NonePlatform PlatformType = "None"
)

// ServiceType names a control plane service that can be published.
// +kubebuilder:validation:Enum=APIServer;OAuthServer;OIDC;Konnectivity;Ignition;OVNSbDb
type ServiceType string

// The control plane services.
const (
	APIServer    ServiceType = "APIServer"
	OAuthServer  ServiceType = "OAuthServer"
	OIDC         ServiceType = "OIDC"
	Konnectivity ServiceType = "Konnectivity"
	Ignition     ServiceType = "Ignition"
	OVNSbDb      ServiceType = "OVNSbDb"
)

// PublishingStrategyType is how a service is exposed outside the management cluster.
// +kubebuilder:validation:Enum=NodePort;LoadBalancer;Route;None
type PublishingStrategyType string

// The publishing strategies.
const (
	NodePort     PublishingStrategyType = "NodePort"
	LoadBalancer PublishingStrategyType = "LoadBalancer"
	Route        PublishingStrategyType = "Route"
	None         PublishingStrategyType = "None"
)

// HostedCluster is a Kubernetes cluster whose control plane runs as workloads of
// the management cluster. Creating one gives a working control plane with no
// nodes; NodePools add nodes.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=hostedclusters,shortName=hc;hcs,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".status.version.history[?(@.state==\"Completed\")].version",description="Version"
// +kubebuilder:printcolumn:name="KubeConfig",type="string",JSONPath=".status.kubeconfig.name",description="Admin kubeconfig secret"
// +kubebuilder:printcolumn:name="Progress",type="string",JSONPath=".status.version.history[?(@.state!=\"\")].state",description="Progress"
// +kubebuilder:printcolumn:name="Available",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].status",description="Available"
// +kubebuilder:printcolumn:name="Progressing",type="string",JSONPath=".status.conditions[?(@.type==\"Progressing\")].status",description="Progressing"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].message",description="Message"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 53",message="metadata.name must be an RFC 1123 label that starts with a letter, at most 53 characters (e.g. example)"
type HostedCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired cluster.
	// +required
	Spec HostedClusterSpec `json:"spec"`
	// Status is the observed cluster.
	// +optional
	Status HostedClusterStatus `json:"status,omitempty"`
}

// HostedClusterSpec is the desired state of a HostedCluster.
//
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.infraID) || self.infraID == oldSelf.infraID",message="spec.infraID is immutable"
// +kubebuilder:validation:XValidation:rule="self.platform.type != 'Agent' || has(self.platform.agent)",message="spec.platform.agent is required when spec.platform.type is Agent"
// +kubebuilder:validation:XValidation:rule="self.services.all(s, self.services.exists_one(t, t.service == s.service))",message="spec.services must list each service once"
type HostedClusterSpec struct {
	// Release is the release payload the control plane runs.
	// +required
	Release Release `json:"release"`

	// ClusterID uniquely identifies this cluster; generated when empty.
	// +optional
	// +kubebuilder:validation:XValidation:rule="oldSelf == '' || self == oldSelf",message="spec.clusterID is immutable once set"
	ClusterID string `json:"clusterID,omitempty"`

	// InfraID names the cluster's infrastructure; generated when empty, immutable
	// once set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	InfraID string `json:"infraID,omitempty"`

	// Platform is where the cluster's nodes come from.
	// +required
	Platform PlatformSpec `json:"platform"`

	// ControllerAvailabilityPolicy is the availability of the control plane
	// components. Immutable.
	// +optional
	// +kubebuilder:default=SingleReplica
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.controllerAvailabilityPolicy is immutable"
	ControllerAvailabilityPolicy AvailabilityPolicy `json:"controllerAvailabilityPolicy,omitempty"`

	// InfrastructureAvailabilityPolicy is the availability of components that run
	// on the cluster's own nodes.
	// +optional
	// +kubebuilder:default=SingleReplica
	InfrastructureAvailabilityPolicy AvailabilityPolicy `json:"infrastructureAvailabilityPolicy,omitempty"`

	// DNS is the cluster's DNS configuration.
	// +optional
	DNS DNSSpec `json:"dns,omitempty"`

	// Networking is the cluster's network configuration.
	// +optional
	Networking ClusterNetworking `json:"networking,omitempty"`

	// Etcd is how the cluster's etcd is run.
	// +optional
	Etcd EtcdSpec `json:"etcd,omitempty"`

	// SecretEncryption names the keys the cluster's Secrets are encrypted
	// with in etcd. Unset, hcp generates a key for the cluster; either way
	// Secrets are never stored in plain text.
	// +optional
	SecretEncryption *SecretEncryptionSpec `json:"secretEncryption,omitempty"`

	// Services says how each control plane service is published.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=6
	// +listType=atomic
	Services []ServicePublishingStrategyMapping `json:"services"`

	// PullSecret references a Secret in this namespace with key .dockerconfigjson,
	// used to pull images on the cluster's nodes.
	// +required
	PullSecret corev1.LocalObjectReference `json:"pullSecret"`

	// SSHKey references a Secret in this namespace with key id_rsa.pub, authorized
	// for user core on the cluster's nodes.
	// +optional
	SSHKey corev1.LocalObjectReference `json:"sshKey,omitempty"`

	// IssuerURL is the OIDC issuer of the cluster's service account tokens.
	// +optional
	// +kubebuilder:default="https://kubernetes.default.svc"
	IssuerURL string `json:"issuerURL,omitempty"`

	// ImageContentSources lists mirrors for image repositories, as an
	// ImageContentSourcePolicy does; nodes pull from the mirrors.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	ImageContentSources []ImageContentSource `json:"imageContentSources,omitempty"`

	// NodeSelector, when set, is added to every control plane pod's node selector
	// (e.g. node-role.kubernetes.io/infra: "").
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations are added to every control plane pod.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// PausedUntil, when set to a RFC 3339 time or "true", pauses reconciliation
	// until then (or until removed).
	// +optional
	PausedUntil *string `json:"pausedUntil,omitempty"`
}

// Release names a release payload by its image reference.
type Release struct {
	// Image is the release image reference, e.g. hcp.dev/release:1.37.2.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	Image string `json:"image"`
}

// PlatformSpec is where nodes come from.
type PlatformSpec struct {
	// Type is the platform.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.platform.type is immutable"
	Type PlatformType `json:"type"`

	// Agent configures the Agent platform.
	// +optional
	Agent *AgentPlatformSpec `json:"agent,omitempty"`
}

// AgentPlatformSpec configures the Agent platform.
type AgentPlatformSpec struct {
	// AgentNamespace is the namespace where the cluster's Agents are searched.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	AgentNamespace string `json:"agentNamespace"`
}

// DNSSpec is the cluster's DNS configuration.
type DNSSpec struct {
	// BaseDomain is the base domain of the cluster: the API is published as
	// api.<name>.<baseDomain>. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.dns.baseDomain is immutable"
	BaseDomain string `json:"baseDomain,omitempty"`
}

// ClusterNetworking is the cluster's network configuration.
type ClusterNetworking struct {
	// ClusterNetwork are the CIDRs pod addresses come from.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	ClusterNetwork []ClusterNetworkEntry `json:"clusterNetwork,omitempty"`

	// ServiceNetwork are the CIDRs service addresses come from.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	ServiceNetwork []ServiceNetworkEntry `json:"serviceNetwork,omitempty"`

	// MachineNetwork are the CIDRs node addresses come from.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	MachineNetwork []MachineNetworkEntry `json:"machineNetwork,omitempty"`

	// NetworkType is the cluster network plugin.
	// +optional
	// +kubebuilder:default=Other
	// +kubebuilder:validation:Enum=OVNKubernetes;Calico;Other
	NetworkType string `json:"networkType,omitempty"`

	// APIServer configures the API server's networking.
	// +optional
	APIServer *APIServerNetworking `json:"apiServer,omitempty"`
}

// CIDR is an IPv4 or IPv6 network in CIDR notation.
// +kubebuilder:validation:MaxLength=43
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.132.0.0/14 or fd01::/48"
type CIDR string

// ClusterNetworkEntry is one pod network.
type ClusterNetworkEntry struct {
	// CIDR is the network.
	// +required
	CIDR CIDR `json:"cidr"`
	// HostPrefix is the prefix length of the subnet given to each node.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	HostPrefix int32 `json:"hostPrefix,omitempty"`
}

// ServiceNetworkEntry is one service network.
type ServiceNetworkEntry struct {
	// CIDR is the network.
	// +required
	CIDR CIDR `json:"cidr"`
}

// MachineNetworkEntry is one machine network.
type MachineNetworkEntry struct {
	// CIDR is the network.
	// +required
	CIDR CIDR `json:"cidr"`
}

// APIServerNetworking configures the API server's networking.
type APIServerNetworking struct {
	// AdvertiseAddress is the address the API server advertises to the cluster.
	// +optional
	AdvertiseAddress *string `json:"advertiseAddress,omitempty"`
	// Port is the port the API server listens on inside the cluster.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// EtcdManagementType says who runs etcd.
// +kubebuilder:validation:Enum=Managed
type EtcdManagementType string

// Managed: hcp runs etcd for the cluster.
const Managed EtcdManagementType = "Managed"

// EtcdSpec is how the cluster's etcd is run.
type EtcdSpec struct {
	// ManagementType says who runs etcd.
	// +optional
	// +kubebuilder:default=Managed
	ManagementType EtcdManagementType `json:"managementType,omitempty"`

	// Managed configures an etcd run by hcp.
	// +optional
	Managed *ManagedEtcdSpec `json:"managed,omitempty"`
}

// SecretEncryptionType is how Secrets are encrypted at rest.
// +kubebuilder:validation:Enum=aescbc
type SecretEncryptionType string

// AESCBC encrypts with AES-CBC keys kept in Secrets.
const AESCBC SecretEncryptionType = "aescbc"

// AESCBCKeySecretKey is the key of an encryption key Secret: 16, 24 or 32
// random bytes.
const AESCBCKeySecretKey = "key"

// SecretEncryptionSpec says how Secrets are encrypted in etcd.
// +kubebuilder:validation:XValidation:rule="self.type != 'aescbc' || has(self.aescbc)",message="spec.secretEncryption.aescbc is required when type is aescbc"
type SecretEncryptionSpec struct {
	// Type is the encryption: aescbc.
	// +required
	Type SecretEncryptionType `json:"type"`

	// AESCBC names the key Secrets (key "key") in the HostedCluster's
	// namespace.
	// +optional
	AESCBC *AESCBCSpec `json:"aescbc,omitempty"`
}

// AESCBCSpec names AES-CBC key Secrets.
type AESCBCSpec struct {
	// ActiveKey encrypts every Secret written from now on; Secrets written
	// earlier are rewritten with it.
	// +required
	ActiveKey corev1.LocalObjectReference `json:"activeKey"`

	// BackupKey still decrypts Secrets written with it (the previous active
	// key during a rotation). hcp keeps a replaced key for reading until
	// every Secret is rewritten anyway; a backup key also stays after.
	// +optional
	BackupKey *corev1.LocalObjectReference `json:"backupKey,omitempty"`
}

// ManagedEtcdSpec configures an etcd run by hcp.
type ManagedEtcdSpec struct {
	// Storage is where etcd keeps its data.
	// +required
	Storage ManagedEtcdStorageSpec `json:"storage"`

	// Backup takes backups of etcd on a schedule.
	// +optional
	Backup *EtcdBackupSchedule `json:"backup,omitempty"`
}

// EtcdBackupSchedule takes a backup (as an HCPEtcdBackup does) on a
// schedule and keeps the newest ones.
type EtcdBackupSchedule struct {
	// Schedule is a cron schedule in UTC (minute hour day-of-month month
	// day-of-week, or @every <duration>); every 4 hours when empty.
	// +optional
	// +kubebuilder:default="0 */4 * * *"
	Schedule string `json:"schedule,omitempty"`

	// Retention is how many of the cluster's archives are kept in the
	// storage; older ones are deleted after each backup.
	// +optional
	// +kubebuilder:default=6
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Retention int32 `json:"retention,omitempty"`

	// Storage is where the archives are written.
	// +required
	Storage EtcdBackupStorage `json:"storage"`
}

// ManagedEtcdStorageSpec is where etcd keeps its data.
type ManagedEtcdStorageSpec struct {
	// Type is the kind of storage.
	// +required
	// +kubebuilder:validation:Enum=PersistentVolume
	Type string `json:"type"`

	// PersistentVolume configures a persistent volume per etcd member.
	// +optional
	PersistentVolume *PersistentVolumeEtcdStorageSpec `json:"persistentVolume,omitempty"`

	// RestoreSnapshotURL names a backup archive (hcp create etcd-backup)
	// the cluster starts from when it is created: its etcd data, root CA,
	// service account key and encryption keys. file:///<path> on the
	// management plane, or an http(s) URL (e.g. a presigned S3 URL). The
	// archive must be of a cluster with this cluster's spec.infraID. At
	// most one.
	// +optional
	// +kubebuilder:validation:MaxItems=1
	// +listType=atomic
	RestoreSnapshotURL []string `json:"restoreSnapshotURL,omitempty"`
}

// PersistentVolumeEtcdStorageSpec configures etcd's persistent volumes.
type PersistentVolumeEtcdStorageSpec struct {
	// StorageClassName is the StorageClass of etcd's volumes; the default
	// StorageClass when empty. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.etcd.managed.storage.persistentVolume.storageClassName is immutable"
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Size is the size of each etcd volume.
	// +optional
	// +kubebuilder:default="8Gi"
	Size *resource.Quantity `json:"size,omitempty"`
}

// ServicePublishingStrategyMapping says how one service is published.
type ServicePublishingStrategyMapping struct {
	// Service is the control plane service.
	// +required
	Service ServiceType `json:"service"`
	// ServicePublishingStrategy is how it is published.
	// +required
	ServicePublishingStrategy `json:"servicePublishingStrategy"`
}

// ServicePublishingStrategy is how a service is published.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'NodePort' || !has(self.nodePort)",message="nodePort is only allowed when type is NodePort"
type ServicePublishingStrategy struct {
	// Type is the strategy.
	// +required
	Type PublishingStrategyType `json:"type"`
	// NodePort configures the NodePort strategy.
	// +optional
	NodePort *NodePortPublishingStrategy `json:"nodePort,omitempty"`
	// LoadBalancer configures the LoadBalancer strategy.
	// +optional
	LoadBalancer *LoadBalancerPublishingStrategy `json:"loadBalancer,omitempty"`
	// Route configures the Route strategy.
	// +optional
	Route *RoutePublishingStrategy `json:"route,omitempty"`
}

// NodePortPublishingStrategy publishes a service on a node port.
type NodePortPublishingStrategy struct {
	// Address is the host name or IP address clients use to reach the service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[^\s/:]+$`
	Address string `json:"address"`
	// Port is the node port; allocated when zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// LoadBalancerPublishingStrategy publishes a service through a load balancer.
type LoadBalancerPublishingStrategy struct {
	// Hostname is the name clients use; the load balancer's address when empty.
	// +optional
	Hostname string `json:"hostname,omitempty"`
}

// RoutePublishingStrategy publishes a service through a Route.
type RoutePublishingStrategy struct {
	// Hostname is the Route's host name.
	// +optional
	Hostname string `json:"hostname,omitempty"`
}

// ImageContentSource lists the mirrors of one image repository.
type ImageContentSource struct {
	// Source is the repository that users refer to, e.g. quay.io/openshift-release-dev/ocp-release.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Source string `json:"source"`
	// Mirrors are repositories that hold the same content.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Mirrors []string `json:"mirrors,omitempty"`
}

// APIEndpoint is a host and port where an API server is reached.
type APIEndpoint struct {
	// Host is the host name or address.
	Host string `json:"host"`
	// Port is the port.
	Port int32 `json:"port"`
}

// HostedClusterStatus is the observed state of a HostedCluster.
type HostedClusterStatus struct {
	// Version is the cluster's version and its history.
	// +optional
	Version *ClusterVersionStatus `json:"version,omitempty"`

	// KubeConfig references the Secret (key kubeconfig) with the admin kubeconfig.
	// +optional
	KubeConfig *corev1.LocalObjectReference `json:"kubeconfig,omitempty"`

	// ControlPlaneEndpoint is where the cluster's API server is reached.
	// +optional
	ControlPlaneEndpoint APIEndpoint `json:"controlPlaneEndpoint,omitempty"`

	// IgnitionEndpoint is the host:port of the ignition server for nodes.
	// +optional
	IgnitionEndpoint string `json:"ignitionEndpoint,omitempty"`

	// LastSuccessfulEtcdBackupURL is where the newest scheduled backup
	// that succeeded is.
	// +optional
	LastSuccessfulEtcdBackupURL string `json:"lastSuccessfulEtcdBackupURL,omitempty"`

	// LastEtcdBackupTime is when the last scheduled backup was tried.
	// +optional
	LastEtcdBackupTime *metav1.Time `json:"lastEtcdBackupTime,omitempty"`

	// Conditions are the cluster's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// UpdateState is the state of one entry of the version history.
type UpdateState string

// The update states.
const (
	CompletedUpdate UpdateState = "Completed"
	PartialUpdate   UpdateState = "Partial"
)

// ClusterVersionStatus reports the cluster's version.
type ClusterVersionStatus struct {
	// Desired is the release being rolled out.
	Desired Release `json:"desired"`
	// History lists the releases rolled out, newest first.
	// +optional
	// +listType=atomic
	History []UpdateHistory `json:"history,omitempty"`
	// ObservedGeneration is the generation the version was computed from.
	ObservedGeneration int64 `json:"observedGeneration"`
	// Components are the versions of the release's components.
	// +optional
	Components map[string]string `json:"components,omitempty"`
}

// UpdateHistory is one release rollout.
type UpdateHistory struct {
	// State is Completed once the release is fully rolled out, else Partial.
	State UpdateState `json:"state"`
	// StartedTime is when the rollout started.
	StartedTime metav1.Time `json:"startedTime"`
	// CompletionTime is when it completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Version is the release's version.
	Version string `json:"version"`
	// Image is the release image.
	Image string `json:"image"`
	// Verified is true when the release was checked.
	Verified bool `json:"verified"`
}

// HostedClusterList is a list of HostedClusters.
//
// +kubebuilder:object:root=true
type HostedClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HostedCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HostedCluster{}, &HostedClusterList{})
}
