package infra

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	hcpignition "github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/release"
)

// Artifact file names, as ?file_name= of the download endpoint.
const (
	FileIgnition = "discovery.ign"
	FileScript   = "discovery.sh"
	FileAgent    = "hcp-agent"
	// FileKonnectivityAgent is the konnectivity agent nodes run to open the
	// control plane's reverse tunnel.
	FileKonnectivityAgent = "konnectivity-agent"
)

// Artifacts renders an InfraEnv's discovery artifacts: an Ignition config for
// CoreOS-style hosts and a shell script for any Linux host. Both start hcp-agent
// with the service URL, the InfraEnv ID, the service CA and a token.
type Artifacts struct {
	// ServiceURL is the service's address as hosts reach it (https://host:port).
	ServiceURL string
	// CA is the PEM CA that signed the service's certificate.
	CA     []byte
	Signer *Signer
	// TokenTTL is how long a token in an artifact is valid.
	TokenTTL time.Duration
	// KonnectivityAgentBinary is the konnectivity agent served to installed hosts.
	KonnectivityAgentBinary string
	// NodeBinaries are the release binaries served to hosts that become
	// nodes, by artifact name (kubelet, containerd, ..., cni-bridge): the
	// default release's.
	NodeBinaries map[string]string
	// Releases serves the node binaries of other releases (?release=<name>).
	Releases release.Store
	// AgentBinary is the hcp-agent executable served to hosts.
	AgentBinary string
}

// NodeBinaries are a release's node binaries by artifact name.
func NodeBinaries(rel *release.Release) map[string]string {
	out := map[string]string{}
	for _, b := range hcpignition.NodeBinaries {
		out[b] = rel.Binary(b)
	}
	for _, p := range hcpignition.CNIPlugins {
		out["cni-"+p] = rel.Binary("cni/" + p)
	}
	return out
}

// URL is the download URL of an artifact, carrying a fresh token.
func (a *Artifacts) URL(ie *agentv1.InfraEnv, file string) string {
	path := strings.Replace(agentapi.DownloadPath, "{infra_env_id}", string(ie.UID), 1)
	q := url.Values{"file_name": {file}, "api_key": {a.Signer.Issue(string(ie.UID), a.TokenTTL)}}
	return a.ServiceURL + path + "?" + q.Encode()
}

// Render returns an artifact's content.
func (a *Artifacts) Render(_ context.Context, ie *agentv1.InfraEnv, file string) ([]byte, error) {
	token := a.Signer.Issue(string(ie.UID), a.TokenTTL)
	switch file {
	case FileScript:
		return []byte(a.script(ie, token)), nil
	case FileIgnition:
		return a.ignition(ie, token)
	}
	return nil, fmt.Errorf("unknown artifact %q", file)
}

func (a *Artifacts) agentArgs(ie *agentv1.InfraEnv, caFile, tokenFile, dataDir string) string {
	return fmt.Sprintf("--service-url %s --infra-env-id %s --token-file %s --ca-file %s --data-dir %s",
		a.ServiceURL, ie.UID, tokenFile, caFile, dataDir)
}

// script starts hcp-agent on any Linux host: curl -fsSk '<script URL>' | sh
func (a *Artifacts) script(ie *agentv1.InfraEnv, token string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# hcp discovery for InfraEnv " + ie.Namespace + "/" + ie.Name + "\nset -eu\n")
	b.WriteString("dir=${HCP_AGENT_DIR:-/var/lib/hcp-agent}\nmkdir -p \"$dir\"\numask 077\n")
	b.WriteString("cat > \"$dir/ca.crt\" <<'HCP_CA'\n" + strings.TrimSpace(string(a.CA)) + "\nHCP_CA\n")
	b.WriteString("printf '%s' '" + token + "' > \"$dir/token\"\n")
	for _, kv := range proxyEnv(ie) {
		b.WriteString("export " + kv + "\n")
	}
	b.WriteString(fmt.Sprintf("curl -fsS --cacert \"$dir/ca.crt\" -o \"$dir/hcp-agent.new\" '%s'\n", a.URL(ie, FileAgent)))
	b.WriteString("chmod 0755 \"$dir/hcp-agent.new\" && mv \"$dir/hcp-agent.new\" \"$dir/hcp-agent\"\n")
	b.WriteString("exec \"$dir/hcp-agent\" discover " + a.agentArgs(ie, "\"$dir/ca.crt\"", "\"$dir/token\"", "\"$dir\"") + " \"$@\"\n")
	return b.String()
}

// ignition is the discovery Ignition config, merged with the InfraEnv's
// ignitionConfigOverride and validated.
func (a *Artifacts) ignition(ie *agentv1.InfraEnv, token string) ([]byte, error) {
	str := func(s string) *string { return &s }
	mode := func(m int) *int { return &m }
	yes := true
	unit := fmt.Sprintf(`[Unit]
Description=hcp discovery agent
Wants=network-online.target
After=network-online.target

[Service]
%sExecStart=/usr/local/bin/hcp-agent discover %s
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`, environment(ie), a.agentArgs(ie, "/etc/hcp-agent/ca.crt", "/etc/hcp-agent/token", "/var/lib/hcp-agent"))
	cfg := igntypes.Config{
		Ignition: igntypes.Ignition{Version: "3.4.0", Security: igntypes.Security{TLS: igntypes.TLS{
			CertificateAuthorities: []igntypes.Resource{{Source: str(dataurl.EncodeBytes(a.CA))}}}}},
		Storage: igntypes.Storage{Files: []igntypes.File{
			{Node: igntypes.Node{Path: "/etc/hcp-agent/ca.crt"}, FileEmbedded1: igntypes.FileEmbedded1{
				Contents: igntypes.Resource{Source: str(dataurl.EncodeBytes(a.CA))}, Mode: mode(0o644)}},
			{Node: igntypes.Node{Path: "/etc/hcp-agent/token"}, FileEmbedded1: igntypes.FileEmbedded1{
				Contents: igntypes.Resource{Source: str(dataurl.EncodeBytes([]byte(token)))}, Mode: mode(0o600)}},
			{Node: igntypes.Node{Path: "/usr/local/bin/hcp-agent"}, FileEmbedded1: igntypes.FileEmbedded1{
				Contents: igntypes.Resource{Source: str(a.URL(ie, FileAgent))}, Mode: mode(0o755)}},
		}},
		Systemd: igntypes.Systemd{Units: []igntypes.Unit{{Name: "hcp-agent.service", Enabled: &yes, Contents: str(unit)}}},
	}
	if key := strings.TrimSpace(ie.Spec.SSHAuthorizedKey); key != "" {
		cfg.Passwd.Users = []igntypes.PasswdUser{{Name: "core", SSHAuthorizedKeys: []igntypes.SSHAuthorizedKey{igntypes.SSHAuthorizedKey(key)}}}
	}
	if o := ie.Spec.IgnitionConfigOverride; o != "" {
		override, _, err := ignition.Parse([]byte(o))
		if err != nil {
			return nil, fmt.Errorf("spec.ignitionConfigOverride: %w", err)
		}
		cfg = ignition.Merge(cfg, override)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if _, rpt, err := ignition.Parse(b); err != nil || rpt.IsFatal() {
		return nil, fmt.Errorf("discovery Ignition is invalid: %v %s", err, rpt.String())
	}
	return b, nil
}

// proxyEnv is the environment that makes the agent use the InfraEnv's proxy,
// each value single-quoted for a shell.
func proxyEnv(ie *agentv1.InfraEnv) []string {
	p := ie.Spec.Proxy
	if p == nil {
		return nil
	}
	var out []string
	for _, kv := range [][2]string{{"HTTP_PROXY", p.HTTPProxy}, {"HTTPS_PROXY", p.HTTPSProxy}, {"NO_PROXY", p.NoProxy}} {
		if kv[1] != "" {
			out = append(out, kv[0]+"='"+strings.ReplaceAll(kv[1], "'", "")+"'")
		}
	}
	return out
}

func environment(ie *agentv1.InfraEnv) string {
	var b strings.Builder
	for _, kv := range proxyEnv(ie) {
		k, v, _ := strings.Cut(kv, "=")
		b.WriteString("Environment=\"" + k + "=" + strings.Trim(v, "'") + "\"\n")
	}
	return b.String()
}

// GOARCH returns the Go architecture of an InfraEnv's cpuArchitecture.
func GOARCH(cpuArchitecture string) string {
	switch cpuArchitecture {
	case "", "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return cpuArchitecture
}
