//go:build tools

// Programs of the release built from modules without a main of their own here.
package tools

import (
	_ "go.etcd.io/etcd/etcdutl/v3"
)
