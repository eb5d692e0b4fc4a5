package up

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/agent"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/csrapprover"
	"github.com/hcp-dev/hcp/internal/guest"
	"github.com/hcp-dev/hcp/internal/hub"
	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/install"
	"github.com/hcp-dev/hcp/internal/kubeconfig"
	"github.com/hcp-dev/hcp/internal/management"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/supervisor"
)

// Management nodes: lab hosts that join the management plane itself as real
// nodes (the same node code as hosted clusters' workers), labelled and
// tainted for hosted control planes as the seed describes, one zone each.
const (
	// managementBootstrapGroup is the group of the management nodes'
	// bootstrap token: its kubelets' client certificate requests are
	// approved by the controller manager.
	managementBootstrapGroup = "system:bootstrappers:hcp:management"
	// InfraRoleLabel marks nodes that host control planes and are not
	// counted as workers.
	InfraRoleLabel = "node-role.kubernetes.io/infra"
	// maxManagementNodes is the most management nodes hcp up runs.
	maxManagementNodes = 9
)

// managementNodeName is management node i's name.
func managementNodeName(i int) string { return fmt.Sprintf("management-%d", i) }

// managementZone is management node i's zone: rack1, rack2, rack3, rack1, ...
func managementZone(i int) string { return fmt.Sprintf("rack%d", i%3+1) }

// managementLabIndex is the lab host index of management node i: after the
// discovery hosts.
func (p *Plane) managementLabIndex(i int) int { return p.opts.Agents + i }

// managementRoot is where management node i's files are installed.
func (p *Plane) managementRoot(i int) string {
	return filepath.Join(p.opts.DataDir, "management", managementNodeName(i), "root")
}

// startManagementNodes joins the management nodes to the management plane
// and waits until they are Ready, labelled and tainted.
func (p *Plane) startManagementNodes(ctx context.Context) error {
	n := p.opts.ManagementNodes
	if n == 0 {
		return nil
	}
	p.step("management nodes")
	c, err := client.New(p.hub.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(p.hub.RESTConfig())
	if err != nil {
		return err
	}
	token, err := p.managementToken(ctx, c)
	if err != nil {
		return fmt.Errorf("management nodes' bootstrap token: %w", err)
	}
	addons, err := guest.Addons(guest.AddonsInput{ServiceCIDR: hub.ServiceCIDR, CoreDNSImage: images.Reference("coredns", p.rel.Components["coredns"]),
		Policy: hyperv1.HighlyAvailable, KubeletClientUser: hub.KubeletClientUser,
		Tolerations: []corev1.Toleration{{Key: hyperv1.ControlPlaneLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}})
	if err != nil {
		return err
	}
	binding := func(name, role string, subject rbacv1.Subject) client.Object {
		return &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{subject}}
	}
	bootstrappers := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: managementBootstrapGroup}
	objs := append([]client.Object{
		// Kubelets with the token may ask for a client certificate, which
		// the controller manager approves.
		binding("hcp:management-node-bootstrapper", "system:node-bootstrapper", bootstrappers),
		binding("hcp:management-node-client", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrappers),
	}, addons...)
	// Control plane pods run at the priorities hcp install gives them.
	for _, pc := range install.PriorityClasses() {
		objs = append(objs, pc)
	}
	for _, o := range objs {
		if err := apply.Object(ctx, c, o, fieldOwner); err != nil {
			return err
		}
	}
	// Serving certificates: only a node's own name and lab address.
	addresses := map[string]string{}
	for i := range n {
		addresses[managementNodeName(i)] = p.lab.Address(p.managementLabIndex(i))
	}
	go csrapprover.Run(ctx, cs, func(node string) ([]string, bool) {
		ip, ok := addresses[node]
		return []string{ip}, ok
	}, p.log.WithName("management-csr"))

	infraTLS := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operator.DefaultNamespace, Name: infra.TLSSecret}, infraTLS); err != nil {
		return fmt.Errorf("reading the infrastructure service CA: %w", err)
	}
	bootstrap, err := kubeconfig.Config{Server: p.hub.NodeServer(), CA: p.hub.CA(), Token: token, Context: "bootstrap"}.Bytes()
	if err != nil {
		return err
	}
	policyKubeconfig, err := p.networkPolicyKubeconfig(ctx, c)
	if err != nil {
		return fmt.Errorf("management nodes' network policies: %w", err)
	}
	agentPath, err := exec.LookPath(agentBinary())
	if err != nil {
		return err
	}
	share := p.opts.Agents + n
	for i := range n {
		name := managementNodeName(i)
		cfg, err := ignition.Worker{BootstrapKubeconfig: bootstrap, CA: p.hub.CA(), ClusterDNS: hub.ClusterDNS, ClusterCIDR: hub.ClusterCIDR,
			Registry: p.infraURL(), RegistryCA: infraTLS.Data["ca.crt"], PauseImage: images.Reference("pause", p.rel.Name),
			NodeLabels:              map[string]string{corev1.LabelTopologyZone: managementZone(i), hyperv1.ControlPlaneLabel: "true"},
			Taints:                  []hyperv1.Taint{{Key: hyperv1.ControlPlaneLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
			NetworkPolicyKubeconfig: policyKubeconfig,
			InsecureRegistries:      p.opts.InsecureRegistries,
		}.Config()
		if err != nil {
			return err
		}
		dir := filepath.Dir(p.managementRoot(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		ign := filepath.Join(dir, "ignition.json")
		if err := os.WriteFile(ign, cfg, 0o600); err != nil {
			return err
		}
		idx := p.managementLabIndex(i)
		if err := p.lab.Host(idx); err != nil {
			return fmt.Errorf("management node %s: %w", name, err)
		}
		argv := p.lab.Exec(idx, agentPath, "node", "--ignition", ign, "--root", p.managementRoot(i), "--name", name,
			"--ip", p.lab.Address(idx), "--payload-dir", p.rel.Dir, "--machine-share", strconv.Itoa(share))
		if argv[0], err = exec.LookPath(argv[0]); err != nil {
			return err
		}
		proc, err := supervisor.Start(ctx, supervisor.Spec{Name: name, Path: argv[0], Args: argv[1:], LogPath: filepath.Join(dir, "hcp-agent.log")}, p.log)
		if err != nil {
			return err
		}
		p.hosts = append(p.hosts, proc)
	}
	if err := p.waitManagementNodes(ctx, c, n); err != nil {
		return err
	}
	return p.applyManagementAddons(ctx, c, n)
}

// applyManagementAddons runs the management nodes' volume provisioner (its
// StorageClass becomes the default).
func (p *Plane) applyManagementAddons(ctx context.Context, c client.Client, n int) error {
	in := management.Input{
		ProvisionerImage: images.Reference(images.LocalPathProvisionerRepository, p.rel.Components["local-path-provisioner"]),
		HelperImage:      images.Reference("library/busybox", p.rel.Components["busybox"]),
		VolumeDirs:       map[string]string{},
		Tolerations:      []corev1.Toleration{{Key: hyperv1.ControlPlaneLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
	for i := range n {
		dir := filepath.Join(filepath.Dir(p.managementRoot(i)), "volumes")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		in.VolumeDirs[managementNodeName(i)] = dir
	}
	objs, err := management.Addons(in)
	if err != nil {
		return fmt.Errorf("management nodes' storage: %w (the release needs local-path-provisioner and busybox; rebuild it with make)", err)
	}
	for _, o := range objs {
		if err := apply.Object(ctx, c, o, fieldOwner); err != nil {
			return err
		}
	}
	// The management plane's own StorageClass has no provisioner for pods
	// on nodes: it stops being the default.
	sc := &storagev1.StorageClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: hub.StorageClass}, sc); err == nil && sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
		patch := []byte(`{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"false"}}}`)
		if err := c.Patch(ctx, sc, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.out, "  %s\n", management.Describe(in))
	return nil
}

// networkPolicyAccount is the service account with which management nodes
// read what they need to enforce NetworkPolicies.
const networkPolicyAccount = "hcp-network-policy"

// networkPolicyKubeconfig is a kubeconfig of the network policy service
// account, whose token (a service account token Secret, filled in by the
// controller manager) may read pods, namespaces and NetworkPolicies.
func (p *Plane) networkPolicyKubeconfig(ctx context.Context, c client.Client) ([]byte, error) {
	ns := metav1.NamespaceSystem
	objs := []client.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: networkPolicyAccount}},
		&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "hcp:network-policy"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
			}},
		&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "hcp:network-policy"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "hcp:network-policy"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: networkPolicyAccount}}},
		&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: networkPolicyAccount,
				Annotations: map[string]string{corev1.ServiceAccountNameKey: networkPolicyAccount}},
			Type: corev1.SecretTypeServiceAccountToken},
	}
	for _, o := range objs {
		if err := apply.Object(ctx, c, o, fieldOwner); err != nil {
			return nil, err
		}
	}
	var token []byte
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := probe.Until(wait, 100*time.Millisecond, "the network policy service account's token", func(ctx context.Context) error {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: networkPolicyAccount}, s); err != nil {
			return err
		}
		if token = s.Data[corev1.ServiceAccountTokenKey]; len(token) == 0 {
			return fmt.Errorf("the controller manager has not filled in Secret %s/%s yet", ns, networkPolicyAccount)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return kubeconfig.Config{Server: p.hub.NodeServer(), CA: p.hub.CA(), Token: string(token), Context: networkPolicyAccount}.Bytes()
}

// managementToken is the management nodes' bootstrap token, kept in the data
// directory and (re)applied as a bootstrap token Secret.
func (p *Plane) managementToken(ctx context.Context, c client.Client) (string, error) {
	file := filepath.Join(p.opts.DataDir, "management", "bootstrap-token")
	b, err := os.ReadFile(file)
	token := strings.TrimSpace(string(b))
	id, secret, ok := strings.Cut(token, ".")
	if err != nil || !ok || len(id) != 6 || len(secret) != 16 {
		id, secret = randomToken(6), randomToken(16)
		token = id + "." + secret
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true",
			"auth-extra-groups": managementBootstrapGroup, "description": "hcp up: management nodes join with it"}}
	return token, apply.Object(ctx, c, s, fieldOwner)
}

// randomToken is n characters of [a-z0-9], as bootstrap tokens are made of.
func randomToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// waitManagementNodes waits until the n management nodes are Ready, marks
// them infra nodes, and says so.
func (p *Plane) waitManagementNodes(ctx context.Context, c client.Client, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ready := 0
		var waiting []string
		for i := range n {
			name := managementNodeName(i)
			node := &corev1.Node{}
			err := c.Get(ctx, client.ObjectKey{Name: name}, node)
			switch {
			case apierrors.IsNotFound(err):
				waiting = append(waiting, name+" (not registered)")
				continue
			case err != nil:
				return err
			}
			if _, ok := node.Labels[InfraRoleLabel]; !ok {
				patch := []byte(`{"metadata":{"labels":{"` + InfraRoleLabel + `":""}}}`)
				if err := c.Patch(ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil {
					return fmt.Errorf("labelling %s: %w", name, err)
				}
			}
			if nodeReady(node) {
				ready++
			} else {
				waiting = append(waiting, name+" (not Ready)")
			}
		}
		if ready == n {
			zones := make([]string, n)
			for i := range n {
				zones[i] = managementNodeName(i) + " " + managementZone(i)
			}
			fmt.Fprintf(p.out, "  %d management nodes are Ready (%s), labelled %s and %s=true, tainted %s=true:NoSchedule\n",
				n, strings.Join(zones, ", "), InfraRoleLabel, hyperv1.ControlPlaneLabel, hyperv1.ControlPlaneLabel)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("management nodes not Ready after 5 minutes: %s (logs: %s)", strings.Join(waiting, ", "),
				filepath.Join(p.opts.DataDir, "management", "<node>", "hcp-agent.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stopManagementNodes ends the management nodes' containers (their network
// goes with the lab network).
func (p *Plane) stopManagementNodes() {
	for i := range p.opts.ManagementNodes {
		if err := agent.StopNode(p.managementRoot(i), managementNodeName(i)); err != nil {
			p.log.Error(err, "stopping a management node", "node", managementNodeName(i))
		}
	}
}
