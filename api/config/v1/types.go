package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition types of ClusterOperators and ClusterVersions.
const (
	OperatorAvailable   = "Available"
	OperatorProgressing = "Progressing"
	OperatorDegraded    = "Degraded"
	OperatorFailing     = "Failing"
)

// ClusterOperator reports the health of one component of the cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=clusteroperators,shortName=co,scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".status.versions[?(@.name==\"operator\")].version",description="The version the operator is at."
// +kubebuilder:printcolumn:name="Available",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].status",description="Whether the operator is running and stable."
// +kubebuilder:printcolumn:name="Progressing",type="string",JSONPath=".status.conditions[?(@.type==\"Progressing\")].status",description="Whether the operator is processing changes."
// +kubebuilder:printcolumn:name="Degraded",type="string",JSONPath=".status.conditions[?(@.type==\"Degraded\")].status",description="Whether the operator is degraded."
// +kubebuilder:printcolumn:name="Since",type="date",JSONPath=".status.conditions[?(@.type==\"Available\")].lastTransitionTime",description="The time the operator's Available status last changed."
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Degraded\")].message"
type ClusterOperator struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is empty.
	// +optional
	Spec ClusterOperatorSpec `json:"spec"`
	// Status is the component's health.
	// +optional
	Status ClusterOperatorStatus `json:"status"`
}

// ClusterOperatorSpec is empty.
type ClusterOperatorSpec struct{}

// ClusterOperatorStatus is a component's health.
type ClusterOperatorStatus struct {
	// Conditions are Available, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []ClusterOperatorStatusCondition `json:"conditions,omitempty"`
	// Versions are the versions of the component's parts.
	// +optional
	// +listType=atomic
	Versions []OperandVersion `json:"versions,omitempty"`
	// RelatedObjects point at where to look when debugging.
	// +optional
	// +listType=atomic
	RelatedObjects []ObjectReference `json:"relatedObjects,omitempty"`
}

// ClusterOperatorStatusCondition is a condition of a ClusterOperator.
type ClusterOperatorStatusCondition struct {
	// Type is the condition type.
	Type string `json:"type"`
	// Status is True, False or Unknown.
	Status ConditionStatus `json:"status"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime metav1.Time `json:"lastTransitionTime"`
	// Reason is a CamelCase reason.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is a human-readable explanation.
	// +optional
	Message string `json:"message,omitempty"`
}

// OperandVersion is the version of one part.
type OperandVersion struct {
	// Name is the part; "operator" is the component itself.
	Name string `json:"name"`
	// Version is its version.
	Version string `json:"version"`
}

// ObjectReference points at an object.
type ObjectReference struct {
	// Group of the object.
	Group string `json:"group"`
	// Resource of the object.
	Resource string `json:"resource"`
	// Namespace of the object.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name of the object.
	Name string `json:"name"`
}

// ClusterOperatorList is a list of ClusterOperators.
//
// +kubebuilder:object:root=true
type ClusterOperatorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterOperator `json:"items"`
}

// ClusterVersion is the release the cluster runs. The one object is named "version".
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=clusterversions,scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Version",type="string",JSONPath=".status.history[?(@.state==\"Completed\")].version"
// +kubebuilder:printcolumn:name="Available",type="string",JSONPath=".status.conditions[?(@.type==\"Available\")].status"
// +kubebuilder:printcolumn:name="Progressing",type="string",JSONPath=".status.conditions[?(@.type==\"Progressing\")].status"
// +kubebuilder:printcolumn:name="Since",type="date",JSONPath=".status.conditions[?(@.type==\"Progressing\")].lastTransitionTime"
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Progressing\")].message"
type ClusterVersion struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired version.
	// +optional
	Spec ClusterVersionSpec `json:"spec"`
	// Status is the observed version.
	// +optional
	Status ClusterVersionStatus `json:"status"`
}

// ClusterVersionSpec is the desired version.
type ClusterVersionSpec struct {
	// ClusterID identifies the cluster.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`
}

// Release is a release of the cluster.
type Release struct {
	// Version is the release version.
	Version string `json:"version"`
	// Image is the release image.
	Image string `json:"image"`
}

// UpdateHistory is one release rollout.
type UpdateHistory struct {
	// State is Completed or Partial.
	State string `json:"state"`
	// StartedTime is when the rollout started.
	StartedTime metav1.Time `json:"startedTime"`
	// CompletionTime is when it completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Version is the release version.
	Version string `json:"version"`
	// Image is the release image.
	Image string `json:"image"`
	// Verified is true when the release was checked.
	Verified bool `json:"verified"`
}

// ClusterVersionStatus is the observed version.
type ClusterVersionStatus struct {
	// Desired is the release being rolled out.
	Desired Release `json:"desired"`
	// History lists rollouts, newest first.
	// +optional
	// +listType=atomic
	History []UpdateHistory `json:"history,omitempty"`
	// Conditions are Available, Progressing and Failing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []ClusterOperatorStatusCondition `json:"conditions,omitempty"`
}

// ClusterVersionList is a list of ClusterVersions.
//
// +kubebuilder:object:root=true
type ClusterVersionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterVersion `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterOperator{}, &ClusterOperatorList{}, &ClusterVersion{}, &ClusterVersionList{})
}
