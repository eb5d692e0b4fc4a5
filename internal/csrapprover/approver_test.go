package csrapprover

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

func request(t *testing.T, cn string, org []string, dns []string, ips ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: org}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestDecide(t *testing.T) {
	hosts := func(node string) ([]string, bool) {
		if node == "lab-host-0" {
			return []string{"10.231.1.10"}, true
		}
		return nil, false
	}
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	csr := func(user string, groups []string, usages []certificatesv1.KeyUsage, req []byte) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: certificatesv1.KubeletServingSignerName, Username: user, Groups: groups, Usages: usages, Request: req}}
	}
	nodes := []string{"system:nodes", "system:authenticated"}
	good := request(t, "system:node:lab-host-0", []string{"system:nodes"}, []string{"lab-host-0"}, "10.231.1.10")
	approved := csr("system:node:lab-host-0", nodes, serving, good)
	approved.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
	client := csr("system:node:lab-host-0", nodes, serving, good)
	client.Spec.SignerName = certificatesv1.KubeAPIServerClientKubeletSignerName
	for _, tc := range []struct {
		name   string
		csr    *certificatesv1.CertificateSigningRequest
		ok     bool
		reason string
	}{
		{"the node's name and address", csr("system:node:lab-host-0", nodes, serving, good), true, "the node's name"},
		{"another signer is not ours", client, false, ""},
		{"decided already", approved, false, ""},
		{"not a node", csr("alice", []string{"system:authenticated"}, serving, good), false, "not by a node"},
		{"client usage", csr("system:node:lab-host-0", nodes, append(serving, certificatesv1.UsageClientAuth), good), false, "usage client auth"},
		{"another node's subject", csr("system:node:lab-host-0", nodes, serving,
			request(t, "system:node:lab-host-1", []string{"system:nodes"}, []string{"lab-host-0"}, "10.231.1.10")), false, "subject"},
		{"a foreign DNS name", csr("system:node:lab-host-0", nodes, serving,
			request(t, "system:node:lab-host-0", []string{"system:nodes"}, []string{"kubernetes.default"}, "10.231.1.10")), false, `DNS name "kubernetes.default"`},
		{"an address the host did not report", csr("system:node:lab-host-0", nodes, serving,
			request(t, "system:node:lab-host-0", []string{"system:nodes"}, []string{"lab-host-0"}, "10.231.1.11")), false, "address 10.231.1.11"},
		{"no Agent", csr("system:node:lab-host-9", nodes, serving,
			request(t, "system:node:lab-host-9", []string{"system:nodes"}, []string{"lab-host-9"})), false, "no bound Agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := Decide(tc.csr, hosts)
			if ok != tc.ok || !strings.Contains(reason, tc.reason) || (tc.reason == "" && reason != "") {
				t.Errorf("Decide = %t %q, want %t and a reason with %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}
