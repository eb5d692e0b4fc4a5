package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// labHost is a host that ran the discovery script of an InfraEnv.
type labHost struct {
	cmd  *exec.Cmd
	dir  string
	name string
}

// startHost runs the InfraEnv's one-line discovery script as a user would:
// curl -fsSk '<script URL>' | sh, with its own directory and hostname.
func startHost(t *testing.T, scriptURL, dir, hostname string, extra ...string) *labHost {
	t.Helper()
	cmd := exec.Command("sh", "-c", fmt.Sprintf("curl -fsSk '%s' | sh -s -- --hostname %s %s", scriptURL, hostname, strings.Join(extra, " ")))
	cmd.Env = append(os.Environ(), "HCP_AGENT_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(t.TempDir(), hostname+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("last lines of %s's log:\n%s", hostname, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &labHost{cmd: cmd, dir: dir, name: hostname}
	t.Cleanup(h.stop)
	return h
}

func (h *labHost) stop() {
	if h.cmd.Process != nil {
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		_, _ = h.cmd.Process.Wait()
	}
}

func (h *labHost) hostID(t *testing.T) string {
	t.Helper()
	var id string
	eventually(t, 30*time.Second, h.name+" host ID", func() error {
		b, err := os.ReadFile(filepath.Join(h.dir, "host-id"))
		id = strings.TrimSpace(string(b))
		return err
	})
	return id
}

func (u *upProcess) scriptURL(t *testing.T, ns, name string) string {
	t.Helper()
	var out string
	eventually(t, 30*time.Second, "discovery artifacts of "+name, func() error {
		out, _ = u.kubectl("", "-n", ns, "get", "infraenv", name, "-o", "jsonpath={.status.bootArtifacts.scriptURL}")
		if out == "" {
			return fmt.Errorf("no script URL yet")
		}
		return nil
	})
	return out
}

func (u *upProcess) agentField(ns, name, jsonpath string) string {
	out, _ := u.kubectl("", "-n", ns, "get", "agent", name, "-o", "jsonpath="+jsonpath)
	return out
}

func (u *upProcess) waitAgent(t *testing.T, ns, name, jsonpath, want string) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("agent %s %s=%s", name, jsonpath, want), func() error {
		if got := u.agentField(ns, name, jsonpath); got != want {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
}

const agentFlags = "--agent-poll-interval=1s"

func TestHostsBecomeAgents(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags, "--agent-disconnect-timeout=4s")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	out := up.mustHCP("create", "infraenv", "--name", "hosts", "--namespace", "clusters-example", "--pull-secret", pull)
	if !strings.Contains(out, "curl -fsSk") {
		t.Errorf("hcp create infraenv does not say how to start hosts:\n%s", out)
	}
	script := up.scriptURL(t, "clusters-example", "hosts")

	var hosts []*labHost
	for i := range 3 {
		hosts = append(hosts, startHost(t, script, t.TempDir(), fmt.Sprintf("host-%d", i)))
	}
	for _, h := range hosts {
		id := h.hostID(t)
		up.waitAgent(t, "clusters-example", id, "{.status.debugInfo.state}", "known-unbound")
		got := up.agentField("clusters-example", id, `{.status.inventory.hostname} {.status.inventory.cpu.count} {.status.conditions[?(@.type=="Validated")].status} {.status.conditions[?(@.type=="Connected")].status} {.status.conditions[?(@.type=="Bound")].status} {.spec.approved} {.metadata.labels.infraenvs\.agent-install\.openshift\.io}`)
		f := strings.Fields(got)
		if len(f) != 7 || f[0] != h.name || f[1] == "0" || f[2] != "True" || f[3] != "True" || f[4] != "False" || f[5] != "false" || f[6] != "hosts" {
			t.Errorf("agent %s (%s): hostname cpu Validated Connected Bound approved infraenv = %q", id, h.name, got)
		}
		if mem := up.agentField("clusters-example", id, "{.status.inventory.memory.physicalBytes}"); mem == "" || mem == "0" {
			t.Errorf("agent %s reports no memory", id)
		}
		if disks := up.agentField("clusters-example", id, "{.status.inventory.disks[*].name}"); disks == "" {
			t.Errorf("agent %s reports no disks", id)
		}
	}

	// Approval by hand.
	first := hosts[0].hostID(t)
	up.waitAgent(t, "clusters-example", first, `{.status.conditions[?(@.type=="RequirementsMet")].reason}`, "AgentIsNotApproved")
	up.mustKubectl("", "-n", "clusters-example", "patch", "agent", first, "--type", "merge", "-p", `{"spec":{"approved":true}}`)
	up.waitAgent(t, "clusters-example", first, `{.status.conditions[?(@.type=="RequirementsMet")].status}`, "True")

	// A host that stops is disconnected; started again, it is the same Agent.
	second := hosts[1]
	id := second.hostID(t)
	second.stop()
	up.waitAgent(t, "clusters-example", id, "{.status.debugInfo.state}", "disconnected-unbound")
	up.waitAgent(t, "clusters-example", id, `{.status.conditions[?(@.type=="Connected")].status}`, "False")
	again := startHost(t, script, second.dir, second.name)
	if again.hostID(t) != id {
		t.Errorf("restarted host has a new ID")
	}
	up.waitAgent(t, "clusters-example", id, "{.status.debugInfo.state}", "known-unbound")
	if n := len(strings.Fields(up.mustKubectl("", "-n", "clusters-example", "get", "agents", "-o", "name"))); n != 3 {
		t.Errorf("%d Agents, want 3", n)
	}

	// An InfraEnv with autoApprove approves its hosts itself.
	up.mustHCP("create", "infraenv", "--name", "auto", "--namespace", "clusters-auto", "--pull-secret", pull, "--auto-approve")
	auto := startHost(t, up.scriptURL(t, "clusters-auto", "auto"), t.TempDir(), "auto-0")
	up.waitAgent(t, "clusters-auto", auto.hostID(t), "{.spec.approved} {.status.debugInfo.state}", "true known-unbound")
}

func TestHostBelowRequirementsIsInsufficient(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags, "--agent-min-memory=1Ti")
	if !strings.Contains(up.output(), "requirements lowered/changed") {
		t.Errorf("hcp up did not say the requirements changed:\n%s", up.output())
	}
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "small", "--namespace", "clusters-small", "--pull-secret", pull, "--auto-approve")
	h := startHost(t, up.scriptURL(t, "clusters-small", "small"), t.TempDir(), "small-0")
	id := h.hostID(t)
	up.waitAgent(t, "clusters-small", id, "{.status.debugInfo.state}", "insufficient-unbound")
	mem := up.agentField("clusters-small", id, `{.status.validationsInfo.hardware[?(@.id=="has-min-memory")].status}: {.status.validationsInfo.hardware[?(@.id=="has-min-memory")].message}`)
	if !strings.HasPrefix(mem, "failure: ") || !strings.Contains(mem, "needs at least 1024.0 GiB") {
		t.Errorf("has-min-memory: %q", mem)
	}
	if v := up.agentField("clusters-small", id, `{.status.conditions[?(@.type=="Validated")].message}`); !strings.Contains(v, "has-min-memory") {
		t.Errorf("Validated does not name the failing validation: %q", v)
	}
}

func TestInfraServiceRefusesBadTokensAndBodies(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "a", "--namespace", "clusters-a", "--pull-secret", pull)
	up.mustHCP("create", "infraenv", "--name", "b", "--namespace", "clusters-b", "--pull-secret", pull)
	ua, _ := url.Parse(up.scriptURL(t, "clusters-a", "a"))
	ub, _ := url.Parse(up.scriptURL(t, "clusters-b", "b"))
	idA := strings.Split(ua.Path, "/")[5]
	tokA, tokB := ua.Query().Get("api_key"), ub.Query().Get("api_key")
	register := ua.Scheme + "://" + ua.Host + "/api/assisted-install/v2/infra-envs/" + idA + "/hosts"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	post := func(token string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, register, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("X-Secret-Key", token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Reason string }
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Reason
	}
	good := []byte(`{"host_id":"c748ff1a-3073-43e5-b4e8-d23256877396"}`)
	payload, sig, _ := strings.Cut(tokA, ".")
	cases := []struct {
		name   string
		token  string
		body   []byte
		status int
		reason string
	}{
		{"no token", "", good, 401, "X-Secret-Key header is missing"},
		{"forged", payload + "." + strings.Repeat("A", len(sig)), good, 401, "signature"},
		{"other InfraEnv's token", tokB, good, 401, "another InfraEnv"},
		{"garbage", "not-a-token", good, 401, "malformed"},
		{"oversized body", tokA, []byte(`{"host_id":"` + strings.Repeat("a", 64<<10) + `"}`), 400, "larger than"},
		{"malformed body", tokA, []byte(`{"host_id":`), 400, "body:"},
		{"unknown field", tokA, []byte(`{"host_id":"c748ff1a-3073-43e5-b4e8-d23256877396","admin":true}`), 400, `unknown field "admin"`},
		{"bad host_id", tokA, []byte(`{"host_id":"../../etc"}`), 400, "host_id: must be a lowercase UUID"},
		{"good", tokA, good, 201, ""},
	}
	for _, tc := range cases {
		status, reason := post(tc.token, tc.body)
		if status != tc.status || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: got %d %q, want %d with %q", tc.name, status, reason, tc.status, tc.reason)
		}
	}
	if out := up.mustKubectl("", "-n", "clusters-a", "get", "agents", "-o", "name"); strings.TrimSpace(out) != "agent.agent-install.openshift.io/c748ff1a-3073-43e5-b4e8-d23256877396" {
		t.Errorf("agents after the requests: %q", out)
	}
	// Hosts download the node binaries with the InfraEnv's token; other
	// names are refused with the list of what there is.
	download := func(file, token string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, ua.Scheme+"://"+ua.Host+"/api/assisted-install/v2/infra-envs/"+idA+"/downloads/files?file_name="+file, nil)
		req.Header.Set("X-Secret-Key", token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	want, err := os.ReadFile(rel.Binary("cni/bridge"))
	if err != nil {
		t.Fatal(err)
	}
	if status, b := download("cni-bridge", tokA); status != 200 || !bytes.Equal(b, want) {
		t.Errorf("cni-bridge download: %d, %d bytes (want %d)", status, len(b), len(want))
	}
	if status, b := download("etc-shadow", tokA); status != 400 || !strings.Contains(string(b), "kubelet") {
		t.Errorf("unknown artifact: %d %s", status, b)
	}
	if status, _ := download("kubelet", tokB); status != 401 {
		t.Errorf("kubelet with another InfraEnv's token: %d", status)
	}
	// The registry serves pulls and refuses pushes.
	resp, err := client.Post(ua.Scheme+"://"+ua.Host+"/v2/pause/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a push to the registry: %s", resp.Status)
	}
	resp, err = client.Head(ua.Scheme + "://" + ua.Host + "/v2/pause/manifests/" + rel.Name)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the pause image's manifest: %s", resp.Status)
	}
}

func TestLabHostsHaveTheirOwnNetworks(t *testing.T) {
	up := startUp(t, t.TempDir(), "--agents", "2", agentFlags)
	eventually(t, time.Minute, "two lab hosts known-unbound", func() error {
		out, err := up.kubectl("", "-n", "clusters-example", "get", "agents", "-o",
			`jsonpath={range .items[*]}{.status.inventory.hostname}={.status.debugInfo.state}={.status.inventory.interfaces[*].ipV4Addresses[0]} {end}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		hosts := strings.Fields(out)
		if len(hosts) != 2 {
			return fmt.Errorf("agents: %q", out)
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			f := strings.Split(h, "=")
			if len(f) != 3 || !strings.HasPrefix(f[0], "lab-host-") || f[1] != "known-unbound" || !strings.HasPrefix(f[2], "10.231.") || seen[f[2]] {
				return fmt.Errorf("agents: %q", out)
			}
			seen[f[2]] = true
		}
		return nil
	})
	if !strings.Contains(up.output(), "in network namespaces") {
		t.Errorf("hcp up does not say where the lab hosts run:\n%s", up.output())
	}
}
