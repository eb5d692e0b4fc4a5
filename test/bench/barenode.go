package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hcp-dev/hcp/internal/ignition"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/kubeconfig"
	"github.com/hcp-dev/hcp/internal/labnet"
	"github.com/hcp-dev/hcp/internal/pki"
	"github.com/hcp-dev/hcp/internal/probe"
	"github.com/hcp-dev/hcp/internal/release"
)

// bareCluster is the baseline of pod start: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler started by hand with few
// flags, and one node with the same kubelet, containerd, configuration
// (the worker Ignition) and images as hcp's nodes, in a lab host.
type bareCluster struct {
	dir   string
	net   *labnet.Net
	procs []*exec.Cmd
	node  *exec.Cmd
	cs    kubernetes.Interface
	reg   *http.Server
}

const bareNodeName = "bare-node"

func startBareCluster(bin string, rel *release.Release, share int) (*bareCluster, error) {
	dir, err := os.MkdirTemp("", "bench-bare-node-")
	if err != nil {
		return nil, err
	}
	b := &bareCluster{dir: dir, net: labnet.New(dir)}
	if err := b.start(bin, rel, share); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *bareCluster) start(bin string, rel *release.Release, share int) error {
	if err := b.net.Up(); err != nil {
		return err
	}
	if err := b.net.Host(0); err != nil {
		return err
	}
	gw := b.net.Gateway()
	ca, err := pki.NewCA("bench-bare-ca")
	if err != nil {
		return err
	}
	serving, err := ca.Issue(pki.CertSpec{CommonName: "kube-apiserver", IPs: []net.IP{net.ParseIP(gw), net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames: []string{"localhost", "kubernetes.default.svc"}, Usage: pki.ServerAuth | pki.ClientAuth})
	if err != nil {
		return err
	}
	admin, err := ca.Issue(pki.CertSpec{CommonName: "admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth})
	if err != nil {
		return err
	}
	saKey, saPub, err := pki.NewSigningKey()
	if err != nil {
		return err
	}
	p := func(n string) string { return filepath.Join(b.dir, n) }
	apiPort := freePort()
	server := "https://" + net.JoinHostPort(gw, strconv.Itoa(apiPort))
	adminKC, err := kubeconfig.Config{Server: server, CA: ca.CertPEM, ClientCert: admin.CertPEM, ClientKey: admin.KeyPEM}.Bytes()
	if err != nil {
		return err
	}
	files := map[string][]byte{"ca.crt": ca.CertPEM, "ca.key": ca.KeyPEM, "tls.crt": serving.CertPEM, "tls.key": serving.KeyPEM,
		"sa.key": saKey, "sa.pub": saPub, "admin.kubeconfig": adminKC}
	for name, c := range files {
		if err := os.WriteFile(p(name), c, 0o600); err != nil {
			return err
		}
	}
	etcdURL, peerURL := "https://127.0.0.1:"+strconv.Itoa(freePort()), "https://127.0.0.1:"+strconv.Itoa(freePort())
	spawnIn := func(name string, args ...string) error {
		d := p(name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		cmd, err := spawn(d, rel.Binary(name), args...)
		if err != nil {
			return err
		}
		b.procs = append(b.procs, cmd)
		return nil
	}
	if err := spawnIn(release.Etcd, "--data-dir="+p("etcd/data"), "--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=default="+peerURL,
		"--cert-file="+p("tls.crt"), "--key-file="+p("tls.key"), "--trusted-ca-file="+p("ca.crt"), "--client-cert-auth",
		"--peer-cert-file="+p("tls.crt"), "--peer-key-file="+p("tls.key"), "--peer-trusted-ca-file="+p("ca.crt")); err != nil {
		return err
	}
	if err := spawnIn(release.KubeAPIServer, "--bind-address="+gw, "--advertise-address="+gw, "--secure-port="+strconv.Itoa(apiPort),
		"--etcd-servers="+etcdURL, "--etcd-cafile="+p("ca.crt"), "--etcd-certfile="+p("tls.crt"), "--etcd-keyfile="+p("tls.key"),
		"--tls-cert-file="+p("tls.crt"), "--tls-private-key-file="+p("tls.key"), "--client-ca-file="+p("ca.crt"),
		"--kubelet-client-certificate="+p("tls.crt"), "--kubelet-client-key="+p("tls.key"),
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p("sa.pub"),
		"--service-account-signing-key-file="+p("sa.key"), "--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC", "--enable-bootstrap-token-auth", "--cert-dir="+p("kube-apiserver/certs")); err != nil {
		return err
	}
	roots, _ := pki.CertPool(ca.CertPEM)
	cert, _ := tls.X509KeyPair(admin.CertPEM, admin.KeyPEM)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := probe.Until(ctx, 50*time.Millisecond, "kube-apiserver", func(ctx context.Context) error {
		return probe.New(roots, &cert).Check(ctx, server+"/readyz")
	}); err != nil {
		return err
	}
	if err := spawnIn(release.KubeControllerManager, "--kubeconfig="+p("admin.kubeconfig"), "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(freePort()), "--use-service-account-credentials",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--allocate-node-cidrs", "--cluster-cidr=10.244.0.0/16", "--service-cluster-ip-range=10.0.0.0/24"); err != nil {
		return err
	}
	if err := spawnIn(release.KubeScheduler, "--kubeconfig="+p("admin.kubeconfig"), "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(freePort())); err != nil {
		return err
	}
	rc := kubeconfig.Config{Server: server, CA: ca.CertPEM, ClientCert: admin.CertPEM, ClientKey: admin.KeyPEM}.REST()
	rc.QPS, rc.Burst = 50, 100
	if b.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	// kube-proxy (and the node's agent, listing the other nodes' pod ranges)
	// run with the node's credentials, as on hcp's nodes.
	if err := probe.Until(ctx, 100*time.Millisecond, "the node-proxier binding", func(ctx context.Context) error {
		_, err := b.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bench:node-proxier"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}

	// The node's images: hcp's registry code serving the release's images,
	// as the infrastructure service does.
	reg := images.NewRegistry(p("registry"))
	go func() { _ = reg.Load(context.Background(), []*release.Release{rel}) }()
	regPort := freePort()
	b.reg = &http.Server{Addr: net.JoinHostPort(gw, strconv.Itoa(regPort)), Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.reg.ListenAndServeTLS(p("tls.crt"), p("tls.key")) }()

	// The node: the worker Ignition hcp's ignition server would hand it
	// (joining with the admin credentials instead of a bootstrap token),
	// installed and run by hcp-agent's node command in the lab host.
	cfgJSON, err := ignition.Worker{BootstrapKubeconfig: adminKC, CA: ca.CertPEM, ClusterDNS: "10.0.0.10", ClusterCIDR: "10.244.0.0/16",
		Registry: "https://" + b.reg.Addr, RegistryCA: ca.CertPEM, PauseImage: images.Reference("pause", rel.Name)}.Config()
	if err != nil {
		return err
	}
	if err := os.WriteFile(p("ignition.json"), cfgJSON, 0o600); err != nil {
		return err
	}
	agentPath, err := filepath.Abs(filepath.Join(bin, "hcp-agent"))
	if err != nil {
		return err
	}
	payload, err := filepath.Abs(rel.Dir)
	if err != nil {
		return err
	}
	argv := b.net.Exec(0, agentPath, "node", "--ignition", p("ignition.json"), "--root", p("node"), "--name", bareNodeName,
		"--ip", b.net.Address(0), "--payload-dir", payload, "--machine-share", strconv.Itoa(share))
	log, err := os.Create(p("node.log"))
	if err != nil {
		return err
	}
	b.node = exec.Command(argv[0], argv[1:]...)
	b.node.Stdout, b.node.Stderr = log, log
	b.node.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := b.node.Start(); err != nil {
		return err
	}
	bg := context.Background()
	return waitFor(3*time.Minute, "the bare cluster's node Ready and its default ServiceAccount (log: "+p("node.log")+")", func() (bool, error) {
		n, err := b.cs.CoreV1().Nodes().Get(bg, bareNodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		_, err = b.cs.CoreV1().ServiceAccounts("default").Get(bg, "default", metav1.GetOptions{})
		return ready && err == nil, nil
	})
}

// stop deletes the node (its agent then removes its containers, cgroups and
// data, as on a scale down), then stops everything.
func (b *bareCluster) stop() {
	if b.node != nil && b.cs != nil {
		ctx := context.Background()
		_ = b.cs.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
		_ = b.cs.CoreV1().Nodes().Delete(ctx, bareNodeName, metav1.DeleteOptions{})
		done := make(chan struct{})
		go func() { _ = b.node.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = b.node.Process.Signal(syscall.SIGTERM)
			<-done
		}
	}
	if b.reg != nil {
		_ = b.reg.Close()
	}
	for i := len(b.procs) - 1; i >= 0; i-- {
		stopProcess(b.procs[i])
	}
	b.net.Down(1)
	if os.Getenv("BENCH_KEEP") == "" {
		_ = os.RemoveAll(b.dir)
	}
}
