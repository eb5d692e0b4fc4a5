package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/netpol"
)

// realNode is a host running its node: containerd, kubelet, kube-proxy and
// the konnectivity agent as the Ignition's units say, in a mount namespace of
// the node's own when the host's root is a directory (a lab host), with the
// pod network wired by hcp-agent: the node's CNI bridge on the pod range the
// cluster gave it, routes to the other nodes' ranges over the host network.
type realNode struct {
	o      NodeOptions
	name   string
	ip     string
	cg     *cgroups
	cgRoot string
	cs     kubernetes.Interface
	uid    string
	// release is the release of the node's binaries (its Ignition's);
	// refetch says the downloaded ones are of another.
	release string
	refetch bool
	// restart makes the node's units start again (on new binaries).
	restart chan struct{}
}

// RealNodeProblems says what this host lacks to run a real node; empty when
// nothing.
func RealNodeProblems() []string {
	var out []string
	if os.Geteuid() != 0 {
		out = append(out, "hcp-agent does not run as root")
	}
	for _, tool := range []string{"iptables", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			out = append(out, tool+" is not installed")
		}
	}
	if _, err := machineCgroups(); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// RunRealNode joins the cluster as a real node and runs it until ctx ends
// or the cluster deletes the node (ErrNodeDeleted, after the host is
// cleaned: its containers, cgroups, rules and node data are gone). A ctx
// ended with the cause ErrHostReleased cleans the host too and returns it.
func RunRealNode(ctx context.Context, o NodeOptions) error {
	if o.Progress == nil {
		o.Progress = func(string, string) {}
	}
	if p := RealNodeProblems(); len(p) > 0 {
		return fmt.Errorf("this host cannot run a node: %s", strings.Join(p, "; "))
	}
	cg, err := machineCgroups()
	if err != nil {
		return err
	}
	n := &realNode{o: o, name: strings.ToLower(o.Name), ip: nodeIP(o.Inventory), cg: cg, restart: make(chan struct{}, 1)}
	n.cgRoot = cg.nodeRoot(n.name, o.Root)
	if err := n.prepare(ctx); err != nil {
		return err
	}
	o.Progress(agentapi.StageRebooting, "Starting containerd and the kubelet")
	nsCtx, stopNS := context.WithCancel(context.Background())
	nsDone := make(chan struct{})
	go func() {
		defer close(nsDone)
		n.runNamespace(nsCtx)
	}()
	stop := func() {
		stopNS()
		<-nsDone
	}
	err = n.join(ctx)
	if errors.Is(context.Cause(ctx), ErrHostReleased) {
		err = ErrHostReleased
	}
	if errors.Is(err, ErrNodeDeleted) || errors.Is(err, ErrHostReleased) {
		stop()
		n.o.Log.Info("removing the node's containers and data", "why", err.Error())
		if cerr := n.cleanup(); cerr != nil {
			n.o.Log.Error(cerr, "cleaning up the node")
		}
		return err
	}
	// Stopped (hcp-agent ends): containers keep running in their shims and
	// the next start adopts them.
	stop()
	return err
}

// prepare puts the node's binaries in place and writes what the units read
// about this host: its name and address, its cgroup root and provider ID.
func (n *realNode) prepare(ctx context.Context) error {
	root := n.o.Root
	if err := n.staleFromAnotherCluster(); err != nil {
		return err
	}
	if err := n.chooseRelease(); err != nil {
		return err
	}
	if err := n.installBinaries(ctx); err != nil {
		return err
	}
	env := fmt.Sprintf("NODE_NAME=%s\nNODE_IP=%s\n", n.name, n.ip)
	if err := writeUnder(root, ignition.NodeEnvPath, []byte(env), 0o644); err != nil {
		return err
	}
	if err := n.cg.prepare(n.cgRoot); err != nil {
		return err
	}
	host := map[string]any{
		"apiVersion":   "kubelet.config.k8s.io/v1beta1",
		"kind":         "KubeletConfiguration",
		"cgroupDriver": "cgroupfs",
		"cgroupRoot":   n.cgRoot,
		"providerID":   n.o.ProviderID,
	}
	if r := reserved(n.o.Inventory, n.o.MachineShare); r != nil {
		host["systemReserved"] = r
	}
	for k, v := range sharedDisk(root) {
		host[k] = v
	}
	b, err := yaml.Marshal(host)
	if err != nil {
		return err
	}
	if err := writeUnder(root, ignition.KubeletConfigDir+"/50-hcp-host.conf", b, 0o644); err != nil {
		return err
	}
	// The host routes between its pods and the other nodes' pods, and its
	// bridge's traffic passes through iptables (Services).
	for _, s := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"} {
		if err := os.WriteFile("/proc/sys/"+s, []byte("1"), 0o644); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("sysctl %s: %w", s, err)
		}
	}
	return nil
}

// sharedDisk is the eviction settings of a node whose files live under a
// directory of a machine it shares (a lab or management node of hcp up):
// the disk the kubelet would watch is the machine's, filled and freed by
// everything else on it, so a fuller disk must not evict the node's pods
// or delete its images; memory pressure still evicts. nil for a node that
// has its own root.
func sharedDisk(root string) map[string]any {
	if root == "" || filepath.Clean(root) == "/" {
		return nil
	}
	return map[string]any{
		"evictionHard": map[string]string{
			"memory.available":   "100Mi",
			"nodefs.available":   "0%",
			"nodefs.inodesFree":  "0%",
			"imagefs.available":  "0%",
			"imagefs.inodesFree": "0%",
		},
		"imageGCHighThresholdPercent": 100,
	}
}

// reserved is what a node sharing the machine with share-1 others keeps
// from its pods: all but its share of the CPUs and memory the inventory
// reports. nil for a node that has the machine to itself.
func reserved(inv *agentv1.HostInventory, share int) map[string]string {
	if share <= 1 || inv == nil {
		return nil
	}
	mem := inv.Memory.UsableBytes
	if mem == 0 {
		mem = inv.Memory.PhysicalBytes
	}
	milli := max(inv.Cpu.Count, 1) * 1000
	return map[string]string{
		"cpu":    fmt.Sprintf("%dm", milli-milli/int64(share)),
		"memory": fmt.Sprintf("%dMi", (mem-mem/int64(share))>>20),
	}
}

// installBinaries puts the node's binaries of its release in place.
func (n *realNode) installBinaries(ctx context.Context) error {
	root := n.o.Root
	for _, b := range ignition.NodeBinaries {
		if err := n.binary(ctx, b, filepath.Join(root, ignition.BinDir, b), b); err != nil {
			return err
		}
	}
	for _, p := range ignition.CNIPlugins {
		if err := n.binary(ctx, "cni/"+p, filepath.Join(root, ignition.CNIBinDir, p), "cni-"+p); err != nil {
			return err
		}
	}
	if n.release != "" && n.o.PayloadDir == "" {
		if err := writeUnder(root, fetchedReleasePath, []byte(n.release+"\n"), 0o644); err != nil {
			return err
		}
		n.refetch = false
	}
	return nil
}

// upgradeTo moves the node to another release in place: that release's
// binaries, recorded as the node's release, and the units started again.
func (n *realNode) upgradeTo(ctx context.Context, name string) error {
	n.o.Log.Info("moving the node to another release in place", "from", n.release, "to", name)
	if err := n.useRelease(name); err != nil {
		return err
	}
	if n.o.PayloadDir == "" {
		n.refetch = true
	}
	if err := n.installBinaries(ctx); err != nil {
		return err
	}
	if err := writeUnder(n.o.Root, ignition.ReleasePath, []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	select {
	case n.restart <- struct{}{}:
	default:
	}
	return nil
}

// fetchedReleasePath records which release the downloaded node binaries
// are of, so that a host installed again for another release fetches anew.
const fetchedReleasePath = ignition.BinDir + "/.hcp-release"

// chooseRelease reads the release the Ignition names for the node's
// binaries and, on a host of the management machine, finds its payload
// directory beside the default one.
func (n *realNode) chooseRelease() error {
	b, err := os.ReadFile(filepath.Join(n.o.Root, ignition.ReleasePath))
	if err != nil {
		return nil //nolint:nilerr // an Ignition without one: the default release
	}
	return n.useRelease(strings.TrimSpace(string(b)))
}

// useRelease makes the node's binaries come from the named release.
func (n *realNode) useRelease(name string) error {
	n.release = name
	if n.o.PayloadDir != "" && n.release != "" && filepath.Base(n.o.PayloadDir) != n.release {
		dir := filepath.Join(filepath.Dir(n.o.PayloadDir), n.release)
		if _, err := os.Stat(filepath.Join(dir, "release.json")); err != nil {
			return fmt.Errorf("the node's release %s is not in %s: %w", n.release, filepath.Dir(n.o.PayloadDir), err)
		}
		n.o.PayloadDir = dir
	}
	if n.o.PayloadDir == "" {
		if had, _ := os.ReadFile(filepath.Join(n.o.Root, fetchedReleasePath)); strings.TrimSpace(string(had)) != n.release {
			n.refetch = true
		}
	}
	return nil
}

// binary links a payload binary into the node (from the payload directory
// of a host on the management machine) or downloads it from the
// infrastructure service.
func (n *realNode) binary(ctx context.Context, payloadName, dest, artifact string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if n.o.PayloadDir != "" {
		src := filepath.Join(n.o.PayloadDir, payloadName)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("node binary %s: %w", payloadName, err)
		}
		if cur, err := os.Readlink(dest); err == nil && cur == src {
			return nil
		}
		_ = os.Remove(dest)
		return os.Symlink(src, dest)
	}
	if _, err := os.Stat(dest); err == nil && !n.refetch {
		return nil
	}
	if n.o.Fetch == nil {
		return fmt.Errorf("no %s on this host and nowhere to fetch it from", dest)
	}
	return backoff(ctx, 30*time.Second, func() error { return n.o.Fetch(ctx, artifact, n.release, dest) }, func(err error, wait time.Duration) {
		n.o.Log.Info("fetching a node binary failed; retrying", "binary", artifact, "error", err.Error(), "after", wait)
	})
}

// staleFromAnotherCluster removes node state a host kept from a cluster
// other than the one its new Ignition joins.
func (n *realNode) staleFromAnotherCluster() error {
	root := n.o.Root
	old, err := clientcmd.LoadFromFile(filepath.Join(root, ignition.NodeKubeconfigPath))
	if err != nil {
		return nil //nolint:nilerr // no earlier node
	}
	boot, err := clientcmd.LoadFromFile(filepath.Join(root, ignition.BootstrapKubeconfigPath))
	if err != nil {
		return fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	same := false
	for _, oc := range old.Clusters {
		for _, bc := range boot.Clusters {
			if oc.Server == bc.Server && string(oc.CertificateAuthorityData) == string(bc.CertificateAuthorityData) {
				same = true
			}
		}
	}
	if same {
		return nil
	}
	n.o.Log.Info("this host ran a node of another cluster; removing what is left of it")
	return n.cleanup()
}

// runNamespace runs the node's units (hcp-agent node-namespace) until ctx
// ends, restarting them if they stop.
func (n *realNode) runNamespace(ctx context.Context) {
	root := n.o.Root
	logPath := filepath.Join(root, "var/log/node.log")
	_ = os.MkdirAll(filepath.Dir(logPath), 0o755)
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	for ctx.Err() == nil {
		out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			n.o.Log.Error(err, "node log")
			return
		}
		cmd := exec.Command(self, NamespaceCommand, "--root", root)
		// The units stop (gracefully) when hcp-agent ends; the pods' shims
		// and containers stay.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if root != "/" {
			if pid := nodeProcess(root); pid > 0 {
				// The node's containers still run (in their shims): the units
				// join their mount namespace, where the sandboxes' network
				// namespaces are mounted, and adopt them.
				n.o.Log.Info("adopting the node's running containers", "shim", pid)
				cmd = exec.Command("nsenter", "--mount=/proc/"+strconv.Itoa(pid)+"/ns/mnt", "--", self, NamespaceCommand, "--root", root, "--mounted")
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			} else {
				cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS
			}
		}
		cmd.Stdout, cmd.Stderr = out, out
		err = cmd.Start()
		if err == nil {
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err = <-waited:
			case <-n.restart:
				// New binaries: the units stop and start again at once;
				// the pods' containers keep running in their shims.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err = <-waited:
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
					err = <-waited
				}
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-waited:
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
					<-waited
				}
			}
		}
		out.Close()
		if ctx.Err() != nil {
			return
		}
		n.o.Log.Info("the node's units stopped; starting them again", "error", fmt.Sprint(err), "log", logPath)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// join waits for the kubelet's TLS bootstrap and its Node, wires the pod
// network, reports Joined and Done, and then watches the Node until ctx ends
// or the Node is deleted.
func (n *realNode) join(ctx context.Context) error {
	o := n.o
	kc := filepath.Join(o.Root, ignition.NodeKubeconfigPath)
	var cfg *rest.Config
	if err := backoff(ctx, 2*time.Second, func() error {
		c, err := nodeClientConfig(o.Root, kc)
		cfg = c
		return err
	}, func(error, time.Duration) {
		o.Progress(agentapi.StageRebooting, n.bootstrapProgress(ctx))
	}); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n.cs = cs
	if err := backoff(ctx, 2*time.Second, func() error {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil {
			n.uid = string(node.UID)
		}
		return err
	}, func(err error, _ time.Duration) {
		o.Progress(agentapi.StageRebooting, "Waiting for the kubelet to register the node: "+joinError(err))
	}); err != nil {
		return err
	}
	o.Progress("Joined", "Node "+n.name+" registered")
	o.Log.Info("the kubelet registered the node", "node", n.name)
	netCtx, stopNet := context.WithCancel(ctx)
	defer stopNet()
	go n.network(netCtx)
	if err := n.enforcePolicies(netCtx); err != nil {
		return err
	}
	ready := false
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && string(node.UID) != n.uid):
			return ErrNodeDeleted
		case err == nil:
			if want := node.Annotations[hosted.DesiredReleaseAnnotation]; want != "" && want != n.release {
				if err := n.upgradeTo(ctx, want); err != nil {
					o.Log.Error(err, "moving the node to another release", "release", want)
				}
			}
			if r := nodeReady(node); r != nil && r.Status == corev1.ConditionTrue && !ready {
				ready = true
				o.Progress("Done", "Node "+n.name+" is Ready")
				o.Log.Info("node is ready", "node", n.name, "providerID", o.ProviderID)
				tick.Reset(10 * time.Second)
			} else if !ready && r != nil {
				o.Progress("Joined", "Node "+n.name+" is not Ready yet: "+r.Message)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// enforcePolicies enforces the cluster's NetworkPolicies on the node's pods
// when the Ignition gave the node an identity to read them with.
func (n *realNode) enforcePolicies(ctx context.Context) error {
	kc := filepath.Join(n.o.Root, ignition.NetworkPolicyKubeconfigPath)
	if !fileExists(kc) {
		return nil
	}
	if p := netpol.Problems(); len(p) > 0 {
		return fmt.Errorf("this host cannot enforce NetworkPolicies: %s", strings.Join(p, "; "))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		return fmt.Errorf("network policy kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			if err := netpol.Run(ctx, cs, n.name, n.o.Log.WithName("network-policy")); err != nil {
				n.o.Log.Error(err, "enforcing NetworkPolicies; starting again")
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		}
	}()
	return nil
}

// bootstrapProgress says what the kubelet's TLS bootstrap waits for: the
// API server it cannot reach (asked with the bootstrap kubeconfig, as the
// kubelet does), or the kubelet itself.
func (n *realNode) bootstrapProgress(ctx context.Context) string {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(n.o.Root, ignition.BootstrapKubeconfigPath))
	if err != nil {
		return "Cannot join the cluster yet (retrying): bootstrap kubeconfig: " + joinError(err)
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err == nil {
		_, err = cs.Discovery().ServerVersion()
	}
	if err != nil && ctx.Err() == nil {
		return "Cannot join the cluster yet (retrying): " + joinError(err)
	}
	return "Waiting for the kubelet to join (TLS bootstrap)"
}

func nodeReady(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// nodeClientConfig reads the kubelet's kubeconfig from outside the node's
// mount namespace: its certificate paths (and the link the kubelet keeps to
// its current certificate) are resolved under root.
func nodeClientConfig(root, path string) (*rest.Config, error) {
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	for _, a := range kc.AuthInfos {
		a.ClientCertificate = underRoot(root, a.ClientCertificate)
		a.ClientKey = underRoot(root, a.ClientKey)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 15 * time.Second
	return cfg, nil
}

// underRoot is a node path as seen from outside the node: below root, with a
// link whose target is absolute followed below root too.
func underRoot(root, p string) string {
	if p == "" || root == "/" {
		return p
	}
	full := filepath.Join(root, p)
	for range 8 {
		t, err := os.Readlink(full)
		if err != nil {
			break
		}
		if filepath.IsAbs(t) {
			full = filepath.Join(root, t)
		} else {
			full = filepath.Join(filepath.Dir(full), t)
		}
	}
	return full
}

// cniConfig is the node's CNI network: a bridge on the node's pod range,
// with port mappings.
func cniConfig(podCIDR string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "hcp",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR)
}

// cniConfigPath is the node's CNI network config.
const cniConfigPath = "/etc/cni/net.d/10-hcp.conflist"

// network keeps the node's pod network: the CNI config once the cluster gave
// the node a pod range, a route to every other node's range via its address,
// and masquerading of pod traffic that leaves the cluster network.
func (n *realNode) network(ctx context.Context) {
	clusterCIDR := n.clusterCIDR()
	routes := map[string]string{}
	masq := ""
	for {
		nodes, err := n.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			want := map[string]string{}
			for _, node := range nodes.Items {
				cidr := node.Spec.PodCIDR
				if cidr == "" {
					continue
				}
				if node.Name == n.name {
					if masq != cidr && clusterCIDR != "" {
						if err := ensureMasquerade(cidr, clusterCIDR); err != nil {
							n.o.Log.Info("masquerading pod traffic failed", "error", err.Error())
						} else {
							masq = cidr
						}
					}
					path := filepath.Join(n.o.Root, cniConfigPath)
					if b, err := os.ReadFile(path); err != nil || string(b) != cniConfig(cidr) {
						if err := writeUnder(n.o.Root, cniConfigPath, []byte(cniConfig(cidr)), 0o644); err != nil {
							n.o.Log.Error(err, "writing the CNI config")
						} else {
							n.o.Log.Info("pod network configured", "podCIDR", cidr)
						}
					}
					continue
				}
				for _, a := range node.Status.Addresses {
					if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
						want[cidr] = a.Address
					}
				}
			}
			for cidr, via := range want {
				if routes[cidr] == via {
					continue
				}
				if out, err := exec.Command("ip", "route", "replace", cidr, "via", via).CombinedOutput(); err != nil {
					n.o.Log.Info("adding a route to another node's pods failed", "podCIDR", cidr, "via", via, "error", strings.TrimSpace(string(out)))
					continue
				}
				routes[cidr] = via
			}
			for cidr := range routes {
				if _, ok := want[cidr]; !ok {
					_ = exec.Command("ip", "route", "del", cidr).Run()
					delete(routes, cidr)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

// clusterCIDR is the pod network as the node's kube-proxy config names it.
func (n *realNode) clusterCIDR() string {
	b, err := os.ReadFile(filepath.Join(n.o.Root, ignition.KubeProxyConfigPath))
	if err != nil {
		return ""
	}
	var cfg struct {
		ClusterCIDR string `json:"clusterCIDR"`
	}
	if yaml.Unmarshal(b, &cfg) != nil {
		return ""
	}
	return cfg.ClusterCIDR
}

func masqueradeRule(podCIDR, clusterCIDR string) []string {
	return []string{"-t", "nat", "POSTROUTING", "-s", podCIDR, "!", "-d", clusterCIDR, "-m", "comment", "--comment", "hcp: pods to outside the cluster network", "-j", "MASQUERADE"}
}

func ensureMasquerade(podCIDR, clusterCIDR string) error {
	rule := masqueradeRule(podCIDR, clusterCIDR)
	check := append([]string{rule[0], rule[1], "-C"}, rule[2:]...)
	if exec.Command("iptables", check...).Run() == nil {
		return nil
	}
	add := append([]string{rule[0], rule[1], "-A"}, rule[2:]...)
	if out, err := exec.Command("iptables", add...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(add, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanup removes what the node left on the host: its processes (shims and
// containers), cgroups, Service rules, pod network, routes and data.
func (n *realNode) cleanup() error {
	var errs []error
	if n.o.Root != "/" {
		killNodeProcesses(n.o.Root)
	}
	if err := n.cg.remove(n.cgRoot); err != nil {
		errs = append(errs, err)
	}
	root := n.o.Root
	if proxy := filepath.Join(root, ignition.BinDir, "kube-proxy"); fileExists(proxy) {
		_ = exec.Command(proxy, "--cleanup").Run()
	}
	if fileExists(filepath.Join(root, ignition.NetworkPolicyKubeconfigPath)) {
		if err := netpol.Remove(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("removing the node's policy rules: %w", err))
		}
	}
	if cidr := n.clusterCIDR(); cidr != "" {
		if b, err := os.ReadFile(filepath.Join(root, cniConfigPath)); err == nil {
			if i := strings.Index(string(b), `"subnet": "`); i >= 0 {
				pod, _, _ := strings.Cut(string(b)[i+len(`"subnet": "`):], `"`)
				rule := masqueradeRule(pod, cidr)
				_ = exec.Command("iptables", append([]string{rule[0], rule[1], "-D"}, rule[2:]...)...).Run()
			}
		}
		if _, cn, err := net.ParseCIDR(cidr); err == nil {
			out, _ := exec.Command("ip", "-4", "route", "show").Output()
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) > 0 {
					if ip, _, err := net.ParseCIDR(f[0]); err == nil && cn.Contains(ip) {
						_ = exec.Command("ip", "route", "del", f[0]).Run()
					}
				}
			}
		}
	}
	_ = exec.Command("ip", "link", "del", "cni0").Run()
	if root != "/" {
		for _, d := range []string{"var/lib/kubelet", "var/lib/containerd", "var/lib/cni", "var/log/pods", "var/log/containers", "var/log/units",
			"run/containerd", "run/netns", "opt/containerd", "etc/cni"} {
			if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// nodeProcesses are the processes in a node's mount namespace (the node's
// containerd shims outlive its units), known by the node's run/containerd
// mounted over /run/containerd.
func nodeProcesses(root string) []int {
	src := filepath.Join(root, "run/containerd")
	return processesByContainerdMount(func(source string) bool { return strings.HasSuffix(src, source) })
}

// processesByContainerdMount are the processes, other than this one, whose
// /run/containerd is a bind mount (a node's) with a source match accepts.
// A source whose directory was deleted counts as its old path.
func processesByContainerdMount(match func(source string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			// Fields: id parent dev root mountpoint ...; root is the bind
			// source relative to its file system's root.
			f := strings.Fields(line)
			if len(f) > 4 && f[4] == "/run/containerd" && f[3] != "/run/containerd" && match(strings.TrimSuffix(f[3], "//deleted")) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// StopNodesUnder kills what still runs of every node whose root was
// <dataDir>/<kind>/<host>/root (the lab hosts and management nodes of an hcp
// up that is gone, even one whose directory was since deleted) and returns
// how many processes it ended.
func StopNodesUnder(dataDir string) int {
	pids := processesByContainerdMount(func(source string) bool { return nodeOf(source, dataDir) })
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// nodeOf says whether a node's /run/containerd bind source (relative to its
// file system's root; "//deleted" already dropped) is that of a node under
// dataDir: <dataDir>/<kind>/<host>/root/run/containerd.
func nodeOf(source, dataDir string) bool {
	node, ok := strings.CutSuffix(source, "/root/run/containerd")
	if !ok {
		return false
	}
	owner := filepath.Dir(filepath.Dir(node))
	// dataDir is absolute: the relative source's owner ends it.
	return owner != "/" && owner != "." && strings.HasSuffix(filepath.Clean(dataDir), owner)
}

// nodeProcess is a process still in the node's mount namespace, 0 if none.
func nodeProcess(root string) int {
	if p := nodeProcesses(root); len(p) > 0 {
		return p[0]
	}
	return 0
}

func killNodeProcesses(root string) {
	for _, pid := range nodeProcesses(root) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// StopNode ends what still runs of the node of a host whose files are under
// root (a directory, not "/") and whose hostname is name: the processes in
// its mount namespace and every container in its cgroups. Its data stays; the
// next start of the host runs its pods again.
func StopNode(root, name string) error {
	if root == "/" {
		return fmt.Errorf("StopNode is for hosts with a root directory of their own")
	}
	killNodeProcesses(root)
	cg, err := machineCgroups()
	if err != nil {
		return err
	}
	return cg.remove(cg.nodeRoot(strings.ToLower(name), root))
}

// machineCgroups is this machine's cgroup layout as this process sees it.
func machineCgroups() (*cgroups, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("no /proc/self/cgroup: %w", err)
	}
	return detectCgroups(cgroupFS, string(self))
}
