//go:build tools

// Package tools pins runc, which the release payload builds with seccomp.
package tools

import _ "github.com/opencontainers/runc"
