// Package v1beta1 holds the capi-provider.agent-install.openshift.io/v1beta1 API:
// the Cluster API infrastructure provider for Agents (AgentCluster, AgentMachine,
// AgentMachineTemplate), with cluster-api-provider-agent's field names.
//
// +kubebuilder:object:generate=true
// +groupName=capi-provider.agent-install.openshift.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "capi-provider.agent-install.openshift.io", Version: "v1beta1"}

	// SchemeBuilder registers these types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds these types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
