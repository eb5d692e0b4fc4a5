package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIEndpoint is where an API server is reached.
type APIEndpoint struct {
	// Host is the host name or address.
	Host string `json:"host"`
	// Port is the port.
	Port int32 `json:"port"`
}

// AgentCluster is the Cluster API infrastructure cluster of a hosted cluster on
// the Agent platform.
//
// +kubebuilder:object:root=true
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1beta1"
// +kubebuilder:resource:path=agentclusters,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type="string",JSONPath=".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']",description="Cluster API Cluster"
// +kubebuilder:printcolumn:name="Endpoint",type="string",JSONPath=".spec.controlPlaneEndpoint.host",description="API server host"
// +kubebuilder:printcolumn:name="Provisioned",type="boolean",JSONPath=".status.initialization.provisioned",description="Infrastructure ready"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type AgentCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired infrastructure cluster.
	// +optional
	Spec AgentClusterSpec `json:"spec,omitempty"`
	// Status is the observed infrastructure cluster.
	// +optional
	Status AgentClusterStatus `json:"status,omitempty"`
}

// IgnitionEndpoint is where nodes fetch their Ignition.
type IgnitionEndpoint struct {
	// URL is the Ignition URL.
	URL string `json:"url"`
	// CACertificateReference references a Secret (key tls.crt) with the CA of the endpoint.
	// +optional
	CACertificateReference *SecretReference `json:"caCertificateReference,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// Namespace of the Secret.
	Namespace string `json:"namespace"`
	// Name of the Secret.
	Name string `json:"name"`
}

// AgentClusterSpec is the desired state of an AgentCluster.
type AgentClusterSpec struct {
	// ReleaseImage is the release the cluster runs.
	// +optional
	ReleaseImage string `json:"releaseImage,omitempty"`
	// ClusterName is the hosted cluster's name.
	// +optional
	ClusterName string `json:"clusterName,omitempty"`
	// BaseDomain is the hosted cluster's base domain.
	// +optional
	BaseDomain string `json:"baseDomain,omitempty"`
	// ControlPlaneEndpoint is where the cluster's API server is reached.
	// +optional
	ControlPlaneEndpoint APIEndpoint `json:"controlPlaneEndpoint,omitempty"`
	// IgnitionEndpoint is where nodes fetch their Ignition.
	// +optional
	IgnitionEndpoint *IgnitionEndpoint `json:"ignitionEndpoint,omitempty"`
}

// Initialization reports Cluster API contract milestones.
type Initialization struct {
	// Provisioned is true once the infrastructure is ready.
	// +optional
	Provisioned *bool `json:"provisioned,omitempty"`
}

// AgentClusterStatus is the observed state of an AgentCluster.
type AgentClusterStatus struct {
	// Initialization reports the Cluster API contract milestones.
	// +optional
	Initialization Initialization `json:"initialization,omitempty"`
	// Ready is the Cluster API v1beta1 form of initialization.provisioned.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// Conditions are the AgentCluster's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentClusterList is a list of AgentClusters.
//
// +kubebuilder:object:root=true
type AgentClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AgentCluster{}, &AgentClusterList{})
}
