package controlplane

import (
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/kubeconfig"
	"github.com/hcp-dev/hcp/internal/pki"
)

// Secret names in the control plane namespace.
const (
	SecretRootCA           = "root-ca"
	SecretEtcdServer       = "etcd-server"
	SecretEtcdClient       = "etcd-client"
	SecretKASServing       = "kas-server"
	SecretKASKubeletClient = "kas-kubelet-client"
	SecretAdminClient      = "system-admin-client"
	SecretKCMClient        = "kube-controller-manager-client"
	SecretSchedulerClient  = "kube-scheduler-client"
	SecretKonnServer       = "konnectivity-server"
	SecretKonnCluster      = "konnectivity-cluster"
	SecretKonnClient       = "konnectivity-client"
	SecretServiceAccount   = "sa-signing-key"
	SecretFrontProxyCA     = "front-proxy-ca"
	SecretFrontProxyClient = "front-proxy-client"
	SecretKCMKubeconfig    = "kube-controller-manager-kubeconfig"
	SecretSchedKubeconfig  = "kube-scheduler-kubeconfig"
	SecretAdminKubeconfig  = "admin-kubeconfig"
	SecretLocalhostKubecfg = "localhost-kubeconfig"

	// KeyCA, KeyCAKey, KeyCert and KeyKey are the keys of certificate Secrets.
	KeyCA    = "ca.crt"
	KeyCAKey = "ca.key"
	KeyCert  = corev1.TLSCertKey
	KeyKey   = corev1.TLSPrivateKeyKey
	// KeyKubeconfig is the key of kubeconfig Secrets.
	KeyKubeconfig = "kubeconfig"
	// KeySAPrivate and KeySAPublic are the keys of the service account key Secret.
	KeySAPrivate = "service-account.key"
	KeySAPublic  = "service-account.pub"
)

// KubeletAPIClientUser is the user the API server is to kubelets.
const KubeletAPIClientUser = "system:kube-apiserver-kubelet-client"

// PKIInput says what the certificates must cover.
type PKIInput struct {
	Namespace string
	// Network gives the names the serving certificates cover.
	Network Network
	// APIServerNames are the extra names and addresses clients use for the API
	// server: api.<name>.<baseDomain>, the published address, the first service IP.
	APIServerNames []string
}

// PKI returns the certificate Secrets of a control plane. Certificates in
// existing (by Secret name) are kept while they are valid, signed by the current
// root CA and cover every name they must; the others are made anew.
func PKI(in PKIInput, existing map[string]*corev1.Secret) ([]*corev1.Secret, error) {
	ca, err := keep(existing[SecretRootCA], nil, nil)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Secret
	if ca == nil {
		if ca, err = pki.NewCA("hcp-root-ca." + in.Namespace); err != nil {
			return nil, err
		}
		out = append(out, secret(in.Namespace, SecretRootCA, map[string][]byte{KeyCA: ca.CertPEM, KeyCAKey: ca.KeyPEM}))
	} else {
		out = append(out, existing[SecretRootCA])
	}

	local := []string{"localhost", "127.0.0.1"}
	kasNames := append(append(append([]string{}, local...),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"), in.APIServerNames...)
	kasNames = append(kasNames, in.Network.SANs()...)
	specs := []struct {
		name string
		spec pki.CertSpec
		sans []string
	}{
		{SecretEtcdServer, pki.CertSpec{CommonName: "etcd-server", Usage: pki.ServerAuth | pki.ClientAuth}, append(append([]string{}, local...), in.Network.SANs()...)},
		{SecretEtcdClient, pki.CertSpec{CommonName: "etcd-client", Usage: pki.ClientAuth}, nil},
		{SecretKASServing, pki.CertSpec{CommonName: "kube-apiserver", Usage: pki.ServerAuth}, kasNames},
		// The API server's identity towards kubelets (logs, exec, port-forward);
		// the hosted cluster binds it to system:kubelet-api-admin.
		{SecretKASKubeletClient, pki.CertSpec{CommonName: KubeletAPIClientUser, Usage: pki.ClientAuth}, nil},
		{SecretAdminClient, pki.CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth}, nil},
		{SecretKCMClient, pki.CertSpec{CommonName: "system:kube-controller-manager", Usage: pki.ClientAuth | pki.ServerAuth}, append(append([]string{}, local...), in.Network.SANs()...)},
		{SecretSchedulerClient, pki.CertSpec{CommonName: "system:kube-scheduler", Usage: pki.ClientAuth | pki.ServerAuth}, append(append([]string{}, local...), in.Network.SANs()...)},
		{SecretKonnServer, pki.CertSpec{CommonName: "konnectivity-server", Usage: pki.ServerAuth}, append(append([]string{}, local...), in.Network.SANs()...)},
		{SecretKonnCluster, pki.CertSpec{CommonName: "konnectivity-server-cluster", Usage: pki.ServerAuth}, append(append(append([]string{}, local...), in.Network.SANs()...), in.APIServerNames...)},
		{SecretKonnClient, pki.CertSpec{CommonName: "system:konnectivity-client", Usage: pki.ClientAuth}, nil},
	}
	for _, s := range specs {
		spec := s.spec
		spec.DNSNames, spec.IPs = splitNames(s.sans)
		kp, err := keep(existing[s.name], ca, &spec)
		if err != nil {
			return nil, err
		}
		if kp == nil {
			if kp, err = ca.Issue(spec); err != nil {
				return nil, err
			}
		}
		out = append(out, secret(in.Namespace, s.name, map[string][]byte{KeyCA: ca.CertPEM, KeyCert: kp.CertPEM, KeyKey: kp.KeyPEM}))
	}

	// The front proxy has its own CA: a client certificate from it lets the
	// holder assert any user through request headers, so the root CA must not
	// be able to make one.
	fp, err := keep(existing[SecretFrontProxyCA], nil, nil)
	if err != nil {
		return nil, err
	}
	if fp == nil {
		if fp, err = pki.NewCA("hcp-front-proxy-ca." + in.Namespace); err != nil {
			return nil, err
		}
	}
	out = append(out, secret(in.Namespace, SecretFrontProxyCA, map[string][]byte{KeyCA: fp.CertPEM, KeyCAKey: fp.KeyPEM}))
	fpSpec := pki.CertSpec{CommonName: "front-proxy-client", Usage: pki.ClientAuth}
	fpClient, err := keep(existing[SecretFrontProxyClient], fp, &fpSpec)
	if err != nil {
		return nil, err
	}
	if fpClient == nil {
		if fpClient, err = fp.Issue(fpSpec); err != nil {
			return nil, err
		}
	}
	out = append(out, secret(in.Namespace, SecretFrontProxyClient, map[string][]byte{KeyCA: fp.CertPEM, KeyCert: fpClient.CertPEM, KeyKey: fpClient.KeyPEM}))

	if sa := existing[SecretServiceAccount]; sa != nil && len(sa.Data[KeySAPrivate]) > 0 && len(sa.Data[KeySAPublic]) > 0 {
		out = append(out, sa)
	} else {
		priv, pub, err := pki.NewSigningKey()
		if err != nil {
			return nil, err
		}
		out = append(out, secret(in.Namespace, SecretServiceAccount, map[string][]byte{KeySAPrivate: priv, KeySAPublic: pub}))
	}

	// The key Secrets are encrypted with when the spec names none.
	if k := existing[SecretEncryptionKey]; k != nil && hosted.CheckEncryptionKey(k.Data[KeyEncryptionKey]) == nil {
		out = append(out, k)
	} else {
		key, err := GenerateEncryptionKey()
		if err != nil {
			return nil, err
		}
		out = append(out, secret(in.Namespace, SecretEncryptionKey, map[string][]byte{KeyEncryptionKey: key.Secret}))
	}
	return out, nil
}

// keep parses an existing certificate Secret and returns it when it is still
// good: valid for 30 more days, signed by ca and covering spec's names. It
// returns nil when a new one must be made.
func keep(s *corev1.Secret, ca *pki.KeyPair, spec *pki.CertSpec) (*pki.KeyPair, error) {
	if s == nil {
		return nil, nil
	}
	certKey, keyKey := KeyCert, KeyKey
	if spec == nil {
		certKey, keyKey = KeyCA, KeyCAKey
	}
	kp, err := pki.Parse(s.Data[certKey], s.Data[keyKey])
	if err != nil || time.Until(kp.Cert.NotAfter) < 30*24*time.Hour {
		return nil, nil //nolint:nilerr // an unreadable certificate is replaced
	}
	if ca == nil {
		return kp, nil
	}
	if err := kp.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, nil //nolint:nilerr // signed by an old CA: replaced
	}
	for _, d := range spec.DNSNames {
		if !slices.Contains(kp.Cert.DNSNames, d) {
			return nil, nil
		}
	}
	for _, ip := range spec.IPs {
		if !slices.ContainsFunc(kp.Cert.IPAddresses, ip.Equal) {
			return nil, nil
		}
	}
	return kp, nil
}

func splitNames(names []string) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

func secret(namespace, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data:       data,
	}
}

// CA returns the root CA key pair from the control plane's Secrets.
func CA(secrets map[string]*corev1.Secret) (*pki.KeyPair, error) {
	s := secrets[SecretRootCA]
	if s == nil {
		return nil, fmt.Errorf("secret %s is missing", SecretRootCA)
	}
	return pki.Parse(s.Data[KeyCA], s.Data[KeyCAKey])
}

// Kubeconfigs returns the kubeconfig Secrets of the components and the operator:
// kube-controller-manager's and kube-scheduler's (their replicas pass --master
// for their own host), and localhost-kubeconfig, the admin kubeconfig that hcp
// itself uses: for the first replica's host, or operatorServer when the
// operator reaches the API server elsewhere (its published endpoint, from
// outside the management cluster's network).
func Kubeconfigs(namespace string, n Network, operatorServer string, secrets map[string]*corev1.Secret) ([]*corev1.Secret, error) {
	server := APIServerURL(n)
	if operatorServer == "" {
		operatorServer = server
	}
	var out []*corev1.Secret
	for _, k := range []struct{ name, client, context, server string }{
		{SecretKCMKubeconfig, SecretKCMClient, "kube-controller-manager", server},
		{SecretSchedKubeconfig, SecretSchedulerClient, "kube-scheduler", server},
		{SecretLocalhostKubecfg, SecretAdminClient, "admin", operatorServer},
	} {
		client := secrets[k.client]
		if client == nil {
			return nil, fmt.Errorf("secret %s is missing", k.client)
		}
		b, err := kubeconfig.Config{Server: k.server, CA: client.Data[KeyCA], ClientCert: client.Data[KeyCert], ClientKey: client.Data[KeyKey], Context: k.context}.Bytes()
		if err != nil {
			return nil, err
		}
		out = append(out, secret(namespace, k.name, map[string][]byte{KeyKubeconfig: b}))
	}
	return out, nil
}

// AdminKubeconfig is the admin kubeconfig for the published API server endpoint.
func AdminKubeconfig(server, context string, secrets map[string]*corev1.Secret) ([]byte, error) {
	client := secrets[SecretAdminClient]
	if client == nil {
		return nil, fmt.Errorf("secret %s is missing", SecretAdminClient)
	}
	return kubeconfig.Config{Server: server, CA: client.Data[KeyCA], ClientCert: client.Data[KeyCert], ClientKey: client.Data[KeyKey], Context: context}.Bytes()
}
