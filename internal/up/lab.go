package up

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/labnet"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// LabInfraEnv is the InfraEnv lab hosts register through.
const LabInfraEnv = "lab"

// startLabHosts runs n discovery agents on this machine as separate hosts, each
// with its own host ID, data directory and hostname (lab-host-<i>), registered
// through the InfraEnv "lab" (auto-approved) in namespace. With a lab network
// each host runs in its own network namespace with its own address; without,
// they share the machine's network. CPU, memory and disks are the machine's.
type labHosts struct {
	agentBinary, dataDir, namespace string
	n                               int
	lab                             *labnet.Net
	// simulated hosts become simulated nodes; real ones take their node
	// binaries from payloadDir.
	simulated  bool
	payloadDir string
}

func startLabHosts(ctx context.Context, c client.Client, h labHosts, log logr.Logger, out io.Writer) ([]*supervisor.Process, error) {
	agentBinary, dataDir, namespace, n, lab := h.agentBinary, h.dataDir, h.namespace, h.n, h.lab
	if err := clusterspec.EnsureNamespace(ctx, c, namespace); err != nil {
		return nil, err
	}
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: LabInfraEnv + "-pull-secret", Labels: map[string]string{clusterspec.ManagedByLabel: clusterspec.ManagedBy}},
		Type:       corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
	ie := &agentv1.InfraEnv{TypeMeta: metav1.TypeMeta{APIVersion: agentv1.GroupVersion.String(), Kind: "InfraEnv"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: LabInfraEnv, Labels: map[string]string{clusterspec.ManagedByLabel: clusterspec.ManagedBy}},
		Spec:       agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: secret.Name}, AgentApproval: &agentv1.AgentApproval{AutoApprove: true}}}
	if err := clusterspec.ApplyAll(ctx, c, []client.Object{secret, ie}, fieldOwner); err != nil {
		return nil, err
	}
	var script string
	deadline := time.Now().Add(30 * time.Second)
	for script == "" {
		got := &agentv1.InfraEnv{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ie), got); err == nil {
			ie, script = got, got.Status.BootArtifacts.ScriptURL
		}
		if script == "" {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("InfraEnv %s/%s published no discovery artifacts within 30s", namespace, LabInfraEnv)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	u, err := url.Parse(script)
	if err != nil {
		return nil, err
	}
	tls := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operator.DefaultNamespace, Name: infra.TLSSecret}, tls); err != nil {
		return nil, fmt.Errorf("reading the infrastructure service CA: %w", err)
	}
	labDir := filepath.Join(dataDir, "lab")
	if err := os.MkdirAll(labDir, 0o700); err != nil {
		return nil, err
	}
	ca := filepath.Join(labDir, "ca.crt")
	if err := os.WriteFile(ca, tls.Data["ca.crt"], 0o600); err != nil {
		return nil, err
	}
	token := filepath.Join(labDir, "token")
	if err := os.WriteFile(token, []byte(u.Query().Get("api_key")), 0o600); err != nil {
		return nil, err
	}
	serviceURL := u.Scheme + "://" + u.Host
	var procs []*supervisor.Process
	for i := range n {
		host := labHostName(i)
		dir := filepath.Join(labDir, host)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return procs, err
		}
		argv := []string{agentBinary, "discover", "--service-url", serviceURL, "--infra-env-id", string(ie.UID),
			"--token-file", token, "--ca-file", ca, "--data-dir", dir, "--hostname", host, "--root", labHostRoot(dataDir, i)}
		if h.simulated {
			argv = append(argv, "--simulated-node")
		} else {
			argv = append(argv, "--payload-dir", h.payloadDir, "--reboot-into-discovery", "--machine-share", strconv.Itoa(n))
		}
		if lab != nil {
			if err := lab.Host(i); err != nil {
				return procs, fmt.Errorf("lab host %d: %w", i, err)
			}
			argv = lab.Exec(i, argv...)
			if argv[0], err = exec.LookPath(argv[0]); err != nil {
				return procs, err
			}
		}
		p, err := supervisor.Start(ctx, supervisor.Spec{Name: host, Path: argv[0], Args: argv[1:], LogPath: filepath.Join(dir, "hcp-agent.log")}, log)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	go warnUnregistered(ctx, c, namespace, n, serviceURL, labDir, out)
	where := "sharing this machine's network"
	if lab != nil {
		where = fmt.Sprintf("in network namespaces %s.. with addresses %s..", lab.Namespace(0), lab.Address(0))
	}
	fmt.Fprintf(out, "\n%d lab hosts are running discovery, %s (InfraEnv %s/%s, logs in %s):\n  kubectl -n %s get agents\n",
		n, where, namespace, LabInfraEnv, labDir, namespace)
	return procs, nil
}

// labHostName is lab host i's hostname.
func labHostName(i int) string { return fmt.Sprintf("lab-host-%d", i) }

// labHostRoot is where lab host i's installation writes its files.
func labHostRoot(dataDir string, i int) string {
	return filepath.Join(dataDir, "lab", labHostName(i), "root")
}

// warnUnregistered says, half a minute after the lab hosts started, which of
// them have not registered: they cannot reach the infrastructure service.
func warnUnregistered(ctx context.Context, c client.Client, namespace string, n int, serviceURL, labDir string, out io.Writer) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(30 * time.Second):
	}
	agents := &agentv1.AgentList{}
	if err := c.List(ctx, agents, client.InNamespace(namespace)); err != nil {
		return
	}
	seen := map[string]bool{}
	for _, a := range agents.Items {
		seen[a.Status.Inventory.Hostname] = true
	}
	for i := range n {
		host := fmt.Sprintf("lab-host-%d", i)
		if !seen[host] {
			fmt.Fprintf(out, "Warning: lab host %s has not registered after 30s: it cannot reach the infrastructure service at %s (its log: %s)\n",
				host, serviceURL, filepath.Join(labDir, host, "hcp-agent.log"))
		}
	}
}
