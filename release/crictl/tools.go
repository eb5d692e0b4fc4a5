//go:build tools

// Package tools pins crictl, which the release payload builds.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
