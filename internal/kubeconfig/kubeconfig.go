// Package kubeconfig writes kubeconfig files for client certificates.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config describes a kubeconfig with one cluster, user and context.
type Config struct {
	// Server is the API server URL, e.g. https://127.0.0.1:6443.
	Server string
	// CA is the PEM CA bundle that verifies the server.
	CA []byte
	// ClientCert and ClientKey are the PEM client certificate and key.
	ClientCert, ClientKey []byte
	// Token is a bearer token, used when no client certificate is given.
	Token string
	// Context names the cluster, user and context.
	Context string
}

// Bytes renders c as a kubeconfig file.
func (c Config) Bytes() ([]byte, error) {
	name := c.Context
	if name == "" {
		name = "default"
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CA}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.ClientCert, ClientKeyData: c.ClientKey, Token: c.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding kubeconfig %q: %w", name, err)
	}
	return b, nil
}

// REST returns a client configuration for c.
func (c Config) REST() *rest.Config {
	return &rest.Config{
		Host:        c.Server,
		BearerToken: c.Token,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.CA,
			CertData: c.ClientCert,
			KeyData:  c.ClientKey,
		},
	}
}
