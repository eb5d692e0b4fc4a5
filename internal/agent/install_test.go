package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"
)

func ignFile(path, content string, mode int) igntypes.File {
	src := dataurl.EncodeBytes([]byte(content))
	return igntypes.File{Node: igntypes.Node{Path: path}, FileEmbedded1: igntypes.FileEmbedded1{Contents: igntypes.Resource{Source: &src}, Mode: &mode}}
}

// Apply writes files, units and ssh keys under the root and nowhere else.
func TestApplyWritesUnderRoot(t *testing.T) {
	root := t.TempDir()
	yes, unit := true, "[Service]\nExecStart=/usr/bin/kubelet\n"
	cfg := igntypes.Config{
		Storage: igntypes.Storage{Files: []igntypes.File{ignFile("/etc/kubernetes/ca.crt", "CA", 0o644), ignFile("/var/lib/kubelet/config.json", "{}", 0o600)}},
		Systemd: igntypes.Systemd{Units: []igntypes.Unit{{Name: "kubelet.service", Enabled: &yes, Contents: &unit}}},
		Passwd:  igntypes.Passwd{Users: []igntypes.PasswdUser{{Name: "core", SSHAuthorizedKeys: []igntypes.SSHAuthorizedKey{"ssh-ed25519 AAAA"}}}},
	}
	if err := Apply(cfg, root); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"etc/kubernetes/ca.crt":                        "CA",
		"etc/systemd/system/kubelet.service":           unit,
		"home/core/.ssh/authorized_keys.d/ignition":    "ssh-ed25519 AAAA\n",
		"etc/systemd/system/multi-user.target.wants/x": "",
	} {
		if strings.HasSuffix(path, "/x") {
			if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/kubelet.service")); err != nil {
				t.Errorf("kubelet.service not enabled: %v", err)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", path, b, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/kubelet/config.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("pull secret mode: %v %v", st, err)
	}
	for _, bad := range []string{"relative/path", "/etc/../../escape"} {
		err := Apply(igntypes.Config{Storage: igntypes.Storage{Files: []igntypes.File{ignFile(bad, "x", 0o644)}}}, root)
		if err == nil || !strings.Contains(err.Error(), "must be absolute and stay on the node") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// Install refuses pointer configs it cannot follow, naming the field.
func TestInstallRefusesBadPointers(t *testing.T) {
	for name, pointer := range map[string]string{
		"not JSON":        "{",
		"no merge source": `{"ignition":{"version":"3.4.0"}}`,
		"bad CA":          `{"ignition":{"version":"3.4.0","config":{"merge":[{"source":"https://192.0.2.1/ignition"}]},"security":{"tls":{"certificateAuthorities":[{"source":"data:,notpem"}]}}}}`,
	} {
		if _, err := Install(t.Context(), []byte(pointer), t.TempDir()); err == nil || !strings.Contains(err.Error(), "pointer config") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
