package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentMachine condition types, as cluster-api-provider-agent names them.
const (
	AgentReservedCondition        = "AgentReserved"
	AgentSpecSyncedCondition      = "AgentSpecSynced"
	AgentValidatedCondition       = "AgentValidated"
	AgentRequirementsMetCondition = "AgentRequirementsMet"
	InstalledCondition            = "Installed"

	// NoSuitableAgentsReason: no free Agent matches the machine's requirements.
	NoSuitableAgentsReason = "NoSuitableAgents"
)

// AgentMachineRefLabel on an Agent names the AgentMachine it is reserved for.
const AgentMachineRefLabel = "agentMachineRef"

// AgentMachineRefNamespaceLabel on an Agent names the namespace of that AgentMachine.
const AgentMachineRefNamespaceLabel = "agentMachineRefNamespace"

// AgentReference names the Agent bound to an AgentMachine.
type AgentReference struct {
	// Namespace of the Agent.
	Namespace string `json:"namespace"`
	// Name of the Agent.
	Name string `json:"name"`
}

// MachineAddress is an address of a machine.
type MachineAddress struct {
	// Type is Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.
	Type string `json:"type"`
	// Address is the address.
	Address string `json:"address"`
}

// AgentMachine is the Cluster API infrastructure machine backed by an Agent.
//
// +kubebuilder:object:root=true
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1beta1"
// +kubebuilder:resource:path=agentmachines,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Agent",type="string",JSONPath=".status.agentRef.name",description="Bound Agent"
// +kubebuilder:printcolumn:name="ProviderID",type="string",JSONPath=".spec.providerID",description="Provider ID"
// +kubebuilder:printcolumn:name="Provisioned",type="boolean",JSONPath=".status.initialization.provisioned",description="Agent installed"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type AgentMachine struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired machine.
	// +optional
	Spec AgentMachineSpec `json:"spec,omitempty"`
	// Status is the observed machine.
	// +optional
	Status AgentMachineStatus `json:"status,omitempty"`
}

// AgentMachineSpec is the desired state of an AgentMachine.
type AgentMachineSpec struct {
	// ProviderID is agent://<agent name> once an Agent is bound.
	// +optional
	ProviderID *string `json:"providerID,omitempty"`
	// AgentLabelSelector selects the Agents that may back this machine.
	// +optional
	AgentLabelSelector *metav1.LabelSelector `json:"agentLabelSelector,omitempty"`
	// MinCPUs is the least number of CPUs the Agent must have.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinCPUs int32 `json:"minCPUs,omitempty"`
	// MinMemoryMiB is the least memory the Agent must have.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinMemoryMiB int32 `json:"minMemoryMiB,omitempty"`
}

// AgentMachineStatus is the observed state of an AgentMachine.
type AgentMachineStatus struct {
	// Initialization reports the Cluster API contract milestones.
	// +optional
	Initialization Initialization `json:"initialization,omitempty"`
	// Ready is the Cluster API v1beta1 form of initialization.provisioned.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// AgentRef names the bound Agent.
	// +optional
	AgentRef *AgentReference `json:"agentRef,omitempty"`
	// Addresses are the machine's addresses.
	// +optional
	// +listType=atomic
	Addresses []MachineAddress `json:"addresses,omitempty"`
	// Conditions are the AgentMachine's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentMachineList is a list of AgentMachines.
//
// +kubebuilder:object:root=true
type AgentMachineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentMachine `json:"items"`
}

// AgentMachineTemplate is a template of AgentMachines for a MachineDeployment or
// MachineSet.
//
// +kubebuilder:object:root=true
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1beta1"
// +kubebuilder:resource:path=agentmachinetemplates,scope=Namespaced
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type AgentMachineTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the template.
	// +required
	Spec AgentMachineTemplateSpec `json:"spec"`
}

// AgentMachineTemplateSpec holds the template.
type AgentMachineTemplateSpec struct {
	// Template is the AgentMachine template.
	// +required
	Template AgentMachineTemplateResource `json:"template"`
}

// AgentMachineTemplateResource is the template of one AgentMachine.
type AgentMachineTemplateResource struct {
	// Spec is the AgentMachine spec.
	// +required
	Spec AgentMachineSpec `json:"spec"`
}

// AgentMachineTemplateList is a list of AgentMachineTemplates.
//
// +kubebuilder:object:root=true
type AgentMachineTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentMachineTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AgentMachine{}, &AgentMachineList{}, &AgentMachineTemplate{}, &AgentMachineTemplateList{})
}
