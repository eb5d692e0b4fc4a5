package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// Marks on a simulated node, so nobody mistakes it for a kubelet with a
// container runtime.
const (
	SimulatedLabel      = "node.hcp.dev/simulated"
	SimulatedAnnotation = "node.hcp.dev/kubelet"
)

// Paths of the node's own credentials under its root.
const (
	nodeKubeconfigPath = "/var/lib/kubelet/kubeconfig"
	nodeCertPath       = "/var/lib/kubelet/pki/kubelet-client-current.pem"
)

// ErrNodeDeleted: the cluster removed this node; the host waits to be booted
// into discovery again.
var ErrNodeDeleted = errors.New("the node was deleted from the cluster")

// ErrHostReleased ends a node (as the cause of its context) whose host was
// unbound from its cluster while the node ran: the host is cleaned as when
// its node is deleted.
var ErrHostReleased = errors.New("the host was released from its cluster")

// NodeOptions configure node mode.
type NodeOptions struct {
	// Root is where the Ignition was applied.
	Root string
	// Name is the node name (the host's hostname).
	Name string
	// ProviderID is agent://<agent>.
	ProviderID string
	// Inventory gives the node's capacity and address.
	Inventory *agentv1.HostInventory
	// KubeletPort is where the node's kubelet endpoint listens (0: 10250, or
	// any free port when 10250 is taken).
	KubeletPort int
	// Progress reports installation stages.
	Progress func(stage, info string)
	Log      logr.Logger
	// Fetch downloads an artifact of the infrastructure service (the
	// konnectivity agent, a release's node binaries; release empty: the
	// service's default) to a path.
	Fetch func(ctx context.Context, file, release, dest string) error
	// HeartbeatInterval is how often the node Lease is renewed.
	HeartbeatInterval time.Duration
	// PayloadDir is a release payload directory on this machine to take the
	// node's binaries from (or, when the Ignition names another release, the
	// directory of that name beside it); empty: they are downloaded.
	PayloadDir string
	// MachineShare is how many nodes share this machine (see Options).
	MachineShare int
}

// RunNode joins the cluster as a node: TLS bootstrap with the bootstrap
// token (a kubelet client CSR), the Node with its providerID, capacity and
// Ready condition, Lease heartbeats, a kubelet endpoint (/healthz, /pods) and
// pods run with KWOK semantics: bound pods are reported Running, deleted pods
// are finalized. It returns ErrNodeDeleted when the cluster removes the Node.
func RunNode(ctx context.Context, o NodeOptions) error {
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = func(string, string) {}
	}
	o.Name = strings.ToLower(o.Name)
	cfg, err := nodeCredentials(ctx, o)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n := &node{o: o, cs: cs, ip: nodeIP(o.Inventory)}
	srv, err := n.serve()
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := n.register(ctx); err != nil {
		return err
	}
	o.Progress("Joined", "Node "+o.Name+" registered")
	if err := backoff(ctx, 15*time.Second, func() error {
		err := n.updateStatus(ctx)
		if errors.Is(err, ErrNodeDeleted) {
			return permanent(err)
		}
		return err
	}, func(err error, wait time.Duration) {
		o.Log.Info("reporting the node status failed; retrying", "error", err.Error(), "after", wait)
	}); err != nil {
		return err
	}
	o.Progress("Done", "Node "+o.Name+" is Ready")
	o.Log.Info("node is ready", "node", o.Name, "providerID", o.ProviderID)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go n.runPods(ctx)
	go n.runKonnectivity(ctx)
	lease := time.NewTicker(o.HeartbeatInterval)
	defer lease.Stop()
	status := time.NewTicker(time.Minute)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-lease.C:
			if err := n.renewLease(ctx); err != nil {
				if errors.Is(err, ErrNodeDeleted) {
					return err
				}
				o.Log.Info("renewing the node lease failed", "error", err.Error())
			}
		case <-status.C:
			if err := n.updateStatus(ctx); err != nil {
				if errors.Is(err, ErrNodeDeleted) {
					return err
				}
				o.Log.Info("updating the node status failed", "error", err.Error())
			}
		}
	}
}

type node struct {
	o    NodeOptions
	cs   kubernetes.Interface
	ip   string
	port int
	uid  string

	mu   sync.Mutex
	pods map[string]*corev1.Pod
}

// nodeIP is the host's first non-loopback IPv4 address.
func nodeIP(inv *agentv1.HostInventory) string {
	for _, n := range inv.Interfaces {
		for _, a := range n.IPV4Addresses {
			ip, _, _ := strings.Cut(a, "/")
			if p := net.ParseIP(ip); p != nil && !p.IsLoopback() {
				return ip
			}
		}
	}
	return "127.0.0.1"
}

// serve runs the node's kubelet endpoint: /healthz and /pods over TLS with a
// self-signed certificate, as a kubelet without a serving certificate does.
func (n *node) serve() (*http.Server, error) {
	port := n.o.KubeletPort
	if port == 0 {
		port = 10250
	}
	l, err := net.Listen("tcp", net.JoinHostPort(n.ip, strconv.Itoa(port)))
	if err != nil && n.o.KubeletPort == 0 {
		l, err = net.Listen("tcp", net.JoinHostPort(n.ip, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("kubelet endpoint: %w", err)
	}
	n.port = l.Addr().(*net.TCPAddr).Port
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(n.o.Name, []net.IP{net.ParseIP(n.ip)}, nil)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, _ *http.Request) {
		n.mu.Lock()
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range n.pods {
			list.Items = append(list.Items, *p)
		}
		n.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	return srv, nil
}

// kubeletFlags reads --node-labels and --register-with-taints from the kubelet
// unit the Ignition installed.
func kubeletFlags(root string) (map[string]string, []corev1.Taint) {
	labels := map[string]string{}
	var taints []corev1.Taint
	b, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/kubelet.service"))
	if err != nil {
		return labels, nil
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "--node-labels="); ok {
			for _, kv := range strings.Split(v, ",") {
				if k, val, ok := strings.Cut(kv, "="); ok {
					labels[k] = val
				}
			}
		}
		if v, ok := strings.CutPrefix(f, "--register-with-taints="); ok {
			for _, t := range strings.Split(v, ",") {
				kv, effect, _ := strings.Cut(t, ":")
				k, val, _ := strings.Cut(kv, "=")
				taints = append(taints, corev1.Taint{Key: k, Value: val, Effect: corev1.TaintEffect(effect)})
			}
		}
	}
	return labels, taints
}

// register creates the Node, or takes over the one with this name.
func (n *node) register(ctx context.Context) error {
	labels, taints := kubeletFlags(n.o.Root)
	labels[corev1.LabelHostname] = n.o.Name
	labels[corev1.LabelOSStable] = "linux"
	labels[corev1.LabelArchStable] = goruntime.GOARCH
	labels[SimulatedLabel] = "true"
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.o.Name, Labels: labels,
			Annotations: map[string]string{SimulatedAnnotation: "simulated: pods get KWOK semantics (reported Running, no containers run); this host has no container runtime"}},
		Spec: corev1.NodeSpec{ProviderID: n.o.ProviderID, Taints: taints},
	}
	return backoff(ctx, 15*time.Second, func() error {
		created, err := n.cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			n.uid = string(created.UID)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		existing, err := n.cs.CoreV1().Nodes().Get(ctx, n.o.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.uid = string(existing.UID)
		if existing.Spec.ProviderID != n.o.ProviderID && existing.Spec.ProviderID != "" {
			return permanent(fmt.Errorf("node %s exists with providerID %s, not %s; is another host using this hostname?", n.o.Name, existing.Spec.ProviderID, n.o.ProviderID))
		}
		return nil
	}, func(err error, wait time.Duration) {
		n.o.Log.Info("registering the node failed; retrying", "error", err.Error(), "after", wait)
		n.o.Progress(agentapi.StageRebooting, "Cannot register the node yet (retrying): "+joinError(err))
	})
}

// updateStatus reports capacity, addresses, conditions and node info,
// retrying when the Node changed meanwhile.
func (n *node) updateStatus(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return n.tryUpdateStatus(ctx) })
}

func (n *node) tryUpdateStatus(ctx context.Context) error {
	cur, err := n.cs.CoreV1().Nodes().Get(ctx, n.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && string(cur.UID) != n.uid) {
		return ErrNodeDeleted
	}
	if err != nil {
		return err
	}
	version := "v0.0.0"
	if v, err := n.cs.Discovery().ServerVersion(); err == nil {
		version = v.GitVersion
	}
	inv := n.o.Inventory
	var disk int64
	for _, d := range inv.Disks {
		disk = max(disk, d.SizeBytes)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(max(inv.Cpu.Count, 1), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(inv.Memory.PhysicalBytes, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(110, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
	}
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, old := range cur.Status.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	cur.Status.Capacity, cur.Status.Allocatable = capacity, capacity
	cur.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "the node network is configured"),
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (simulated: pods get KWOK semantics)"),
	}
	cur.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.ip}, {Type: corev1.NodeHostName, Address: n.o.Name}}
	cur.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(n.port)
	cur.Status.NodeInfo = corev1.NodeSystemInfo{MachineID: machineID(n.o.ProviderID), SystemUUID: machineID(n.o.ProviderID), BootID: n.uid,
		KernelVersion: "simulated", OSImage: "hcp simulated node", ContainerRuntimeVersion: "simulated://" + version,
		KubeletVersion: version, OperatingSystem: "linux", Architecture: goruntime.GOARCH}
	_, err = n.cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return ErrNodeDeleted
	}
	return err
}

func machineID(providerID string) string {
	return strings.ReplaceAll(hosted.AgentOf(providerID), "-", "")
}

// renewLease renews the node's Lease in kube-node-lease, as a kubelet does.
func (n *node) renewLease(ctx context.Context) error {
	leases := n.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, n.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := n.cs.CoreV1().Nodes().Get(ctx, n.o.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return ErrNodeDeleted
		}
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.o.Name, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.o.Name, UID: types.UID(n.uid)}}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.o.Name), LeaseDurationSeconds: ptr.To(int32(40)), RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}
