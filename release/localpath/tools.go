//go:build tools

// Package tools pins rancher's local-path-provisioner, which the release
// payload builds: the provisioner of management nodes' volumes.
package tools

import _ "github.com/rancher/local-path-provisioner"
