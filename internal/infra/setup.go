package infra

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/pki"
)

// Secret names in the operator's namespace.
const (
	TLSSecret      = "infra-service-tls"
	TokenKeySecret = "infra-service-token-key"
)

// Credentials are the service's TLS certificate, its CA and the token key.
type Credentials struct {
	CA          []byte
	Certificate tls.Certificate
	TokenKey    []byte
}

// CheckURL checks the service's address as hosts reach it: https://host:port.
func CheckURL(serviceURL string) error {
	u, err := url.Parse(serviceURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q must be https://host:port, the service's address as hosts reach it", serviceURL)
	}
	return nil
}

// EnsureCredentials loads the service's credentials from Secrets in namespace,
// making them when missing; the certificate is remade when it does not cover
// the host of serviceURL.
func EnsureCredentials(ctx context.Context, c client.Client, namespace, serviceURL string) (*Credentials, error) {
	if err := CheckURL(serviceURL); err != nil {
		return nil, fmt.Errorf("infrastructure service URL: %w", err)
	}
	u, err := url.Parse(serviceURL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()

	key := &corev1.Secret{}
	err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: TokenKeySecret}, key)
	if apierrors.IsNotFound(err) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		key = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: TokenKeySecret}, Data: map[string][]byte{"key": b}}
		if err := c.Create(ctx, key); err != nil {
			return nil, fmt.Errorf("creating secret %s/%s: %w", namespace, TokenKeySecret, err)
		}
	} else if err != nil {
		return nil, err
	}

	s := &corev1.Secret{}
	err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: TLSSecret}, s)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	exists := err == nil
	ca, _ := pki.Parse(s.Data["ca.crt"], s.Data["ca.key"])
	leaf, _ := pki.Parse(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	covers := leaf != nil && (slices.Contains(leaf.Cert.DNSNames, host) || slices.ContainsFunc(leaf.Cert.IPAddresses, func(ip net.IP) bool { return ip.String() == host }))
	if ca == nil || !covers {
		if ca == nil {
			if ca, err = pki.NewCA("hcp-infrastructure-service-ca"); err != nil {
				return nil, err
			}
		}
		spec := pki.CertSpec{CommonName: "hcp-infrastructure-service", Usage: pki.ServerAuth,
			DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
		if ip := net.ParseIP(host); ip != nil {
			spec.IPs = append(spec.IPs, ip)
		} else {
			spec.DNSNames = append(spec.DNSNames, host)
		}
		if leaf, err = ca.Issue(spec); err != nil {
			return nil, err
		}
		s.Namespace, s.Name = namespace, TLSSecret
		s.Data = map[string][]byte{"ca.crt": ca.CertPEM, "ca.key": ca.KeyPEM, corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM}
		if exists {
			err = c.Update(ctx, s)
		} else {
			err = c.Create(ctx, s)
		}
		if err != nil {
			return nil, fmt.Errorf("saving secret %s/%s: %w", namespace, TLSSecret, err)
		}
	}
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &Credentials{CA: ca.CertPEM, Certificate: cert, TokenKey: key.Data["key"]}, nil
}
