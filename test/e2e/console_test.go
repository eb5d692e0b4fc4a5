package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// browserSession is a headless Chromium on the console of an hcp up, saving a
// screenshot of each step under test/e2e/artifacts/<test>/.
type browserSession struct {
	t         *testing.T
	ctx       context.Context
	base      string
	artifacts string
	step      int
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: install it (apt-get install chromium); the console's browser tests need it")
	return ""
}

func newBrowser(t *testing.T, up *upProcess, downloads string) *browserSession {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	artifacts := filepath.Join("artifacts", t.Name())
	_ = os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browserSession{t: t, ctx: ctx, base: fmt.Sprintf("https://127.0.0.1:%d", up.consolePort), artifacts: artifacts}
	// The first action starts the browser, which lives as long as the
	// context it ran with: b.ctx, not a timeout of one step.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	})); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

// run runs actions with a time limit; a failure saves a screenshot.
func (b *browserSession) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// shot saves a screenshot of the page as the next step's artifact.
func (b *browserSession) shot(name string) {
	b.step++
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.artifacts, fmt.Sprintf("%02d-%s.png", b.step, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// text is the text of the first element matching sel ("" if none).
func (b *browserSession) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	return s
}

// waitText waits until the element matching sel contains want.
func (b *browserSession) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.shot("timeout-" + strings.Trim(strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
					return r
				}
				return '-'
			}, strings.ToLower(want)), "-"))
			b.t.Fatalf("%s does not say %q after %s; it says %q", sel, want, timeout, got)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// setValue sets a form field's value as typing would, and tells the page.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		v, _ := json.Marshal(value)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
			`(el => { el.value = %s; el.dispatchEvent(new Event("input")); el.dispatchEvent(new Event("change")); return true })(document.querySelector(%q))`, v, sel)))
		return err
	})
}

func decodeBase64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return string(b)
}

// eval evaluates a JavaScript expression that gives a string.
func (b *browserSession) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

// login logs in with a token or a kubeconfig.
func (b *browserSession) login(token, kubeconfig string) {
	b.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{chromedp.Navigate(b.base + "/#/login"), chromedp.WaitVisible(chromedp.CSS("#login-submit"))}
	if token != "" {
		actions = append(actions, setValue("#login-token", token))
	} else {
		actions = append(actions, setValue("#login-kubeconfig", kubeconfig))
	}
	b.run("log in", actions...)
	b.shot("login")
	b.run("submit the login", chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#clusters")))
}

// TestConsole drives the console as the seed's console flow does: log in,
// approve a host, create a cluster with a NodePool of one through the wizard,
// watch it become Available and its node Ready without reloading, download
// the kubeconfig and use it with kubectl, scale the node pool.
func TestConsole(t *testing.T) {
	up := startUp(t, t.TempDir(), agentFlags)
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "hosts", "--namespace", "clusters-example", "--pull-secret", pull)
	host := nodeHost(t, up.scriptURL(t, "clusters-example", "hosts"), t.TempDir(), "console-host")
	agent := host.hostID(t)
	up.waitAgent(t, "clusters-example", agent, "{.spec.approved}", "false")

	downloads := t.TempDir()
	b := newBrowser(t, up, downloads)
	kubeconfig, err := os.ReadFile(up.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b.login("", string(kubeconfig))
	b.waitText("#user", "system:admin", 10*time.Second)
	b.shot("clusters-empty")

	// Host inventory: the host waits for approval; approve it from the page.
	b.run("open the host inventory", chromedp.Click(chromedp.CSS("#nav-inventory")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-agent=%q]`, agent))))
	row := fmt.Sprintf(`tr[data-agent=%q]`, agent)
	b.waitText(row+" .agent-approved", "not approved", 30*time.Second)
	b.waitText(row, "console-host", 30*time.Second)
	b.shot("inventory-unapproved")
	b.run("approve the host", chromedp.Click(chromedp.CSS(row+" button.approve")))
	up.waitAgent(t, "clusters-example", agent, "{.spec.approved}", "true")
	b.waitText(row+" .agent-approved", "approved", 30*time.Second)
	up.waitAgent(t, "clusters-example", agent, "{.status.debugInfo.state}", "known-unbound")
	b.waitText(row+" .agent-state", "known-unbound", 30*time.Second)
	b.shot("inventory-approved")

	// A host inventory credential fills in the pull secret, base domain and
	// ssh key; its pull secret never reaches the page.
	const pullSecretValue = "c2VjcmV0LXB1bGwtc2VjcmV0"
	up.mustKubectl(`apiVersion: v1
kind: Secret
metadata:
  name: lab-credentials
  namespace: clusters-example
  labels: {cluster.open-cluster-management.io/credentials: "", cluster.open-cluster-management.io/type: hostinventory}
stringData:
  pullSecret: '{"auths":{"registry.example":{"auth":"`+pullSecretValue+`"}}}'
  baseDomain: hcp.example
  ssh-publickey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGa2lK0VHJkCrdtGtXfHvjDfYmVMjd6cV1Fpm44kDgqN user@host
`, "apply", "-f", "-")
	noSecretInPage := func(where string) {
		t.Helper()
		if html := b.eval(`document.documentElement.outerHTML`); strings.Contains(html, pullSecretValue) {
			t.Errorf("%s: the page shows the pull secret", where)
		}
	}

	// The wizard: Create cluster > Host inventory > Hosted control plane.
	b.run("open the wizard", chromedp.Click(chromedp.CSS("#nav-clusters")), chromedp.WaitVisible(chromedp.CSS("#create-cluster")),
		chromedp.Click(chromedp.CSS("#create-cluster")), chromedp.Click(chromedp.CSS("#create-hosted")),
		chromedp.WaitVisible(chromedp.CSS("#f-name")))
	b.run("fill in the cluster details",
		setValue("#f-credential", "clusters-example/lab-credentials"),
		setValue("#f-name", "web"),
		setValue("#f-control-plane-availability-policy", "SingleReplica"))
	if got := b.eval(`document.getElementById("f-base-domain").value + " " + document.getElementById("f-ssh-key").value.slice(0, 11) + " " + document.getElementById("f-pull-secret").placeholder`); !strings.HasPrefix(got, "hcp.example ssh-ed25519 Filled from credential") {
		t.Errorf("the credential did not fill the form: %q", got)
	}
	noSecretInPage("details")
	b.shot("wizard-details")
	b.run("go to node pools", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#f-agent-namespace")),
		setValue("#f-agent-namespace", "clusters-example"),
		setValue("#f-node-pool-replicas", "1"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("f-agent-namespace").dispatchEvent(new Event("change"))`))
			return err
		}))
	b.waitText("#np-matching", "1 are free", 30*time.Second)
	b.shot("wizard-node-pools")
	b.run("go to networking", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#f-api-server-address")))
	b.waitText("#dns-record", "api.web.hcp.example", 10*time.Second)
	address := b.eval(`document.getElementById("f-api-server-address").value`)
	if address != "127.0.0.1" {
		t.Errorf("the wizard proposes API server address %q, want 127.0.0.1 (hcp up without lab network)", address)
	}
	b.shot("wizard-networking")
	b.run("go to automation", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#f-labels")),
		setValue("#f-labels", "team=console"))
	b.shot("wizard-automation")
	b.run("go to review", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#wizard-create")))
	b.waitText("#review", "from credential clusters-example/lab-credentials", 5*time.Second)
	noSecretInPage("review")
	b.shot("wizard-review")
	b.run("create", chromedp.Click(chromedp.CSS("#wizard-create")), chromedp.WaitVisible(chromedp.CSS("#cluster-available")))
	b.shot("cluster-created")
	if got := up.mustKubectl("", "-n", "clusters", "get", "hostedcluster", "web", "-o", "jsonpath={.metadata.labels.team} {.spec.controllerAvailabilityPolicy} {.spec.platform.agent.agentNamespace}"); got != "console SingleReplica clusters-example" {
		t.Errorf("the HostedCluster made by the wizard: %q", got)
	}
	if got := up.mustKubectl("", "-n", "clusters", "get", "secret", "web-pull-secret", "-o", `jsonpath={.data.\.dockerconfigjson}`); !strings.Contains(decodeBase64(t, got), pullSecretValue) {
		t.Errorf("the cluster's pull secret is not the credential's: %q", decodeBase64(t, got))
	}
	noSecretInPage("cluster")

	// Watch it without reloading: a marker set now must survive.
	b.eval(`String(window.notReloaded = true)`)
	b.waitText("#cluster-available", "Available=True", 4*time.Minute)
	b.waitText(`tr[data-component="kube-apiserver"]`, "1/1", 30*time.Second)
	b.shot("cluster-available")
	b.waitText("#nodes .node-ready", "NodeReady=True", 5*time.Minute)
	b.waitText(`tr[data-nodepool="web"] .np-ready`, "1/1", time.Minute)
	if b.eval(`String(window.notReloaded === true)`) != "true" {
		t.Error("the cluster page was reloaded; it should update in place")
	}
	b.shot("node-ready")

	// Download the kubeconfig and use it.
	b.run("download the kubeconfig", chromedp.Click(chromedp.CSS("#download-kubeconfig")))
	file := filepath.Join(downloads, "kubeconfig-web")
	eventually(t, 30*time.Second, "the kubeconfig download", func() error {
		if _, err := os.Stat(file); err != nil {
			return err
		}
		return nil
	})
	nodes, err := runKubectl(file, "", "get", "nodes", "-o", "jsonpath={.items[*].spec.providerID}")
	if err != nil || nodes != "agent://"+agent {
		t.Fatalf("kubectl with the downloaded kubeconfig: %q %v", nodes, err)
	}

	// Scale the node pool from the page.
	b.run("scale to 0", setValue("#scale-web", "0"), chromedp.Click(chromedp.CSS("#scale-web-apply")))
	eventually(t, 30*time.Second, "replicas 0", func() error {
		if got := up.mustKubectl("", "-n", "clusters", "get", "nodepool", "web", "-o", "jsonpath={.spec.replicas}"); got != "0" {
			return errorf("replicas %s", got)
		}
		return nil
	})
	b.waitText(`tr[data-nodepool="web"] .np-ready`, "0/0", 3*time.Minute)
	b.waitText("#nodes", "No nodes yet", 3*time.Minute)
	b.shot("scaled-to-0")
}

// TestConsoleRefusesBadInput fills the wizard with bad values: the page says
// what is wrong next to the field and nothing is created.
func TestConsoleRefusesBadInput(t *testing.T) {
	up := startUp(t, t.TempDir())
	b := newBrowser(t, up, t.TempDir())
	kubeconfig, err := os.ReadFile(up.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b.login("", string(kubeconfig))
	b.run("open the wizard", chromedp.Navigate(b.base+"/#/create"), chromedp.WaitVisible(chromedp.CSS("#f-name")))
	for _, tc := range []struct {
		name, pullSecret, field, want string
	}{
		{"Bad_Name", `{"auths":{}}`, "name", "RFC 1123"},
		{"clusters", `{"auths":{}}`, "name", `"clusters" is reserved`},
		{"fine", "", "pull-secret", "is required"},
		{"fine", "auths: {}", "pull-secret", "is not JSON"},
	} {
		b.run("fill in "+tc.name, setValue("#f-name", tc.name),
			setValue("#f-pull-secret", tc.pullSecret),
			chromedp.Click(chromedp.CSS("#wizard-next")))
		b.waitText("#err-"+tc.field, tc.want, 10*time.Second)
		b.shot("bad-" + tc.field + "-" + strings.ToLower(strings.ReplaceAll(tc.name, "_", "-")))
		if !strings.Contains(b.text("#wizard-steps li.current"), "Cluster details") {
			t.Errorf("%s: the wizard left the details step", tc.name)
		}
	}
	// A release the management cluster does not serve is refused before
	// anything is created.
	admin := newConsoleClient(t, up)
	body, _ := json.Marshal(map[string]string{"kubeconfig": string(kubeconfig)})
	admin.login(string(body))
	code, out := admin.do("POST", "/api/clusters", `{"name":"other","pullSecret":"{\"auths\":{}}","agentNamespace":"clusters-example","releaseImage":"quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64"}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(out, "release-image") || !strings.Contains(out, "is not a release this management cluster serves") {
		t.Errorf("an unknown release: %d %s", code, out)
	}
	if out := up.mustKubectl("", "get", "hostedclusters,nodepools", "-A", "-o", "name"); out != "" {
		t.Errorf("bad input created objects: %s", out)
	}
	if out := up.mustKubectl("", "get", "secrets", "-n", "clusters", "-o", "name", "--ignore-not-found"); out != "" {
		t.Errorf("bad input created secrets: %s", out)
	}
}

// consoleClient is an HTTP client of the console with its own cookie jar.
type consoleClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func newConsoleClient(t *testing.T, up *upProcess) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: fmt.Sprintf("https://127.0.0.1:%d", up.consolePort), http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: consoleCA(t, up)}}}}
}

// consoleCA is the CA hcp up made the console's certificate with.
func consoleCA(t *testing.T, up *upProcess) *x509.CertPool {
	b, err := os.ReadFile(filepath.Join(up.dataDir, "console-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("console-ca.crt holds no certificate")
	}
	return pool
}

// do sends a request (with the session's CSRF token unless csrf says
// otherwise) and returns the status and body.
func (c *consoleClient) do(method, path, body string, header map[string]string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *consoleClient) login(body string) {
	c.t.Helper()
	code, out := c.do("POST", "/api/login", body, nil)
	if code != http.StatusOK {
		c.t.Fatalf("login: %d %s", code, out)
	}
	var s struct{ CSRF string }
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.CSRF == "" {
		c.t.Fatalf("login answer %s: %v", out, err)
	}
	c.csrf = s.CSRF
}

// TestConsoleEnforcesRBAC logs in as a service account that may use namespace
// team-a only: it sees nothing of the other namespaces and cannot create there
// (403 with a clear message, in the page too), but creates in team-a. Changes
// without the session's CSRF token, or from another origin, are refused.
func TestConsoleEnforcesRBAC(t *testing.T) {
	up := startUp(t, t.TempDir())
	up.mustKubectl(`apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: clusters, namespace: team-a}
rules:
- apiGroups: [hypershift.openshift.io, agent-install.openshift.io]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [""]
  resources: [secrets, namespaces]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: clusters}
subjects: [{kind: ServiceAccount, name: alice, namespace: team-a}]
`, "apply", "-f", "-")
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustHCP("create", "infraenv", "--name", "admins", "--namespace", "clusters-example", "--pull-secret", pull)
	token := strings.TrimSpace(up.mustKubectl("", "-n", "team-a", "create", "token", "alice"))

	anonymous := newConsoleClient(t, up)
	if code, out := anonymous.do("GET", "/api/list/hostedclusters", "", nil); code != http.StatusUnauthorized || !strings.Contains(out, "not logged in") {
		t.Errorf("without a session: %d %s", code, out)
	}
	if code, out := anonymous.do("POST", "/api/login", `{"token":"not-a-token"}`, nil); code != http.StatusUnauthorized || !strings.Contains(out, "did not accept") {
		t.Errorf("a forged token logs in: %d %s", code, out)
	}

	alice := newConsoleClient(t, up)
	alice.login(fmt.Sprintf(`{"token":%q}`, token))
	for _, path := range []string{"/api/list/infraenvs", "/api/list/infraenvs?namespace=clusters-example", "/api/list/hostedclusters?namespace=clusters", "/api/clusters/clusters-example/admins"} {
		code, out := alice.do("GET", path, "", nil)
		if code != http.StatusForbidden || !strings.Contains(out, "Not allowed") {
			t.Errorf("GET %s as alice: %d %s", path, code, out)
		}
		if strings.Contains(out, "admins") && !strings.Contains(out, "Not allowed") {
			t.Errorf("GET %s shows another namespace's objects: %s", path, out)
		}
	}
	if code, out := alice.do("GET", "/api/list/infraenvs?namespace=team-a", "", nil); code != http.StatusOK {
		t.Errorf("alice cannot list her own namespace: %d %s", code, out)
	}
	form := func(ns string) string {
		return fmt.Sprintf(`{"name":"alice-%s","namespace":%q,"pullSecret":"{\"auths\":{}}","agentNamespace":"team-a","nodePoolReplicas":"0","controlPlaneAvailabilityPolicy":"SingleReplica","releaseImage":%q}`, ns, ns, rel.Image)
	}
	if code, out := alice.do("POST", "/api/clusters", form("clusters"), nil); code != http.StatusForbidden || !strings.Contains(out, "Not allowed") {
		t.Errorf("alice creates in clusters: %d %s", code, out)
	}
	// Forged, missing and cross-site CSRF.
	for name, header := range map[string]map[string]string{
		"forged token": {"X-CSRF-Token": "forged"},
		"no token":     {"X-CSRF-Token": ""},
		"other origin": {"Origin": "https://evil.example"},
	} {
		if code, out := alice.do("POST", "/api/clusters", form("team-a"), header); code != http.StatusForbidden || !strings.Contains(out, "CSRF") {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	if out := up.mustKubectl("", "get", "hostedclusters,secrets", "-n", "team-a", "-o", "name"); strings.Contains(out, "alice-") {
		t.Errorf("refused requests created objects: %s", out)
	}
	if code, out := alice.do("POST", "/api/clusters", form("team-a"), nil); code != http.StatusCreated {
		t.Fatalf("alice cannot create in team-a: %d %s", code, out)
	}
	if got := up.mustKubectl("", "-n", "team-a", "get", "hostedcluster", "alice-team-a", "-o", "jsonpath={.metadata.managedFields[*].manager}"); !strings.Contains(got, "hcp-console") {
		t.Errorf("the HostedCluster was not written by the console: managers %q", got)
	}
	if out := up.mustKubectl("", "get", "hostedclusters", "-n", "clusters", "-o", "name"); out != "" {
		t.Errorf("objects in clusters: %s", out)
	}

	// The page shows the refusal as a message.
	b := newBrowser(t, up, t.TempDir())
	b.login(token, "")
	b.waitText("#clusters-error", "Not allowed", 20*time.Second)
	b.shot("all-namespaces-refused")
	b.run("show team-a", setValue("#clusters-namespace", "team-a"), chromedp.Click(chromedp.CSS("#clusters-show")))
	b.waitText("#clusters", "alice-team-a", 20*time.Second)
	b.shot("team-a")
	up.mustHCP("destroy", "cluster", "agent", "--name", "alice-team-a", "--namespace", "team-a")
}
