// Package guest gives controllers clients of the hosted clusters themselves,
// made from each control plane's localhost-kubeconfig and cached.
package guest

import (
	"crypto/sha256"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/hcp-dev/hcp/api/config/v1"
)

// Clients caches one client per hosted cluster (by control plane namespace),
// remade when the kubeconfig changes.
type Clients struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// Client is a hosted cluster's client, with marks for work done once per client.
type Client struct {
	client.Client
	key   [32]byte
	mu    sync.Mutex
	marks map[string]bool
}

// Marked says whether Mark(name) was called on this client.
func (c *Client) Marked(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marks[name]
}

// Mark records that name was done with this client.
func (c *Client) Mark(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.marks[name] = true
}

// Get returns the client of the hosted cluster whose admin kubeconfig is given.
func (g *Clients) Get(namespace string, kubeconfig []byte) (*Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := sha256.Sum256(kubeconfig)
	if c := g.clients[namespace]; c != nil && c.key == key {
		return c, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	// A hosted cluster that does not answer must not hold a controller's
	// worker for long.
	cfg.Timeout = 10 * time.Second
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{apiextensionsv1.AddToScheme, appsv1.AddToScheme, configv1.AddToScheme, discoveryv1.AddToScheme, corev1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	if g.clients == nil {
		g.clients = map[string]*Client{}
	}
	gc := &Client{Client: c, key: key, marks: map[string]bool{}}
	g.clients[namespace] = gc
	return gc, nil
}

// Forget drops the client of a control plane namespace.
func (g *Clients) Forget(namespace string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.clients, namespace)
}
