package hub

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hcp-dev/hcp/internal/pki"
)

// certs are the management plane's certificates, kept under <data-dir>/pki.
type certs struct {
	dir                 string
	ca                  *pki.KeyPair
	etcd                *pki.KeyPair
	apiserverEtcdClient *pki.KeyPair
	apiserver           *pki.KeyPair
	admin               *pki.KeyPair
	kcm                 *pki.KeyPair
	kcmServing          *pki.KeyPair
	scheduler           *pki.KeyPair
	schedulerServing    *pki.KeyPair
	kubeletClient       *pki.KeyPair
}

func (c *certs) path(name string) string { return filepath.Join(c.dir, name) }

// ensureCerts loads the certificates in dir, making the missing ones. A new CA
// means every certificate is made anew. The API server's certificate also
// names nodeIP when given (made anew when it does not).
func ensureCerts(dir string, nodeIP net.IP) (*certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &certs{dir: dir}
	ca, fresh, err := loadOrMake(dir, "ca", func() (*pki.KeyPair, error) { return pki.NewCA("hcp-management-ca") })
	if err != nil {
		return nil, err
	}
	c.ca = ca
	if fresh {
		for _, leaf := range []string{"etcd", "apiserver-etcd-client", "apiserver", "admin", "kube-controller-manager", "kube-controller-manager-serving",
			"kube-scheduler", "kube-scheduler-serving", "apiserver-kubelet-client"} {
			_ = os.Remove(filepath.Join(dir, leaf+".crt"))
			_ = os.Remove(filepath.Join(dir, leaf+".key"))
		}
	}
	local := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	apiIPs := append(local, net.ParseIP(serviceIP))
	if nodeIP != nil {
		apiIPs = append(apiIPs, nodeIP)
		if kp, err := pki.Parse(readFile(c.path("apiserver.crt")), readFile(c.path("apiserver.key"))); err == nil &&
			!slices.ContainsFunc(kp.Cert.IPAddresses, nodeIP.Equal) {
			_ = os.Remove(c.path("apiserver.crt"))
		}
	}
	specs := []struct {
		name string
		into **pki.KeyPair
		spec pki.CertSpec
	}{
		{"etcd", &c.etcd, pki.CertSpec{CommonName: "etcd", DNSNames: []string{"localhost"}, IPs: local, Usage: pki.ServerAuth | pki.ClientAuth}},
		{"apiserver-etcd-client", &c.apiserverEtcdClient, pki.CertSpec{CommonName: "kube-apiserver-etcd-client", Usage: pki.ClientAuth}},
		{"apiserver", &c.apiserver, pki.CertSpec{CommonName: "kube-apiserver",
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPs:      apiIPs, Usage: pki.ServerAuth}},
		{"admin", &c.admin, pki.CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth}},
		{"kube-controller-manager", &c.kcm, pki.CertSpec{CommonName: "system:kube-controller-manager", Usage: pki.ClientAuth}},
		{"kube-controller-manager-serving", &c.kcmServing, pki.CertSpec{CommonName: "kube-controller-manager", DNSNames: []string{"localhost"}, IPs: local, Usage: pki.ServerAuth}},
		{"kube-scheduler", &c.scheduler, pki.CertSpec{CommonName: "system:kube-scheduler", Usage: pki.ClientAuth}},
		{"kube-scheduler-serving", &c.schedulerServing, pki.CertSpec{CommonName: "kube-scheduler", DNSNames: []string{"localhost"}, IPs: local, Usage: pki.ServerAuth}},
		// The API server's client certificate to kubelets (logs, exec).
		{"apiserver-kubelet-client", &c.kubeletClient, pki.CertSpec{CommonName: KubeletClientUser, Organization: []string{"system:masters"}, Usage: pki.ClientAuth}},
	}
	for _, s := range specs {
		kp, _, err := loadOrMake(dir, s.name, func() (*pki.KeyPair, error) { return ca.Issue(s.spec) })
		if err != nil {
			return nil, err
		}
		*s.into = kp
	}
	if _, err := os.Stat(c.path("sa.key")); errors.Is(err, os.ErrNotExist) {
		priv, pub, err := pki.NewSigningKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(c.path("sa.pub"), pub, 0o600); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(c.path("sa.key"), priv, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readFile is a file's content, nil when it cannot be read.
func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// loadOrMake returns the key pair <name>.crt/.key in dir, making it when it is
// missing, unreadable or expires within 30 days. fresh reports a new pair.
func loadOrMake(dir, name string, make func() (*pki.KeyPair, error)) (kp *pki.KeyPair, fresh bool, err error) {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	cb, cerr := os.ReadFile(crt)
	kb, kerr := os.ReadFile(key)
	if cerr == nil && kerr == nil {
		if kp, err := pki.Parse(cb, kb); err == nil && time.Until(kp.Cert.NotAfter) > 30*24*time.Hour {
			return kp, false, nil
		}
	}
	kp, err = make()
	if err != nil {
		return nil, false, fmt.Errorf("making %s certificate: %w", name, err)
	}
	if err := os.WriteFile(key, kp.KeyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(crt, kp.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}
