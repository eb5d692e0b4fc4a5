package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIssuedCertificatesServeAndAuthenticateTLS(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(CertSpec{CommonName: "server", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue(CertSpec{CommonName: "stranger", Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := CertPool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName+"/"+r.TLS.PeerCertificates[0].Subject.Organization[0])
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverTLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	get := func(kp *KeyPair) (string, error) {
		c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
		if err != nil {
			return "", err
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}}}}
		resp, err := hc.Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	got, err := get(client)
	if err != nil {
		t.Fatalf("client signed by the CA was refused: %v", err)
	}
	if got != "system:admin/system:masters" {
		t.Fatalf("server saw %q", got)
	}
	if _, err := get(stranger); err == nil {
		t.Fatal("client signed by another CA was accepted")
	}
}

func TestParseRoundTripAndErrors(t *testing.T) {
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := Parse(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Cert.IsCA || kp.Cert.Subject.CommonName != "ca" {
		t.Fatalf("parsed %+v", kp.Cert.Subject)
	}
	if _, err := Parse([]byte("junk"), ca.KeyPEM); err == nil {
		t.Fatal("junk certificate parsed")
	}
	if _, err := Parse(ca.CertPEM, []byte("junk")); err == nil {
		t.Fatal("junk key parsed")
	}
	if _, err := ca.Issue(CertSpec{CommonName: "x"}); err == nil {
		t.Fatal("certificate without usage issued")
	}
	if _, err := ca.Issue(CertSpec{Usage: ClientAuth}); err == nil {
		t.Fatal("certificate without common name issued")
	}
	leaf, err := ca.Issue(CertSpec{CommonName: "leaf", Usage: ServerAuth | ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := CertPool(ca.CertPEM)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify for client auth: %v", err)
	}
	priv, pub, err := NewSigningKey()
	if err != nil || len(priv) == 0 || len(pub) == 0 {
		t.Fatalf("signing key: %v", err)
	}
	if _, err := ParsePrivateKey(priv); err != nil {
		t.Fatal(err)
	}
}
