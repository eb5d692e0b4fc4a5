// Package csrapprover approves the serving certificate requests of hosted
// clusters' kubelets, as a machine approver does: a request is approved only
// when it comes from the node it names, asks for serving usages, and covers
// nothing but that node's name and the addresses its Agent reported.
package csrapprover

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// Decide says whether a kubelet serving CSR may be approved, given the
// addresses of the Agent whose hostname is the node's name (ok false: no
// such bound Agent). A CSR that is not a kubelet serving request, or is
// already decided, gets false with an empty reason: it is not ours.
func Decide(csr *certificatesv1.CertificateSigningRequest, addresses func(node string) (ips []string, ok bool)) (bool, string) {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || decided(csr) {
		return false, ""
	}
	node, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return false, "requested by " + csr.Spec.Username + ", not by a node"
	}
	for _, u := range csr.Spec.Usages {
		if u != certificatesv1.UsageDigitalSignature && u != certificatesv1.UsageKeyEncipherment && u != certificatesv1.UsageServerAuth {
			return false, "asks for usage " + string(u)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return false, "does not ask for server auth"
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return false, "request is not PEM"
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return false, "request: " + err.Error()
	}
	if req.Subject.CommonName != csr.Spec.Username || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return false, fmt.Sprintf("subject %q is not the requesting node's", req.Subject.String())
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return false, "names e-mail addresses or URIs"
	}
	for _, d := range req.DNSNames {
		if d != node {
			return false, fmt.Sprintf("DNS name %q is not the node's name %q", d, node)
		}
	}
	ips, ok := addresses(node)
	if !ok {
		return false, "no bound Agent has hostname " + node
	}
	for _, ip := range req.IPAddresses {
		if !slices.Contains(ips, ip.String()) {
			return false, fmt.Sprintf("address %s is not one the host of %s reported (%s)", ip, node, strings.Join(ips, ", "))
		}
	}
	return true, "the node's name and its host's addresses"
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return true
		}
	}
	return false
}

// Approvers runs one approver per hosted cluster.
type Approvers struct {
	// Client reads Agents and control plane Secrets on the management cluster.
	Client client.Reader
	// KubeconfigSecret is the control plane Secret whose absence means the
	// hosted cluster is gone.
	KubeconfigSecret string
	Log              logr.Logger

	mu      sync.Mutex
	running map[string]*approver
}

type approver struct {
	key    string
	ctx    context.Context
	cancel context.CancelFunc
}

// Ensure runs the approver of the hosted cluster whose control plane is in
// cpns (with its admin kubeconfig), checking addresses against the Agents in
// agentNamespace. A changed kubeconfig restarts it.
func (a *Approvers) Ensure(cpns string, kubeconfig []byte, agentNamespace string) error {
	key := string(kubeconfig) + "\x00" + agentNamespace
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.running[cpns]; cur != nil {
		if cur.key == key {
			return nil
		}
		cur.cancel()
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if a.running == nil {
		a.running = map[string]*approver{}
	}
	a.running[cpns] = &approver{key: key, ctx: ctx, cancel: cancel}
	go a.run(ctx, cs, cpns, agentNamespace)
	return nil
}

// stop ends the approver of a hosted cluster if it is still the one whose
// context is ctx.
func (a *Approvers) stop(ctx context.Context, cpns string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.running[cpns]; cur != nil && cur.ctx == ctx {
		cur.cancel()
		delete(a.running, cpns)
	}
}

func (a *Approvers) run(ctx context.Context, cs kubernetes.Interface, cpns, agentNamespace string) {
	log := a.Log.WithValues("controlPlane", cpns)
	go Run(ctx, cs, func(node string) ([]string, bool) { return a.addresses(ctx, agentNamespace, node) }, log)
	// The approver ends with its hosted cluster: when the control plane's
	// kubeconfig is gone.
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			err := a.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: a.KubeconfigSecret}, &corev1.Secret{})
			if apierrors.IsNotFound(err) {
				log.Info("the hosted cluster is gone; its approver stops")
				a.stop(ctx, cpns)
				return
			}
		}
	}
}

// Run approves a cluster's kubelet serving certificate requests that Decide
// accepts, with the nodes' addresses from addresses, until ctx ends.
func Run(ctx context.Context, cs kubernetes.Interface, addresses func(node string) ([]string, bool), log logr.Logger) {
	factory := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	inf := factory.Certificates().V1().CertificateSigningRequests().Informer()
	handle := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			approve(ctx, cs, csr, addresses, log)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: handle, UpdateFunc: func(_, n any) { handle(n) }})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

func approve(ctx context.Context, cs kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest, addresses func(string) ([]string, bool), log logr.Logger) {
	ok, reason := Decide(csr, addresses)
	if reason == "" {
		return
	}
	if !ok {
		log.Info("leaving a kubelet serving certificate request pending", "csr", csr.Name, "reason", reason)
		return
	}
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "HostAddressesMatch",
		Message: "approved by hcp: covers " + reason, LastUpdateTime: metav1.Now()})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		log.Info("approving a kubelet serving certificate request failed; the next resync retries", "csr", csr.Name, "error", err.Error())
		return
	}
	log.Info("approved a kubelet serving certificate request", "csr", csr.Name, "node", csr.Spec.Username)
}

// addresses are the IP addresses of the bound Agent whose hostname is node.
func (a *Approvers) addresses(ctx context.Context, namespace, node string) ([]string, bool) {
	agents := &agentv1.AgentList{}
	if err := a.Client.List(ctx, agents, client.InNamespace(namespace)); err != nil {
		return nil, false
	}
	for i := range agents.Items {
		ag := &agents.Items[i]
		if !hosted.Bound(ag) || strings.ToLower(hosted.Hostname(ag)) != node {
			continue
		}
		var ips []string
		for _, ifc := range ag.Status.Inventory.Interfaces {
			for _, addr := range append(append([]string{}, ifc.IPV4Addresses...), ifc.IPV6Addresses...) {
				ip, _, _ := strings.Cut(addr, "/")
				ips = append(ips, ip)
			}
		}
		return ips, true
	}
	return nil, false
}
