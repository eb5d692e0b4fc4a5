// Package v1beta1 holds the agent-install.openshift.io/v1beta1 API: InfraEnv (a
// set of hosts that boot one discovery configuration) and Agent (one discovered
// host), with assisted-service's field names.
//
// +kubebuilder:object:generate=true
// +groupName=agent-install.openshift.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "agent-install.openshift.io", Version: "v1beta1"}

	// SchemeBuilder registers these types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds these types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
