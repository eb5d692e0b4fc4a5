package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"
)

// TestNodePoolIgnition follows a NodePool's payload: the user-data pointer
// config, the ignition server behind it (tokens checked), the worker Ignition
// with the ICSP mirrors, and the bootstrap token it carries, which the hosted
// kube-apiserver accepts for node bootstrapping.
func TestNodePoolIgnition(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	icsp := writeFile(t, "icsp.yaml", "- mirrors:\n  - registry.example.com:5000/openshift/release-images\n  source: quay.io/openshift-release-dev/ocp-release\n")
	up.mustKubectl("", "create", "namespace", "clusters-example")
	up.mustHCP("create", "cluster", "agent", "--name", "example", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--api-server-address", "127.0.0.1", "--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image,
		"--image-content-sources", icsp, "--wait")
	if c := up.condition("hc", "clusters", "example", "IgnitionEndpointAvailable"); !strings.HasPrefix(c, "True/") {
		t.Errorf("IgnitionEndpointAvailable: %q", c)
	}
	eventually(t, time.Minute, "NodePool payload and readiness", func() error {
		for _, cond := range []string{"ValidGeneratedPayload", "Ready"} {
			if c := up.condition("np", "clusters", "example", cond); !strings.HasPrefix(c, "True/") {
				return errorf("%s=%q", cond, c)
			}
		}
		return nil
	})

	raw := up.mustKubectl("", "-n", "clusters-example", "get", "secret", "user-data-example", "-o", "jsonpath={.data.value}")
	b, _ := base64.StdEncoding.DecodeString(raw)
	pointer, rpt, err := ignition.Parse(b)
	if err != nil || rpt.IsFatal() {
		t.Fatalf("user data is not valid Ignition: %v %s", err, rpt)
	}
	src := pointer.Ignition.Config.Merge[0]
	headers := map[string]string{}
	for _, h := range src.HTTPHeaders {
		headers[h.Name] = *h.Value
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	get := func(h map[string]string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, *src.Source, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	for name, h := range map[string]map[string]string{
		"no token":       {"NodePool": headers["NodePool"]},
		"forged token":   {"NodePool": headers["NodePool"], "Authorization": "Bearer 0123456789abcdef"},
		"other NodePool": {"NodePool": "clusters/other", "Authorization": headers["Authorization"]},
	} {
		if status, body := get(h); status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	status, body := get(headers)
	if status != http.StatusOK {
		t.Fatalf("ignition server: %d %s", status, body)
	}
	worker, rpt, err := ignition.Parse(body)
	if err != nil || rpt.IsFatal() {
		t.Fatalf("worker Ignition invalid: %v %s", err, rpt)
	}
	files := map[string]string{}
	for _, f := range worker.Storage.Files {
		d, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatal(err)
		}
		files[f.Path] = string(d.Data)
	}
	if reg := files["/etc/containers/registries.conf"]; !strings.Contains(reg, `location = "registry.example.com:5000/openshift/release-images"`) {
		t.Errorf("registries.conf lacks the mirror:\n%s", reg)
	}
	// The bootstrap kubeconfig's token is accepted by the hosted API server and
	// may request node client certificates, nothing more.
	bootstrap := writeFile(t, "kubeconfig-bootstrap", files["/etc/kubernetes/kubeconfig-bootstrap"])
	eventually(t, 30*time.Second, "the bootstrap token to be accepted", func() error {
		if out, err := runKubectl(bootstrap, "", "auth", "can-i", "create", "certificatesigningrequests.certificates.k8s.io"); err != nil || !strings.HasSuffix(strings.TrimSpace(out), "yes") {
			return errorf("cannot create CSRs: %v %s", err, out)
		}
		return nil
	})
	if out, _ := runKubectl(bootstrap, "", "auth", "can-i", "list", "secrets", "-A"); !strings.HasSuffix(strings.TrimSpace(out), "no") {
		t.Errorf("bootstrap token may list secrets: %s", out)
	}

	// Asking for nodes with no hosts: two machines wait for suitable agents.
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "2")
	eventually(t, time.Minute, "NodePool waiting for agents", func() error {
		if c := up.condition("np", "clusters", "example", "Ready"); !strings.HasPrefix(c, "False/") || !strings.Contains(c, "0 of 2 nodes are ready") {
			return errorf("Ready=%q", c)
		}
		out := up.mustKubectl("", "-n", "clusters-example", "get", "agentmachines", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="AgentReserved")].reason}`)
		if f := strings.Fields(out); len(f) != 2 || f[0] != "NoSuitableAgents" || f[1] != "NoSuitableAgents" {
			return errorf("AgentReserved reasons %q", out)
		}
		return nil
	})
	var js map[string]any
	if err := json.Unmarshal(body, &js); err != nil {
		t.Fatal(err)
	}
}
