//go:build tools

// Package tools pins SeaweedFS, whose S3 gateway the backup tests write
// archives to: a real S3-compatible store on loopback. Only the tests run it;
// it is not part of the release payload.
package tools

import (
	_ "github.com/seaweedfs/seaweedfs/weed"
)
