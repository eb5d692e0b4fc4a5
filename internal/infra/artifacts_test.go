package infra

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/pki"
)

func testArtifacts(t *testing.T) (*Artifacts, *agentv1.InfraEnv) {
	t.Helper()
	ca, err := pki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSigner([]byte(strings.Repeat("k", 32)), nil)
	ie := &agentv1.InfraEnv{}
	ie.Namespace, ie.Name, ie.UID = "clusters-example", "example", "b34ec008-8055-484b-bc0e-fa73f513f8fa"
	ie.Spec.SSHAuthorizedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGa2lK0VHJkCrdtGtXfHvjDfYmVMjd6cV1Fpm44kDgqN core@example"
	ie.Spec.Proxy = &agentv1.Proxy{HTTPSProxy: "http://proxy.example.com:3128", NoProxy: ".cluster.local"}
	return &Artifacts{ServiceURL: "https://192.0.2.10:8088", CA: ca.CertPEM, Signer: s, TokenTTL: time.Hour, AgentBinary: "/bin/true"}, ie
}

func TestDiscoveryIgnitionValidates(t *testing.T) {
	a, ie := testArtifacts(t)
	ie.Spec.IgnitionConfigOverride = `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,hello"}}]}}`
	b, err := a.Render(context.Background(), ie, FileIgnition)
	if err != nil {
		t.Fatal(err)
	}
	cfg, rpt, err := ignition.Parse(b)
	if err != nil || rpt.IsFatal() {
		t.Fatalf("invalid Ignition: %v %s", err, rpt)
	}
	paths := map[string]bool{}
	for _, f := range cfg.Storage.Files {
		paths[f.Path] = true
	}
	for _, p := range []string{"/etc/hcp-agent/ca.crt", "/etc/hcp-agent/token", "/usr/local/bin/hcp-agent", "/etc/motd"} {
		if !paths[p] {
			t.Errorf("Ignition lacks %s", p)
		}
	}
	if len(cfg.Passwd.Users) != 1 || cfg.Passwd.Users[0].Name != "core" || len(cfg.Passwd.Users[0].SSHAuthorizedKeys) != 1 {
		t.Errorf("user core with the ssh key: %+v", cfg.Passwd.Users)
	}
	unit := *cfg.Systemd.Units[0].Contents
	for _, want := range []string{"--service-url https://192.0.2.10:8088", "--infra-env-id " + string(ie.UID), `Environment="HTTPS_PROXY=http://proxy.example.com:3128"`} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	ie.Spec.IgnitionConfigOverride = `{"ignition":{"version":"9.9.9"}}`
	if _, err := a.Render(context.Background(), ie, FileIgnition); err == nil || !strings.Contains(err.Error(), "spec.ignitionConfigOverride") {
		t.Errorf("bad override: %v", err)
	}
}

func TestDiscoveryScriptIsValidShell(t *testing.T) {
	a, ie := testArtifacts(t)
	b, err := a.Render(context.Background(), ie, FileScript)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "discovery.sh")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s\n%s", err, out, b)
	}
	for _, want := range []string{"export HTTPS_PROXY='http://proxy.example.com:3128'", "--ca-file", "BEGIN CERTIFICATE", "file_name=hcp-agent"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q", want)
		}
	}
}
