package e2e

import (
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// machineAddress is an IPv4 address of this machine outside the lab
// networks: lab hosts reach it through their gateway, as they would a
// registry elsewhere on the user's network.
func machineAddress(t *testing.T) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "hl") || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	t.Fatal("this machine has no IPv4 address outside loopback and the lab networks for the mirror registry to listen on")
	return ""
}

// pulls records which repositories a registry served manifests of.
type pulls struct {
	mu    sync.Mutex
	repos map[string]bool
}

func (p *pulls) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if repo, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/"); ok && r.Method == http.MethodGet {
			p.mu.Lock()
			p.repos[repo] = true
			p.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (p *pulls) pulled(repo string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.repos[repo]
}

// The way onto an existing management cluster, on hcp up's: hcp release
// mirror pushes the release and the operator to a second registry, hcp
// install runs the operator from there on a management node, where it leads
// and reconciles a HostedCluster whose control plane pods the nodes pull
// from the same registry.
func TestInstallOnManagementNodes(t *testing.T) {
	addr := machineAddress(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := &pulls{repos: map[string]bool{}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: seen.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(t.TempDir()))))}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	mirror := net.JoinHostPort(addr, port)

	// Without an operator, only with management nodes; bad registries are
	// refused with the flag named.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--operator", "none"}, "--operator none: an operator installed with hcp install runs as a pod on management nodes; add --management-nodes"},
		{[]string{"--operator", "elsewhere"}, `--operator "elsewhere": must be "in-process"`},
		{[]string{"--management-nodes", "1", "--insecure-registry", "http://" + mirror}, `--insecure-registry "http://` + mirror + `": must be a registry host or host:port, without a scheme or path`},
		{[]string{"--management-nodes", "1", "--operator", "none", "--agents", "1"}, "--operator none: lab hosts register with the operator's infrastructure service"},
	} {
		out, err := exec.Command(filepath.Join(binDir, "hcp"), append([]string{"up", "--data-dir", t.TempDir()}, tc.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("hcp up %s: %v, want an error saying %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}

	dataDir := t.TempDir()
	up := startUp(t, dataDir, "--management-nodes", "1", "--operator", "none", "--insecure-registry", mirror)
	if out := up.output(); !strings.Contains(out, "operator:    none (--operator none)") || !strings.Contains(out, "image registry: https://") {
		t.Errorf("hcp up's banner does not say it runs no operator:\n%s", out)
	}

	// The mirror prints the install command; hcp install runs it.
	cmd := exec.Command(filepath.Join(binDir, "hcp"), "release", "mirror", "--to", mirror+"/mirror/hcp", "--insecure")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hcp release mirror: %v\n%s", err, out)
	}
	_, line, ok := strings.Cut(string(out), "  hcp install ")
	if !ok {
		t.Fatalf("hcp release mirror printed no install command:\n%s", out)
	}
	installArgs := append([]string{"install"}, strings.Fields(strings.SplitN(line, "\n", 2)[0])...)
	operatorImage := installArgs[2]
	if installArgs[1] != "--operator-image" || !strings.HasPrefix(operatorImage, mirror+"/mirror/hcp/operator@sha256:") {
		t.Fatalf("install command %q does not name the mirrored operator by digest", installArgs)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := up.kubectl("", "-n", "hcp-system", "logs", "deployment/hcp-operator", "--tail", "60")
			prev, _ := up.kubectl("", "-n", "hcp-system", "logs", "deployment/hcp-operator", "--previous", "--tail", "30")
			pods, _ := up.kubectl("", "get", "pods", "-A", "-o", "wide")
			events, _ := up.kubectl("", "get", "events", "-A", "--sort-by", ".lastTimestamp")
			node, _ := up.kubectl("", "get", "node", "management-0", "-o", "jsonpath={range .status.conditions[*]}{.type}={.status} {.message}{\"\\n\"}{end}")
			t.Logf("operator log:\n%s\nbefore its last restart:\n%s\npods:\n%s\nevents:\n%s\nmanagement-0:\n%s", logs, prev, pods, tail(events, 6000), node)
		}
	})
	out2 := up.mustHCP(append(installArgs, "--wait", "--timeout", "5m")...)
	if !strings.Contains(out2, "the operator runs and leads") {
		t.Errorf("hcp install --wait:\n%s", out2)
	}
	t.Logf("hcp install --wait:\n%s", out2[strings.Index(out2, "service/hcp-console"):])
	pod := up.mustKubectl("", "-n", "hcp-system", "get", "pods", "-l", "app=hcp-operator", "-o",
		`jsonpath={.items[0].spec.nodeName} {.items[0].spec.containers[0].image} {.items[0].status.containerStatuses[0].imageID}`)
	if f := strings.Fields(pod); len(f) != 3 || f[0] != "management-0" || f[1] != operatorImage || !strings.HasSuffix(operatorImage, strings.TrimPrefix(f[2], mirror+"/mirror/hcp/operator")) {
		t.Errorf("operator pod (node, image, image ID) = %q, want it on management-0 running %s", pod, operatorImage)
	}
	if !seen.pulled("mirror/hcp/operator") {
		t.Error("the management node did not pull the operator from the mirror registry")
	}
	// The node shares this machine's disk: a fuller disk does not evict
	// its pods (memory pressure still does).
	cfg := up.mustKubectl("", "get", "--raw", "/api/v1/nodes/management-0/proxy/configz")
	for _, want := range []string{`"nodefs.available":"0%"`, `"imagefs.available":"0%"`, `"memory.available":"100Mi"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("management-0's kubelet configuration has no %s:\n%s", want, tail(cfg, 3000))
		}
	}

	// The installed operator reconciles: a cluster becomes Available with
	// its control plane from the mirror, and answers through its NodePort.
	pull := writeFile(t, "pull-secret.json", `{"auths":{}}`)
	up.mustKubectl("", "create", "namespace", "clusters-example")
	up.mustHCP("create", "cluster", "agent", "--name", "installed", "--pull-secret", pull, "--agent-namespace", "clusters-example",
		"--control-plane-availability-policy", "SingleReplica", "--release-image", rel.Image, "--node-pool-replicas", "0", "--wait", "--timeout", "8m")
	if img := up.mustKubectl("", "-n", "clusters-installed", "get", "pods", "-l", "app=etcd", "-o", "jsonpath={.items[0].spec.containers[0].image}"); !strings.HasPrefix(img, mirror+"/mirror/hcp/control-plane@sha256:") {
		t.Errorf("etcd image %q, want the mirror's control plane image by digest", img)
	}
	if !seen.pulled("mirror/hcp/control-plane") {
		t.Error("the management node did not pull the control plane image from the mirror registry")
	}
	kc := writeFile(t, "kubeconfig-installed", up.mustHCP("create", "kubeconfig", "--namespace", "clusters", "--name", "installed"))
	eventually(t, time.Minute, "the hosted API through its NodePort", func() error {
		out, err := runKubectl(kc, "", "get", "namespace", "kube-system", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "namespace/kube-system" {
			return errorf("%v %s", err, out)
		}
		return nil
	})
	logs := up.mustKubectl("", "-n", "hcp-system", "logs", "deployment/hcp-operator")
	if !strings.Contains(logs, "installed") {
		t.Errorf("the operator's log does not mention the cluster it reconciled:\n%s", tail(logs, 3000))
	}

	// hcp up with its own operator does not start a second one beside the
	// installed operator.
	up.stop()
	out, err = exec.Command(filepath.Join(binDir, "hcp"), "up", "--data-dir", dataDir, "--management-nodes", "1", "--console-port", "-1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "an operator installed with hcp install runs on this management plane (Deployment hcp-system/hcp-operator); start hcp up with --operator none") {
		t.Errorf("hcp up with an installed operator: %v\n%s", err, out)
	}
}
