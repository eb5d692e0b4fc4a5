// Package v1beta1 holds the hypershift.openshift.io/v1beta1 API: HostedCluster,
// NodePool and HostedControlPlane, with the group, versions and JSON field names of
// HyperShift so that manifests written for it apply unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=hypershift.openshift.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "hypershift.openshift.io", Version: "v1beta1"}

	// SchemeBuilder registers these types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds these types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
