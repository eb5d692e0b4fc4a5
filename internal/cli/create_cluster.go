package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

func defaultReleaseImage() string {
	if r, err := (release.Store{Dir: release.DefaultDir()}).Default(); err == nil {
		return r.Image
	}
	return ""
}

func newCreateClusterAgentCommand(kubeconfig *string) *cobra.Command {
	o := &ClusterOptions{
		Spec: clusterspec.Spec{
			Namespace:                      clusterspec.DefaultNamespace,
			ControlPlaneAvailabilityPolicy: string(hosted.DefaultControlPlanePolicy),
			InfraAvailabilityPolicy:        string(hyperv1.SingleReplica),
			ReleaseImage:                   defaultReleaseImage(),
			ServiceCIDR:                    hosted.DefaultServiceCIDR,
			ClusterCIDR:                    hosted.DefaultClusterCIDR,
		},
		Timeout: 10 * time.Minute,
	}
	if home, err := os.UserHomeDir(); err == nil {
		o.SSHKeyFile = filepath.Join(home, ".ssh", "id_rsa.pub")
	}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Create a hosted cluster on the Agent platform",
		Example: `  hcp create cluster agent --name=example --pull-secret=pull-secret.json \
    --agent-namespace=clusters-example --base-domain=krnl.es \
    --api-server-address=api.example.krnl.es --etcd-storage-class=local \
    --ssh-key ~/.ssh/id_rsa.pub --namespace clusters \
    --control-plane-availability-policy HighlyAvailable \
    --release-image=hcp.dev/release:1.37.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.sshKeyDefaulted = !cmd.Flags().Changed("ssh-key")
			return createCluster(cmd.Context(), o, *kubeconfig, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "name of the hosted cluster (unique across the management cluster; not \"clusters\")")
	f.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the HostedCluster")
	f.StringVar(&o.PullSecretFile, "pull-secret", "", "file with the pull secret (JSON with an \"auths\" object)")
	f.StringVar(&o.AgentNamespace, "agent-namespace", "", "namespace where the cluster's Agents are")
	f.StringVar(&o.BaseDomain, "base-domain", "", "base domain: the API is api.<name>.<base-domain>")
	f.StringVar(&o.APIServerAddress, "api-server-address", "", "address nodes and clients use for the API server (default: a management node's address, or the local management plane's)")
	f.StringVar(&o.EtcdStorageClass, "etcd-storage-class", "", "StorageClass of etcd's volumes (default: the default StorageClass)")
	f.StringVar(&o.InfraID, "infra-id", "", "the cluster's infrastructure ID (default: generated; with --restore-from, the backed-up cluster's)")
	f.StringVar(&o.RestoreFrom, "restore-from", "", "a backup archive the cluster starts from (hcp create etcd-backup): file:///<path> on the management plane or an http(s) URL; needs --infra-id")
	f.StringVar(&o.EtcdStorageSize, "etcd-storage-size", "", "size of each etcd volume (default 8Gi)")
	f.StringVar(&o.SSHKeyFile, "ssh-key", o.SSHKeyFile, "file with the public ssh key for user core on the nodes")
	f.StringVar(&o.ControlPlaneAvailabilityPolicy, "control-plane-availability-policy", o.ControlPlaneAvailabilityPolicy, "SingleReplica or HighlyAvailable")
	f.StringVar(&o.InfraAvailabilityPolicy, "infra-availability-policy", o.InfraAvailabilityPolicy, "SingleReplica or HighlyAvailable: components on the cluster's nodes")
	f.StringVar(&o.ReleaseImage, "release-image", o.ReleaseImage, "release image of the cluster (hcp version lists them)")
	f.StringVar(&o.ImageContentSourcesFile, "image-content-sources", "", "YAML file listing image mirrors: - {source: ..., mirrors: [...]}")
	f.StringArrayVar(&o.Tolerations, "toleration", nil, "toleration for control plane pods: key=...,operator=...,effect=...[,value=...][,tolerationSeconds=...] (repeatable)")
	f.Int32Var(&o.NodePoolReplicas, "node-pool-replicas", 0, "nodes in the cluster's NodePool (negative: no NodePool)")
	f.StringVar(&o.AgentLabelSelector, "agentLabelSelector", "", "label selector of the Agents the NodePool may use")
	f.StringToStringVar(&o.NodeSelector, "node-selector", nil, "node selector for control plane pods, e.g. node-role.kubernetes.io/infra=")
	f.StringVar(&o.ServiceCIDR, "service-cidr", o.ServiceCIDR, "service network of the hosted cluster")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "pod network of the hosted cluster")
	f.StringToStringVar(&o.Labels, "labels", nil, "labels for the HostedCluster")
	f.StringToStringVar(&o.Annotations, "annotations", nil, "annotations for the HostedCluster")
	f.BoolVar(&o.Render, "render", false, "print the objects as YAML instead of creating them")
	f.BoolVar(&o.RenderSensitive, "render-sensitive", false, "with --render, include the Secrets")
	f.BoolVar(&o.Wait, "wait", false, "wait until the cluster is Available, showing progress")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long --wait waits")
	return cmd
}

// createCluster validates everything, then creates the cluster's objects or
// renders them. Nothing is created unless everything validated; if creating
// fails part way, what this run created is removed again.
func createCluster(ctx context.Context, o *ClusterOptions, kubeconfig string, out io.Writer) error {
	v, err := o.validate()
	if err != nil {
		return err
	}
	var m *management
	if !o.Render || o.APIServerAddress == "" {
		if m, err = connect(ctx, kubeconfig); err != nil {
			if o.Render {
				return fmt.Errorf("%w (or pass --api-server-address to render without a management cluster)", err)
			}
			return err
		}
	}
	if v.spec.APIServerAddress == "" {
		if v.spec.APIServerAddress, err = clusterspec.DefaultAPIServerAddress(ctx, m.client, m.config.Host); err != nil {
			return err
		}
	}
	if o.Render {
		var render []runtime.Object
		for _, obj := range clusterspec.Objects(v.spec, v.inputs) {
			if _, secret := obj.(*corev1.Secret); secret && !o.RenderSensitive {
				continue
			}
			render = append(render, obj)
		}
		b, err := apply.YAML(render...)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	if w := loopbackWarning(ctx, m.client, v.spec); w != "" {
		fmt.Fprintln(out, "Warning: "+w)
	}
	if o.NodePoolReplicas < 0 {
		fmt.Fprintf(out, "--node-pool-replicas %d: no NodePool is created (add one later with hcp create nodepool agent)\n", o.NodePoolReplicas)
	}
	objs, err := clusterspec.Create(ctx, m.client, v.spec, v.inputs, fieldOwner)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		fmt.Fprintf(out, "%s %s/%s applied\n", strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind), obj.GetNamespace(), obj.GetName())
	}
	if !o.Wait {
		fmt.Fprintf(out, "Watch it with: kubectl -n %s get hostedcluster %s -w\n", o.Namespace, o.Name)
		return nil
	}
	start := time.Now()
	if err := waitAvailable(ctx, m.client, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, o.Timeout, out); err != nil {
		return err
	}
	if o.NodePoolReplicas > 0 {
		if err := waitNodePool(ctx, m.client, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, o.Timeout-time.Since(start), out); err != nil {
			return err
		}
	}
	if !o.quietHints {
		fmt.Fprintf(out, "Get its kubeconfig with: hcp create kubeconfig --namespace %s --name %s > kubeconfig-%s\n", o.Namespace, o.Name, o.Name)
	}
	return nil
}

// waitAvailable waits for a HostedCluster to be Available, printing each change
// of what it is waiting for.
func waitAvailable(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		hc := &hyperv1.HostedCluster{}
		err := c.Get(ctx, key, hc)
		state := ""
		switch {
		case err != nil:
			state = "reading the HostedCluster: " + err.Error()
		default:
			if meta.IsStatusConditionTrue(hc.Status.Conditions, hyperv1.ConditionAvailable) {
				fmt.Fprintf(out, "[%5.1fs] HostedCluster %s is Available%s\n", time.Since(start).Seconds(), key, endpointOf(hc))
				return nil
			}
			for _, t := range []string{hyperv1.ConditionValidConfiguration, hyperv1.ConditionValidReleaseImage, hyperv1.ConditionSupportedHostedCluster} {
				if c := meta.FindStatusCondition(hc.Status.Conditions, t); c != nil && c.Status == metav1.ConditionFalse {
					return fmt.Errorf("HostedCluster %s cannot become Available: %s=False: %s", key, t, c.Message)
				}
			}
			state = progress(hc)
		}
		if state != last {
			fmt.Fprintf(out, "[%5.1fs] waiting: %s\n", time.Since(start).Seconds(), state)
			last = state
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("stopped waiting for HostedCluster %s after %s; last state: %s", key, time.Since(start).Round(time.Second), last)
			}
			return fmt.Errorf("HostedCluster %s was not Available after %s; last state: %s (inspect it with kubectl -n %s get hostedcluster %s -o yaml)", key, timeout, last, key.Namespace, key.Name)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitNodePool waits for a NodePool to be Ready, printing each change of its
// Ready condition (machines binding agents, hosts installing, nodes joining).
func waitNodePool(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	defer cancel()
	last := ""
	for {
		np := &hyperv1.NodePool{}
		state := "reading the NodePool"
		if err := c.Get(ctx, key, np); err != nil {
			state += ": " + err.Error()
		} else if r := meta.FindStatusCondition(np.Status.Conditions, "Ready"); r != nil {
			if r.Status == metav1.ConditionTrue && r.ObservedGeneration == np.Generation {
				fmt.Fprintf(out, "[%5.1fs] NodePool %s is Ready: %s\n", time.Since(start).Seconds(), key, r.Message)
				return nil
			}
			state = r.Reason + ": " + r.Message
		}
		if state != last {
			fmt.Fprintf(out, "[%5.1fs] waiting for nodes: %s\n", time.Since(start).Seconds(), state)
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NodePool %s was not Ready in time; last state: %s (inspect: kubectl -n %s get nodepool %s -o yaml; kubectl get agents -A)", key, last, key.Namespace, key.Name)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// loopbackWarning says when the API server address is a loopback address
// that the cluster's hosts cannot reach: hosts on other machines or in their
// own network namespaces (lab hosts) would try to join through their own
// loopback and wait forever.
func loopbackWarning(ctx context.Context, c client.Client, s *clusterspec.Spec) string {
	addr := s.APIServerAddress
	if ip := net.ParseIP(addr); (ip == nil || !ip.IsLoopback()) && addr != "localhost" {
		return ""
	}
	local := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				local[ipn.IP.String()] = true
			}
		}
	}
	agents := &agentv1.AgentList{}
	_ = c.List(ctx, agents, client.InNamespace(s.AgentNamespace))
	var away []string
	for _, a := range agents.Items {
		for _, nic := range a.Status.Inventory.Interfaces {
			for _, cidr := range nic.IPV4Addresses {
				ip, _, _ := strings.Cut(cidr, "/")
				if !local[ip] && !slices.Contains(away, a.Name) {
					away = append(away, a.Name)
				}
			}
		}
	}
	switch {
	case len(agents.Items) > 0 && len(away) == 0:
		return ""
	case len(away) > 0:
		return fmt.Sprintf("--api-server-address %s is a loopback address, which the Agents of %s that are not on this machine (%s) cannot reach; their nodes would never join. Use an address they reach (with hcp up's lab hosts: the lab network's gateway, the infrastructure service's address).",
			addr, s.AgentNamespace, strings.Join(away, ", "))
	default:
		return fmt.Sprintf("--api-server-address %s is a loopback address: only hosts that share this machine's network can join the cluster.", addr)
	}
}

// endpointOf says where a HostedCluster's API server is published, with
// the reason when it is not on the port users expect.
func endpointOf(hc *hyperv1.HostedCluster) string {
	ep := hc.Status.ControlPlaneEndpoint
	if ep.Port == 0 {
		return ""
	}
	s := " at https://" + net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port)))
	if c := meta.FindStatusCondition(hc.Status.Conditions, hyperv1.ConditionInfrastructureReady); c != nil {
		if _, note, ok := strings.Cut(c.Message, " ("); ok {
			s += " (" + note
		}
	}
	return s
}

// progress summarises what a HostedCluster is waiting for.
func progress(hc *hyperv1.HostedCluster) string {
	var parts []string
	for _, t := range []string{hyperv1.ConditionEtcdAvailable, hyperv1.ConditionKubeAPIServerAvailable, hyperv1.ConditionAvailable} {
		if c := meta.FindStatusCondition(hc.Status.Conditions, t); c != nil {
			parts = append(parts, fmt.Sprintf("%s=%s", t, c.Status))
		}
	}
	if len(parts) == 0 {
		return "the operator has not reported on the cluster yet"
	}
	if c := meta.FindStatusCondition(hc.Status.Conditions, hyperv1.ConditionAvailable); c != nil && c.Message != "" {
		parts = append(parts, "("+c.Message+")")
	}
	return strings.Join(parts, " ")
}
