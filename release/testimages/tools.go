//go:build tools

// Package tools pins the test images' programs built from this module:
// agnhost, the Kubernetes end-to-end tests' multipurpose test server;
// sample-apiserver, the aggregated API server of the aggregator's conformance
// spec; and nnp, the no-new-privileges check of the security context specs.
package tools

import (
	_ "k8s.io/kubernetes/test/images/agnhost"
	_ "k8s.io/kubernetes/test/images/nonewprivs"
	_ "k8s.io/sample-apiserver"
)
