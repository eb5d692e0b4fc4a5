package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release payload carries what a node runs, each at the version its
// release.json names: the binaries report it themselves.
func TestReleasePayloadCarriesTheNodeComponents(t *testing.T) {
	for _, tc := range []struct {
		component string
		binary    string
		args      []string
		want      func(version string) string
	}{
		{"kubelet", "kubelet", []string{"--version"}, func(v string) string { return "Kubernetes " + v }},
		{"kube-proxy", "kube-proxy", []string{"--version"}, func(v string) string { return "Kubernetes " + v }},
		{"containerd", "containerd", []string{"--version"}, func(v string) string { return " " + v + " " }},
		{"containerd", "containerd-shim-runc-v2", []string{"-v"}, func(v string) string { return v }},
		{"containerd", "ctr", []string{"--version"}, func(v string) string { return v }},
		{"runc", "runc", []string{"--version"}, func(v string) string { return "runc version " + strings.TrimPrefix(v, "v") }},
		{"runc", "runc", []string{"--version"}, func(string) string { return "libseccomp: " }},
		{"cni-plugins", "cni/bridge", nil, func(v string) string { return "CNI bridge plugin " + v }},
		{"cni-plugins", "cni/host-local", nil, func(v string) string { return "CNI host-local plugin " + v }},
		{"cni-plugins", "cni/loopback", nil, func(v string) string { return "CNI loopback plugin " + v }},
		{"cni-plugins", "cni/portmap", nil, func(v string) string { return "CNI portmap plugin " + v }},
		{"crictl", "crictl", []string{"--version"}, func(v string) string { return "crictl version " + v }},
		{"coredns", "coredns", []string{"-version"}, func(v string) string { return "CoreDNS-" + strings.TrimPrefix(v, "v") }},
	} {
		version := rel.Components[tc.component]
		if version == "" {
			t.Errorf("release.json names no version of %s", tc.component)
			continue
		}
		out, _ := exec.Command(filepath.Join(rel.Dir, tc.binary), tc.args...).CombinedOutput()
		if want := tc.want(version); !strings.Contains(string(out), want) {
			t.Errorf("%s %s: %q does not contain %q", tc.binary, strings.Join(tc.args, " "), strings.TrimSpace(string(out)), want)
		}
	}
}
