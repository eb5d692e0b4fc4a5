package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// NodePoolLabel on Machines, Agents and Nodes names the NodePool they belong to.
const NodePoolLabel = "hypershift.openshift.io/nodePool"

// UpgradeType is how a NodePool's nodes take a new release or configuration.
// +kubebuilder:validation:Enum=Replace;InPlace
type UpgradeType string

const (
	// UpgradeTypeReplace replaces nodes with new ones.
	UpgradeTypeReplace UpgradeType = "Replace"
	// UpgradeTypeInPlace updates nodes where they are.
	UpgradeTypeInPlace UpgradeType = "InPlace"
)

// NodePool is a scalable set of worker nodes of a HostedCluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=nodepools,shortName=np;nps,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas
// +kubebuilder:printcolumn:name="Cluster",type="string",JSONPath=".spec.clusterName",description="HostedCluster"
// +kubebuilder:printcolumn:name="Desired",type="integer",JSONPath=".spec.replicas",description="Desired nodes"
// +kubebuilder:printcolumn:name="Current",type="integer",JSONPath=".status.replicas",description="Current nodes"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Ready"
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".status.version",description="Release every node runs"
// +kubebuilder:printcolumn:name="UpdatingVersion",type="string",JSONPath=".status.conditions[?(@.type==\"UpdatingVersion\")].status",description="Nodes are being moved to spec.release"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message",description="Message"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type NodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired node pool.
	// +required
	Spec NodePoolSpec `json:"spec"`
	// Status is the observed node pool.
	// +optional
	Status NodePoolStatus `json:"status,omitempty"`
}

// NodePoolSpec is the desired state of a NodePool.
//
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || !has(self.autoScaling)",message="spec.replicas and spec.autoScaling are mutually exclusive"
type NodePoolSpec struct {
	// ClusterName is the HostedCluster, in this namespace, the nodes join. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.clusterName is immutable"
	ClusterName string `json:"clusterName"`

	// Release is the release the nodes run.
	// +required
	Release Release `json:"release"`

	// Platform is where the nodes come from.
	// +required
	Platform NodePoolPlatform `json:"platform"`

	// Replicas is the number of nodes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// Management is how nodes are updated and repaired.
	// +required
	Management NodePoolManagement `json:"management"`

	// AutoScaling scales the pool between min and max nodes.
	// +optional
	AutoScaling *NodePoolAutoScaling `json:"autoScaling,omitempty"`

	// NodeLabels are put on every node of the pool.
	// +optional
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`

	// Taints are put on every node of the pool.
	// +optional
	// +listType=atomic
	Taints []Taint `json:"taints,omitempty"`

	// NodeDrainTimeout bounds how long a node is drained before deletion; zero
	// waits forever.
	// +optional
	NodeDrainTimeout *metav1.Duration `json:"nodeDrainTimeout,omitempty"`

	// Arch is the CPU architecture of the nodes.
	// +optional
	// +kubebuilder:default=amd64
	// +kubebuilder:validation:Enum=amd64;arm64;ppc64le;s390x
	Arch string `json:"arch,omitempty"`

	// PausedUntil, when set to a RFC 3339 time or "true", pauses reconciliation.
	// +optional
	PausedUntil *string `json:"pausedUntil,omitempty"`
}

// NodePoolPlatform is where a pool's nodes come from.
type NodePoolPlatform struct {
	// Type is the platform; it must match the HostedCluster's.
	// +required
	Type PlatformType `json:"type"`
	// Agent configures nodes on the Agent platform.
	// +optional
	Agent *AgentNodePoolPlatform `json:"agent,omitempty"`
}

// AgentNodePoolPlatform configures nodes on the Agent platform.
type AgentNodePoolPlatform struct {
	// AgentLabelSelector selects the Agents that may become nodes of this pool.
	// +optional
	AgentLabelSelector *metav1.LabelSelector `json:"agentLabelSelector,omitempty"`
}

// NodePoolManagement is how nodes are updated and repaired.
type NodePoolManagement struct {
	// UpgradeType is how nodes take a new release. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.management.upgradeType is immutable"
	UpgradeType UpgradeType `json:"upgradeType"`

	// Replace configures the Replace upgrade type.
	// +optional
	Replace *ReplaceUpgrade `json:"replace,omitempty"`

	// AutoRepair replaces nodes that stay unhealthy.
	// +optional
	AutoRepair bool `json:"autoRepair,omitempty"`
}

// ReplaceUpgrade configures replacing nodes.
type ReplaceUpgrade struct {
	// Strategy is RollingUpdate or OnDelete.
	// +optional
	// +kubebuilder:default=RollingUpdate
	// +kubebuilder:validation:Enum=RollingUpdate;OnDelete
	Strategy string `json:"strategy,omitempty"`
	// RollingUpdate configures a rolling update.
	// +optional
	RollingUpdate *RollingUpdate `json:"rollingUpdate,omitempty"`
}

// RollingUpdate bounds a rolling update.
type RollingUpdate struct {
	// MaxUnavailable is how many nodes may be unavailable during the update.
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// MaxSurge is how many nodes may be added above the desired count.
	// +optional
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`
}

// NodePoolAutoScaling bounds an autoscaled pool.
//
// +kubebuilder:validation:XValidation:rule="self.max >= self.min",message="spec.autoScaling.max must be at least min"
type NodePoolAutoScaling struct {
	// Min is the least number of nodes.
	// +kubebuilder:validation:Minimum=0
	Min int32 `json:"min"`
	// Max is the greatest number of nodes.
	// +kubebuilder:validation:Minimum=1
	Max int32 `json:"max"`
}

// Taint is a taint put on a pool's nodes.
type Taint struct {
	// Key is the taint key.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Value is the taint value.
	// +optional
	Value string `json:"value,omitempty"`
	// Effect is the taint effect.
	// +required
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	Effect corev1.TaintEffect `json:"effect"`
}

// NodePoolStatus is the observed state of a NodePool.
type NodePoolStatus struct {
	// Replicas is the number of nodes that are available.
	// +optional
	Replicas int32 `json:"replicas"`
	// Version is the release version of the nodes.
	// +optional
	Version string `json:"version,omitempty"`
	// Conditions are the pool's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodePoolList is a list of NodePools.
//
// +kubebuilder:object:root=true
type NodePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodePool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodePool{}, &NodePoolList{})
}
