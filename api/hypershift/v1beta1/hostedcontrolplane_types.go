package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of HostedClusters and HostedControlPlanes.
const (
	ConditionAvailable                 = "Available"
	ConditionProgressing               = "Progressing"
	ConditionDegraded                  = "Degraded"
	ConditionValidConfiguration        = "ValidConfiguration"
	ConditionValidReleaseImage         = "ValidReleaseImage"
	ConditionSupportedHostedCluster    = "SupportedHostedCluster"
	ConditionEtcdAvailable             = "EtcdAvailable"
	ConditionKubeAPIServerAvailable    = "KubeAPIServerAvailable"
	ConditionInfrastructureReady       = "InfrastructureReady"
	ConditionIgnitionEndpointAvailable = "IgnitionEndpointAvailable"
	// ConditionSecretsEncrypted is True when every Secret of the hosted
	// cluster is stored encrypted with the active key.
	ConditionSecretsEncrypted = "SecretsEncrypted"
	// ConditionReconciliationActive is False while spec.pausedUntil pauses
	// the control plane's reconciliation.
	ConditionReconciliationActive = "ReconciliationActive"
)

// HostedControlPlane is the control plane of a HostedCluster, in the HostedCluster's
// control plane namespace. The hostedcluster controller owns it; users read it.
//
// +kubebuilder:object:root=true
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1beta1"
// +kubebuilder:resource:path=hostedcontrolplanes,shortName=hcp;hcps,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".status.versionStatus.history[?(@.state==\"Completed\")].version",description="Version"
// +kubebuilder:printcolumn:name="Ready",type="boolean",JSONPath=".status.ready",description="Ready"
// +kubebuilder:printcolumn:name="Endpoint",type="string",JSONPath=".status.controlPlaneEndpoint.host",description="API server host"
// +kubebuilder:printcolumn:name="Port",type="integer",JSONPath=".status.controlPlaneEndpoint.port",description="API server port"
// +kubebuilder:printcolumn:name="Available",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].status",description="Available"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].message",description="Message"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type HostedControlPlane struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired control plane.
	// +required
	Spec HostedControlPlaneSpec `json:"spec"`
	// Status is the observed control plane.
	// +optional
	Status HostedControlPlaneStatus `json:"status,omitempty"`
}

// HostedControlPlaneSpec is the desired state of a HostedControlPlane, copied
// from its HostedCluster.
type HostedControlPlaneSpec struct {
	// ReleaseImage is the release the control plane runs.
	// +required
	// +kubebuilder:validation:MinLength=1
	ReleaseImage string `json:"releaseImage"`
	// PullSecret references the pull secret in this namespace.
	// +required
	PullSecret corev1.LocalObjectReference `json:"pullSecret"`
	// SSHKey references the ssh key secret in this namespace.
	// +optional
	SSHKey corev1.LocalObjectReference `json:"sshKey,omitempty"`
	// IssuerURL is the OIDC issuer of service account tokens.
	// +optional
	IssuerURL string `json:"issuerURL,omitempty"`
	// ClusterID uniquely identifies the cluster.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`
	// InfraID names the cluster's infrastructure.
	// +required
	InfraID string `json:"infraID"`
	// Platform is where the cluster's nodes come from.
	// +required
	Platform PlatformSpec `json:"platform"`
	// DNS is the cluster's DNS configuration.
	// +optional
	DNS DNSSpec `json:"dns,omitempty"`
	// Networking is the cluster's network configuration.
	// +optional
	Networking ClusterNetworking `json:"networking,omitempty"`
	// ControllerAvailabilityPolicy is the availability of the control plane.
	// +optional
	// +kubebuilder:default=SingleReplica
	ControllerAvailabilityPolicy AvailabilityPolicy `json:"controllerAvailabilityPolicy,omitempty"`
	// InfrastructureAvailabilityPolicy is the availability of node-side components.
	// +optional
	// +kubebuilder:default=SingleReplica
	InfrastructureAvailabilityPolicy AvailabilityPolicy `json:"infrastructureAvailabilityPolicy,omitempty"`
	// Etcd is how etcd is run.
	// +optional
	Etcd EtcdSpec `json:"etcd,omitempty"`
	// SecretEncryption names the keys Secrets are encrypted with in etcd;
	// a key hcp generates when unset.
	// +optional
	SecretEncryption *SecretEncryptionSpec `json:"secretEncryption,omitempty"`
	// Services says how each service is published.
	// +required
	// +listType=atomic
	Services []ServicePublishingStrategyMapping `json:"services"`
	// ImageContentSources lists image mirrors.
	// +optional
	// +listType=atomic
	ImageContentSources []ImageContentSource `json:"imageContentSources,omitempty"`
	// NodeSelector is added to every control plane pod.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations are added to every control plane pod.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// PausedUntil pauses reconciliation.
	// +optional
	PausedUntil *string `json:"pausedUntil,omitempty"`
}

// KubeconfigSecretRef references a key of a Secret holding a kubeconfig.
type KubeconfigSecretRef struct {
	// Name is the Secret.
	Name string `json:"name"`
	// Key is the key in the Secret.
	Key string `json:"key"`
}

// ComponentStatus is the observed state of one control plane component.
type ComponentStatus struct {
	// Name is the component, e.g. kube-apiserver.
	Name string `json:"name"`
	// Replicas is the number of replicas that should run.
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number of replicas whose health checks pass.
	ReadyReplicas int32 `json:"readyReplicas"`
	// UpdatedReplicas is the number of replicas that run the component's
	// current specification and version and are ready.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// Restarts is how many times its replicas' processes exited and were
	// started again since the operator began running them.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`
	// Version is the component's version in its current specification:
	// every replica runs it once UpdatedReplicas equals Replicas.
	// +optional
	Version string `json:"version,omitempty"`
	// Message says what is wrong: why a replica is not ready, or a problem
	// the ready ones have, such as a full data volume.
	// +optional
	Message string `json:"message,omitempty"`
}

// ControlPlaneInitialization reports Cluster API control plane contract milestones.
type ControlPlaneInitialization struct {
	// ControlPlaneInitialized is true once the API server has answered.
	// +optional
	ControlPlaneInitialized *bool `json:"controlPlaneInitialized,omitempty"`
}

// HostedControlPlaneStatus is the observed state of a HostedControlPlane.
type HostedControlPlaneStatus struct {
	// Ready is true when the API server answers.
	// +optional
	Ready bool `json:"ready"`
	// Initialized is true once the control plane has been up once.
	// +optional
	Initialized bool `json:"initialized"`
	// Initialization is the Cluster API control plane contract's milestones.
	// +optional
	Initialization *ControlPlaneInitialization `json:"initialization,omitempty"`
	// ExternalManagedControlPlane tells Cluster API that the control plane has no
	// Machines.
	// +optional
	ExternalManagedControlPlane *bool `json:"externalManagedControlPlane,omitempty"`
	// ControlPlaneEndpoint is where the API server is reached.
	// +optional
	ControlPlaneEndpoint APIEndpoint `json:"controlPlaneEndpoint,omitempty"`
	// VersionStatus is the version and its history.
	// +optional
	VersionStatus *ClusterVersionStatus `json:"versionStatus,omitempty"`
	// KubeConfig references the admin kubeconfig in this namespace.
	// +optional
	KubeConfig *KubeconfigSecretRef `json:"kubeConfig,omitempty"`
	// Components is the readiness of each component.
	// +optional
	// +listType=map
	// +listMapKey=name
	Components []ComponentStatus `json:"components,omitempty"`
	// Conditions are the control plane's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// HostedControlPlaneList is a list of HostedControlPlanes.
//
// +kubebuilder:object:root=true
type HostedControlPlaneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HostedControlPlane `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HostedControlPlane{}, &HostedControlPlaneList{})
}
