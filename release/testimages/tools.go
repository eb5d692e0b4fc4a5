//go:build tools

// Package tools pins the test images' programs built from this module:
// agnhost, the Kubernetes end-to-end tests' multipurpose test server.
package tools

import (
	_ "k8s.io/kubernetes/test/images/agnhost"
)
