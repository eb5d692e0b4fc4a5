package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGa2lK0VHJkCrdtGtXfHvjDfYmVMjd6cV1Fpm44kDgqN core@example\n"

// hcp runs the hcp command against the management plane.
func (u *upProcess) hcp(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir, "hcp"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+u.kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (u *upProcess) mustHCP(args ...string) string {
	u.t.Helper()
	out, err := u.hcp(args...)
	if err != nil {
		u.t.Fatalf("hcp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// objectsOf lists what hcp create made for a cluster, with what changes when
// the CLI changes them: the generation (spec) and the time of the CLI's last
// change (its managed fields); status written by controllers does not count.
func (u *upProcess) objectsOf(name string) string {
	out, _ := u.kubectl("", "-n", "clusters", "get", "hostedcluster/"+name, "nodepool/"+name, "secret/"+name+"-pull-secret", "secret/"+name+"-ssh-key",
		"--ignore-not-found", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}@{.metadata.generation}/{.metadata.managedFields[?(@.manager=="hcp-cli")].time} {end}`)
	return out
}

// TestSeedCommands runs the documentation's two hcp create cluster agent commands
// (placeholders filled in, our release), checks what they create, re-runs them,
// and destroys the clusters.
func TestSeedCommands(t *testing.T) {
	up := startUp(t, t.TempDir())
	pull := writeFile(t, "pull-secret.json", `{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz","email":"user@example.com"}}}`)
	key := writeFile(t, "id_rsa.pub", sshKey)
	icsp := writeFile(t, "icsp.yaml", `- mirrors:
  - registry.example.com:5000/openshift/release
  source: quay.io/openshift-release-dev/ocp-v4.0-art-dev
- mirrors:
  - registry.example.com:5000/openshift/release-images
  source: quay.io/openshift-release-dev/ocp-release
`)
	// The seed's command, word for word but for the placeholders: HighlyAvailable.
	seed := func(name string, extra ...string) []string {
		return append([]string{"create", "cluster", "agent",
			"--name=" + name, "--pull-secret=" + pull, "--agent-namespace=clusters-" + name,
			"--base-domain=krnl.es", "--api-server-address=127.0.0.1",
			"--etcd-storage-class=local", "--ssh-key", key, "--namespace", "clusters",
			"--control-plane-availability-policy", "HighlyAvailable",
			"--release-image=" + rel.Image}, extra...)
	}
	for _, ns := range []string{"clusters-example", "clusters-mirrored"} {
		up.mustKubectl("", "create", "namespace", ns)
	}

	// The first seed command.
	out := up.mustHCP(seed("example")...)
	for _, want := range []string{"secret clusters/example-pull-secret applied", "secret clusters/example-ssh-key applied", "hostedcluster clusters/example applied", "nodepool clusters/example applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	spec := up.mustKubectl("", "-n", "clusters", "get", "hc", "example", "-o",
		`jsonpath={.spec.platform.agent.agentNamespace} {.spec.dns.baseDomain} {.spec.etcd.managed.storage.persistentVolume.storageClassName} {.spec.sshKey.name} {.spec.pullSecret.name} {.spec.services[*].service} {.spec.services[0].servicePublishingStrategy.nodePort.address}`)
	if want := "clusters-example krnl.es local example-ssh-key example-pull-secret APIServer OAuthServer Konnectivity Ignition 127.0.0.1"; spec != want {
		t.Errorf("HostedCluster spec: got %q, want %q", spec, want)
	}
	if got := up.mustKubectl("", "-n", "clusters", "get", "hc", "example", "-o", "jsonpath={.spec.controllerAvailabilityPolicy}"); got != "HighlyAvailable" {
		t.Errorf("controllerAvailabilityPolicy %q", got)
	}
	if got := up.mustKubectl("", "-n", "clusters", "get", "secret", "example-ssh-key", "-o", "jsonpath={.data.id_rsa\\.pub}"); got == "" {
		t.Error("ssh key secret has no id_rsa.pub")
	}
	if got := up.mustKubectl("", "-n", "clusters", "get", "np", "example", "-o", "jsonpath={.spec.clusterName} {.spec.replicas}"); got != "example 0" {
		t.Errorf("NodePool: %q", got)
	}
	// Running it again changes nothing.
	before := up.objectsOf("example")
	up.mustHCP(seed("example")...)
	if after := up.objectsOf("example"); after != before || strings.Count(before, "@") != 4 {
		t.Errorf("re-running changed objects:\nbefore %s\nafter  %s", before, after)
	}

	// The second seed command, with the mirror registry's ICSP file; --wait.
	out = up.mustHCP(seed("mirrored", "--image-content-sources", icsp, "--wait", "--timeout", "5m")...)
	if !strings.Contains(out, "waiting:") || !strings.Contains(out, "HostedCluster clusters/mirrored is Available") {
		t.Errorf("--wait did not show progress and the result:\n%s", out)
	}
	// The seed's verification, the moment the cluster is Available: one
	// ClusterOperator per component, and the ClusterVersion.
	kc := writeFile(t, "kubeconfig-mirrored", up.mustHCP("create", "kubeconfig", "--name", "mirrored"))
	co := guestKubectl(t, kc, "get", "co")
	for _, want := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if !strings.Contains(co, "\n"+want+" ") {
			t.Errorf("kubectl get co right after Available lacks %s:\n%s", want, co)
		}
	}
	if cv := guestKubectl(t, kc, "get", "clusterversion", "version", "-o", "jsonpath={.status.desired.version}"); cv != rel.Name {
		t.Errorf("ClusterVersion desired version %q, want %q", cv, rel.Name)
	}
	mirrors := up.mustKubectl("", "-n", "clusters", "get", "hc", "mirrored", "-o", `jsonpath={range .spec.imageContentSources[*]}{.source}={.mirrors[0]} {end}`)
	if want := "quay.io/openshift-release-dev/ocp-v4.0-art-dev=registry.example.com:5000/openshift/release quay.io/openshift-release-dev/ocp-release=registry.example.com:5000/openshift/release-images "; mirrors != want {
		t.Errorf("imageContentSources: got %q, want %q", mirrors, want)
	}
	if out := guestKubectl(t, kc, "get", "ns"); !strings.Contains(out, "kube-system") {
		t.Errorf("kubectl get ns with hcp create kubeconfig:\n%s", out)
	}
	merged := up.mustHCP("create", "kubeconfig")
	if !strings.Contains(merged, "name: clusters-mirrored") {
		t.Errorf("merged kubeconfig lacks context clusters-mirrored:\n%s", merged)
	}

	// --render output applies cleanly with kubectl.
	up.mustKubectl("", "create", "namespace", "clusters-rendered")
	rendered := up.mustHCP(seed("rendered", "--render", "--render-sensitive", "--control-plane-availability-policy", "SingleReplica")...)
	up.mustKubectl(rendered, "apply", "-f", "-")
	if out := up.objectsOf("rendered"); strings.Count(out, "@") != 4 {
		t.Errorf("rendered objects not all applied: %s", out)
	}

	// Destroy removes everything hcp create made.
	for _, name := range []string{"example", "mirrored", "rendered"} {
		out := up.mustHCP("destroy", "cluster", "agent", "--name", name, "--namespace", "clusters")
		if !strings.Contains(out, "HostedCluster clusters/"+name+" deleted") {
			t.Errorf("destroy %s:\n%s", name, out)
		}
		if left := up.objectsOf(name); left != "" {
			t.Errorf("left after destroy %s: %s", name, left)
		}
	}
	eventually(t, time.Minute, "control plane processes gone", func() error {
		if pids := processesUsing(filepath.Join(up.dataDir, "controlplanes")); len(pids) != 0 {
			return fmt.Errorf("still running: %v", pids)
		}
		return nil
	})
}

func TestCreateRefusesBadInputAndCreatesNothing(t *testing.T) {
	up := startUp(t, t.TempDir())
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	base := []string{"create", "cluster", "agent", "--pull-secret", pull, "--api-server-address", "127.0.0.1", "--release-image", rel.Image}
	up.mustKubectl("", "create", "namespace", "clusters-one")
	up.mustHCP(append(base, "--name", "one", "--agent-namespace", "clusters-one", "--namespace", "clusters")...)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"agent namespace missing", []string{"--name", "two", "--agent-namespace", "nowhere"}, `--agent-namespace: namespace "nowhere" does not exist`},
		{"name used in another namespace", []string{"--name", "one", "--agent-namespace", "clusters-one", "--namespace", "elsewhere"}, `a HostedCluster named "one" already exists in namespace "clusters"`},
		{"name clusters", []string{"--name", "clusters", "--agent-namespace", "clusters-one"}, `--name: "clusters" is reserved`},
		{"release not served", []string{"--name", "two", "--agent-namespace", "clusters-one", "--release-image", "quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64"},
			`--release-image: "quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64" is not a release this management cluster serves (available: ` + availableReleases(t)},
		{"replicas not a number", []string{"--name", "two", "--agent-namespace", "clusters-one", "--node-pool-replicas", "two"},
			`--node-pool-replicas: "two" is not a whole number (for example: --node-pool-replicas 2)`},
	}
	for _, tc := range cases {
		out, err := up.hcp(append(base, tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: err=%v, output does not say %q:\n%s", tc.name, err, tc.want, out)
		}
	}
	if out := up.mustKubectl("", "get", "hc", "-A", "-o", "name"); strings.TrimSpace(out) != "hostedcluster.hypershift.openshift.io/one" {
		t.Errorf("HostedClusters after bad input: %s", out)
	}
	if out := up.mustKubectl("", "get", "secrets", "-A", "-l", "app.kubernetes.io/managed-by=hcp", "-o", "name"); strings.TrimSpace(out) != "secret/one-pull-secret" {
		t.Errorf("secrets after bad input: %s", out)
	}

	// Destroying a cluster that does not exist says so and fails, unless told
	// not to mind.
	if out, err := up.hcp("destroy", "cluster", "agent", "--name", "nosuch"); err == nil || !strings.Contains(out, "HostedCluster clusters/nosuch does not exist") || strings.Contains(out, "deleted") {
		t.Errorf("destroy of a missing cluster: err=%v\n%s", err, out)
	}
	if out, err := up.hcp("destroy", "cluster", "agent", "--name", "nosuch", "--ignore-not-found"); err != nil || !strings.Contains(out, "does not exist") {
		t.Errorf("destroy --ignore-not-found of a missing cluster: err=%v\n%s", err, out)
	}
	// A negative replica count says that no NodePool is made.
	if out := up.mustHCP(append(base, "--name", "nopool", "--agent-namespace", "clusters-one", "--node-pool-replicas=-1")...); !strings.Contains(out, "no NodePool is created") || strings.Contains(out, "nodepool clusters/nopool applied") {
		t.Errorf("--node-pool-replicas=-1:\n%s", out)
	}
	up.mustHCP("destroy", "cluster", "agent", "--name", "nopool")

	// An unreachable management API: the error names the kubeconfig and server.
	dead := writeFile(t, "dead-kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: dead, user: {token: x}}]
contexts: [{name: dead, context: {cluster: dead, user: dead}}]
current-context: dead
`, freePort(t)))
	out, err := exec.Command(filepath.Join(binDir, "hcp"), append(base, "--name", "three", "--agent-namespace", "x", "--kubeconfig", dead)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot reach the management cluster at https://127.0.0.1:") || !strings.Contains(string(out), dead) {
		t.Errorf("unreachable management API: err=%v\n%s", err, out)
	}
}
