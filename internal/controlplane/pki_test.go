package controlplane

import (
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/hcp-dev/hcp/internal/pki"
)

func byName(secrets []*corev1.Secret) map[string]*corev1.Secret {
	m := map[string]*corev1.Secret{}
	for _, s := range secrets {
		m[s.Name] = s
	}
	return m
}

// sans is a network of which PKI asks only the names to cover.
type sans []string

func (s sans) SANs() []string                   { return s }
func (sans) Vars(string, int) map[string]string { return nil }
func (sans) EtcdPeer(int) string                { return "" }
func (sans) APIServerPort() int                 { return KubeAPIServerPort }
func (sans) Fits(int) error                     { return nil }
func (sans) ShutdownDelay(int) time.Duration    { return 0 }
func (sans) EtcdFirst() bool                    { return false }

func TestPKICoversNamesAndIsKeptAcrossRuns(t *testing.T) {
	in := PKIInput{Namespace: "clusters-example", Network: sans{"127.1.0.1", "127.1.0.2", "127.1.0.3"},
		APIServerNames: []string{"api.example.krnl.es", "172.31.0.1"}}
	first, err := PKI(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := byName(first)
	kas, err := pki.Parse(s[SecretKASServing].Data[KeyCert], s[SecretKASServing].Data[KeyKey])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api.example.krnl.es", "localhost", "kubernetes.default.svc"} {
		if !slices.Contains(kas.Cert.DNSNames, name) {
			t.Errorf("kube-apiserver certificate lacks DNS name %s: %v", name, kas.Cert.DNSNames)
		}
	}
	for _, ip := range []string{"127.0.0.1", "127.1.0.2", "172.31.0.1"} {
		if !slices.ContainsFunc(kas.Cert.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("kube-apiserver certificate lacks IP %s: %v", ip, kas.Cert.IPAddresses)
		}
	}
	roots, _ := pki.CertPool(s[SecretRootCA].Data[KeyCA])
	admin, _ := pki.Parse(s[SecretAdminClient].Data[KeyCert], s[SecretAdminClient].Data[KeyKey])
	if _, err := admin.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify against the root CA: %v", err)
	}
	if admin.Cert.Subject.CommonName != "system:admin" || admin.Cert.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin subject %v", admin.Cert.Subject)
	}
	fp, _ := pki.Parse(s[SecretFrontProxyClient].Data[KeyCert], s[SecretFrontProxyClient].Data[KeyKey])
	if _, err := fp.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the front proxy client verifies against the root CA; it must have its own CA")
	}

	second, err := PKI(in, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range second {
		if string(sec.Data[KeyCert]) != string(s[sec.Name].Data[KeyCert]) || string(sec.Data[KeyCA]) != string(s[sec.Name].Data[KeyCA]) {
			t.Errorf("secret %s was remade although it was still good", sec.Name)
		}
	}

	// A new name for the API server means a new serving certificate, same CA.
	in.APIServerNames = append(in.APIServerNames, "api.other.krnl.es")
	third := byName(must(PKI(in, s)))
	if string(third[SecretKASServing].Data[KeyCert]) == string(s[SecretKASServing].Data[KeyCert]) {
		t.Error("serving certificate kept although it lacks a new name")
	}
	if string(third[SecretRootCA].Data[KeyCA]) != string(s[SecretRootCA].Data[KeyCA]) {
		t.Error("root CA changed")
	}
	if string(third[SecretAdminClient].Data[KeyCert]) != string(s[SecretAdminClient].Data[KeyCert]) {
		t.Error("admin certificate changed although it was still good")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
