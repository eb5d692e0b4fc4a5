package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	"github.com/hcp-dev/hcp/internal/agentapi"
	"github.com/hcp-dev/hcp/internal/ignition"
)

// nodeCredentials returns a client config with the node's own certificate,
// requesting it with the bootstrap token when there is none yet.
func nodeCredentials(ctx context.Context, o NodeOptions) (*rest.Config, error) {
	kcPath := filepath.Join(o.Root, nodeKubeconfigPath)
	if cfg, err := clientcmd.BuildConfigFromFlags("", kcPath); err == nil && certValid(filepath.Join(o.Root, nodeCertPath), o.Name) {
		return cfg, nil
	}
	bootstrap, err := clientcmd.LoadFromFile(filepath.Join(o.Root, ignition.BootstrapKubeconfigPath))
	if err != nil {
		return nil, fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	bcfg, err := clientcmd.NewDefaultClientConfig(*bootstrap, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	bcs, err := kubernetes.NewForConfig(bcfg)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csrPEM, err := cert.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + o.Name, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		return nil, err
	}
	o.Log.Info("requesting a node client certificate", "node", o.Name)
	var name, uid string
	if err := backoff(ctx, 15*time.Second, func() error {
		n, u, err := csr.RequestCertificate(bcs, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil,
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, key)
		name, uid = n, string(u)
		return err
	}, func(err error, wait time.Duration) {
		o.Log.Info("creating the certificate signing request failed; retrying", "error", err.Error(), "after", wait)
		o.Progress(agentapi.StageRebooting, "Cannot join the cluster yet (retrying): "+joinError(err))
	}); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(wctx, bcs, name, types.UID(uid))
	if err != nil {
		return nil, fmt.Errorf("waiting for certificate signing request %s to be approved and signed: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := writeUnder(o.Root, nodeCertPath, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		return nil, err
	}
	cluster := bootstrap.Clusters[bootstrap.Contexts[bootstrap.CurrentContext].Cluster]
	kc := clientcmdapi.NewConfig()
	kc.Clusters["default"] = cluster
	kc.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(o.Root, nodeCertPath), ClientKey: filepath.Join(o.Root, nodeCertPath)}
	kc.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	kc.CurrentContext = "default"
	if err := os.MkdirAll(filepath.Dir(kcPath), 0o755); err != nil {
		return nil, err
	}
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		return nil, err
	}
	o.Log.Info("node client certificate issued", "csr", name)
	return clientcmd.BuildConfigFromFlags("", kcPath)
}

// joinError says briefly why a request to the cluster's API server failed,
// for the Agent's progress.
func joinError(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// certValid says whether the node's certificate exists, is for name and has
// more than a tenth of its life left.
func certValid(path, name string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	certs, err := cert.ParseCertsPEM(b)
	if err != nil || len(certs) == 0 {
		return false
	}
	c := certs[0]
	left := time.Until(c.NotAfter)
	return c.Subject.CommonName == "system:node:"+name && left > c.NotAfter.Sub(c.NotBefore)/10
}
