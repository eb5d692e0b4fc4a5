package ignition

import (
	"strings"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

func TestWorkerConfigValidatesAndCarriesMirrors(t *testing.T) {
	w := Worker{
		BootstrapKubeconfig: []byte("apiVersion: v1\nkind: Config\n"),
		CA:                  []byte("-----BEGIN CERTIFICATE-----\n"),
		PullSecret:          []byte(`{"auths":{}}`),
		SSHKey:              "ssh-ed25519 AAAA core@example",
		ImageContentSources: []hyperv1.ImageContentSource{
			{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"registry.example.com:5000/openshift/release"}},
			{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"registry.example.com:5000/openshift/release-images"}},
			{Source: "docker.io/library", Mirrors: []string{"registry.hcp.test/library", "mirror.example.com/library"}},
		},
		Registry:   "https://10.231.1.1:8088",
		RegistryCA: []byte("ca"),
		PauseImage: "registry.hcp.test/pause:1.37.2",
		NodeLabels: map[string]string{"node-role.kubernetes.io/worker": ""},
		Taints:     []hyperv1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}},
	}
	b, err := w.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg, rpt, err := ignition.Parse(b)
	if err != nil || rpt.IsFatal() {
		t.Fatalf("invalid: %v %s", err, rpt)
	}
	files := map[string]string{}
	for _, f := range cfg.Storage.Files {
		d, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatal(err)
		}
		files[f.Path] = string(d.Data)
	}
	reg := files[RegistriesConfPath]
	for _, want := range []string{`location = "quay.io/openshift-release-dev/ocp-release"`, `location = "registry.example.com:5000/openshift/release-images"`, `location = "registry.example.com:5000/openshift/release"`} {
		if !strings.Contains(reg, want) {
			t.Errorf("registries.conf lacks %s:\n%s", want, reg)
		}
	}
	for _, p := range []string{BootstrapKubeconfigPath, CAPath, PullSecretPath, KubeletConfigPath} {
		if files[p] == "" {
			t.Errorf("no %s", p)
		}
	}
	docker := files[ContainerdCertsDir+"/docker.io/hosts.toml"]
	for _, want := range []string{`server = "https://registry-1.docker.io"`, `[host."https://10.231.1.1:8088"]`, `ca = "/etc/containerd/certs.d/registry.hcp.test/ca.crt"`, `[host."https://mirror.example.com"]`} {
		if !strings.Contains(docker, want) {
			t.Errorf("docker.io hosts.toml lacks %s:\n%s", want, docker)
		}
	}
	if quay := files[ContainerdCertsDir+"/quay.io/hosts.toml"]; strings.Contains(quay, "[host.") || !strings.Contains(quay, "repository path differs") {
		t.Errorf("quay.io hosts.toml maps a mirror whose repository path differs:\n%s", quay)
	}
	if own := files[ContainerdCertsDir+"/registry.hcp.test/hosts.toml"]; !strings.Contains(own, `server = "https://10.231.1.1:8088"`) || strings.Contains(own, "[host.") {
		t.Errorf("registry.hcp.test hosts.toml:\n%s", own)
	}
	if !strings.Contains(files[ContainerdConfigPath], `sandbox = "registry.hcp.test/pause:1.37.2"`) {
		t.Errorf("containerd config:\n%s", files[ContainerdConfigPath])
	}
	var unit string
	for _, u := range cfg.Systemd.Units {
		if u.Name == "kubelet.service" {
			unit = *u.Contents
		}
	}
	if !strings.Contains(unit, "--node-labels=node-role.kubernetes.io/worker=") || !strings.Contains(unit, "--register-with-taints=dedicated=gpu:NoSchedule") {
		t.Errorf("kubelet unit:\n%s", unit)
	}
	if cfg.Passwd.Users[0].Name != "core" {
		t.Errorf("users %+v", cfg.Passwd.Users)
	}
	ptr, err := Pointer("https://192.0.2.10:8088/ignition", "tok", "clusters/example", []byte("ca"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ptr), `"Bearer tok"`) || !strings.Contains(string(ptr), `"clusters/example"`) {
		t.Errorf("pointer config: %s", ptr)
	}
}

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var tk Tokens
	if !tk.Due(now, time.Hour) {
		t.Fatal("no token yet, not due")
	}
	first := tk.Rotate(now)
	if !first.Valid(first.Current, now, time.Minute) || first.Valid("", now, time.Minute) || first.Valid("forged", now, time.Minute) {
		t.Fatal("validation of the first token")
	}
	second := first.Rotate(now.Add(time.Hour))
	if !second.Valid(first.Current, now.Add(time.Hour+30*time.Second), time.Minute) {
		t.Error("previous token refused within the grace period")
	}
	if second.Valid(first.Current, now.Add(time.Hour+2*time.Minute), time.Minute) {
		t.Error("previous token accepted after the grace period")
	}
	third := second.Rotate(now.Add(2 * time.Hour))
	if third.Valid(first.Current, now.Add(2*time.Hour), time.Hour) {
		t.Error("a token two rotations old was accepted")
	}
	if !second.Due(now.Add(2*time.Hour+time.Second), time.Hour) || second.Due(now.Add(61*time.Minute), time.Hour) {
		t.Error("due")
	}
}

// With a konnectivity endpoint, the node gets the agent's environment and unit.
func TestWorkerConfigRunsTheKonnectivityAgent(t *testing.T) {
	b, err := Worker{BootstrapKubeconfig: []byte("x"), CA: []byte("ca"), PullSecret: []byte("{}"), Konnectivity: "192.0.2.10:30091"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := ignition.Parse(b)
	env := ""
	for _, f := range cfg.Storage.Files {
		if f.Path == KonnectivityEnvPath {
			d, _ := dataurl.DecodeString(*f.Contents.Source)
			env = string(d.Data)
		}
	}
	if env != "PROXY_SERVER_HOST=192.0.2.10\nPROXY_SERVER_PORT=30091\n" {
		t.Errorf("konnectivity env %q", env)
	}
	var unit string
	for _, u := range cfg.Systemd.Units {
		if u.Name == "konnectivity-agent.service" && u.Contents != nil {
			unit = *u.Contents
		}
	}
	if !strings.Contains(unit, "--proxy-server-host=${PROXY_SERVER_HOST}") {
		t.Errorf("konnectivity unit:\n%s", unit)
	}
	// Without an endpoint there is no agent to run.
	b, _ = Worker{BootstrapKubeconfig: []byte("x"), CA: []byte("ca"), PullSecret: []byte("{}")}.Config()
	if strings.Contains(string(b), "konnectivity") {
		t.Errorf("konnectivity configured without an endpoint")
	}
}

func TestInsecureRegistries(t *testing.T) {
	b, err := Worker{CA: []byte("ca"), InsecureRegistries: []string{"192.0.2.2:5000"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := ignition.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var hosts string
	for _, f := range cfg.Storage.Files {
		if f.Path == ContainerdCertsDir+"/192.0.2.2:5000/hosts.toml" {
			d, err := dataurl.DecodeString(*f.Contents.Source)
			if err != nil {
				t.Fatal(err)
			}
			hosts = string(d.Data)
		}
	}
	for _, want := range []string{`[host."https://192.0.2.2:5000"]`, "skip_verify = true", `[host."http://192.0.2.2:5000"]`} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts.toml lacks %q:\n%s", want, hosts)
		}
	}
	for host, ok := range map[string]bool{"192.0.2.2:5000": true, "mirror.example.com": true, "[2001:db8::1]:443": true,
		"": false, "http://mirror.example.com": false, "mirror.example.com/hcp": false, "mirror:0": false, "mirror:x": false, "Mirror_1": false} {
		if got := CheckInsecureRegistry(host) == ""; got != ok {
			t.Errorf("CheckInsecureRegistry(%q) accepted %v, want %v", host, got, ok)
		}
	}
}
