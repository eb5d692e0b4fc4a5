package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/operator"
)

// fieldOwner is the server-side apply field manager of the CLI.
const fieldOwner = "hcp-cli"

// management is a connection to the management cluster.
type management struct {
	client     client.Client
	config     *rest.Config
	kubeconfig string // the file used, or a description
}

// connect reaches the management cluster named by --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, and checks that it answers.
func connect(ctx context.Context, kubeconfigFlag string) (*management, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	source := "$KUBECONFIG or ~/.kube/config"
	if kubeconfigFlag != "" {
		rules.ExplicitPath = kubeconfigFlag
		source = kubeconfigFlag
	} else if env := os.Getenv("KUBECONFIG"); env != "" {
		source = env
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("management cluster kubeconfig (%s): %w; pass --kubeconfig, set KUBECONFIG, or start one with hcp up", source, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = 15 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return nil, fmt.Errorf("cannot reach the management cluster at %s (kubeconfig %s): %v; is it running (hcp up)?", cfg.Host, source, err)
	}
	cfg.Timeout = 0
	scheme, err := operator.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &management{client: c, config: cfg, kubeconfig: source}, nil
}
