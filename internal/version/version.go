// Package version is the version of the hcp binaries, set at build time.
package version

// Version is set with -ldflags "-X github.com/hcp-dev/hcp/internal/version.Version=...".
var Version = "dev"
