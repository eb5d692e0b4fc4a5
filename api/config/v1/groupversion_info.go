// Package v1 holds the part of the config.openshift.io/v1 API that hcp serves
// inside every hosted cluster: ClusterOperator (one per control plane component,
// with its real health) and ClusterVersion (the release the cluster runs), so
// that `kubectl get clusteroperators` tells the truth.
//
// +kubebuilder:object:generate=true
// +groupName=config.openshift.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "config.openshift.io", Version: "v1"}

	// SchemeBuilder registers these types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds these types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
