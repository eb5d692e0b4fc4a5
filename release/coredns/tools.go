//go:build tools

// Package tools pins CoreDNS, which the release payload builds.
package tools

import _ "github.com/coredns/coredns"
