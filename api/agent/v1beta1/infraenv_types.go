package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InfraEnvNameLabel on an Agent names the InfraEnv the host registered through;
// an InfraEnv's status.agentLabelSelector selects on it.
const InfraEnvNameLabel = "infraenvs.agent-install.openshift.io"

// InfraEnv condition types.
const (
	// ImageCreatedCondition reports whether the discovery artifacts are ready.
	ImageCreatedCondition = "ImageCreated"
)

// InfraEnv is a discovery configuration: hosts that boot its artifacts register
// as Agents in its namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=infraenvs,shortName=ie,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ISO Created At",type="string",JSONPath=".status.createdTime",description="When the discovery artifacts were made"
// +kubebuilder:printcolumn:name="Auto Approve",type="boolean",JSONPath=".spec.agentApproval.autoApprove",description="New agents are approved automatically"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type InfraEnv struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired discovery configuration.
	// +required
	Spec InfraEnvSpec `json:"spec"`
	// Status is the observed state.
	// +optional
	Status InfraEnvStatus `json:"status,omitempty"`
}

// InfraEnvSpec is the desired state of an InfraEnv.
type InfraEnvSpec struct {
	// PullSecretRef references a Secret in this namespace with key .dockerconfigjson.
	// +required
	PullSecretRef *corev1.LocalObjectReference `json:"pullSecretRef"`

	// SSHAuthorizedKey is authorized for user core on discovered hosts.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	SSHAuthorizedKey string `json:"sshAuthorizedKey,omitempty"`

	// Proxy is the proxy hosts use: the discovery agent runs with it.
	// +optional
	Proxy *Proxy `json:"proxy,omitempty"`

	// AgentLabels are put on every Agent that registers through this InfraEnv.
	// +optional
	AgentLabels map[string]string `json:"agentLabels,omitempty"`

	// AgentApproval says how new Agents are approved.
	// +optional
	AgentApproval *AgentApproval `json:"agentApproval,omitempty"`

	// IgnitionConfigOverride is an Ignition config (JSON) merged into the
	// discovery Ignition.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	IgnitionConfigOverride string `json:"ignitionConfigOverride,omitempty"`

	// CpuArchitecture is the architecture of the hosts; the service must have an
	// hcp-agent for it (ImageCreated says when it has not).
	// +optional
	// +kubebuilder:default=x86_64
	// +kubebuilder:validation:Enum=x86_64;aarch64;arm64;ppc64le;s390x
	CpuArchitecture string `json:"cpuArchitecture,omitempty"` //nolint:revive // JSON name from assisted-service
}

// Proxy is the proxy configuration of hosts.
type Proxy struct {
	// HTTPProxy is the proxy for http URLs.
	// +optional
	HTTPProxy string `json:"httpProxy,omitempty"`
	// HTTPSProxy is the proxy for https URLs.
	// +optional
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	// NoProxy lists destinations reached directly.
	// +optional
	NoProxy string `json:"noProxy,omitempty"`
}

// AgentApproval says how new Agents are approved.
type AgentApproval struct {
	// AutoApprove approves every Agent that registers through this InfraEnv.
	// +optional
	AutoApprove bool `json:"autoApprove,omitempty"`
}

// InfraEnvStatus is the observed state of an InfraEnv.
type InfraEnvStatus struct {
	// ISODownloadURL is where the discovery artifacts are downloaded.
	// +optional
	ISODownloadURL string `json:"isoDownloadURL,omitempty"`
	// CreatedTime is when the artifacts were made.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// AgentLabelSelector selects the Agents of this InfraEnv.
	// +optional
	AgentLabelSelector metav1.LabelSelector `json:"agentLabelSelector,omitempty"`
	// BootArtifacts are the download URLs of the discovery artifacts.
	// +optional
	BootArtifacts BootArtifacts `json:"bootArtifacts,omitempty"`
	// Conditions are the InfraEnv's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BootArtifacts are the discovery artifacts of an InfraEnv.
type BootArtifacts struct {
	// DiscoveryIgnitionURL serves the discovery Ignition config.
	// +optional
	DiscoveryIgnitionURL string `json:"discoveryIgnitionURL,omitempty"`
	// ScriptURL serves a shell script that starts the discovery agent on any Linux host.
	// +optional
	ScriptURL string `json:"scriptURL,omitempty"`
}

// InfraEnvList is a list of InfraEnvs.
//
// +kubebuilder:object:root=true
type InfraEnvList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InfraEnv `json:"items"`
}

func init() {
	SchemeBuilder.Register(&InfraEnv{}, &InfraEnvList{})
}
