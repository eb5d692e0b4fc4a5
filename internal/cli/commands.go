package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/release"
)

func newCreateCommand(kubeconfig *string) *cobra.Command {
	create := &cobra.Command{Use: "create", Short: "Create hosted clusters, node pools, InfraEnvs, kubeconfigs and etcd backups"}
	cluster := &cobra.Command{Use: "cluster", Short: "Create a hosted cluster"}
	cluster.AddCommand(newCreateClusterAgentCommand(kubeconfig))
	nodepool := &cobra.Command{Use: "nodepool", Short: "Create a node pool"}
	nodepool.AddCommand(newCreateNodePoolAgentCommand(kubeconfig))
	create.AddCommand(cluster, nodepool, newCreateKubeconfigCommand(kubeconfig), newCreateInfraEnvCommand(kubeconfig), newCreateEtcdBackupCommand(kubeconfig))
	return create
}

func newDestroyCommand(kubeconfig *string) *cobra.Command {
	destroy := &cobra.Command{Use: "destroy", Short: "Destroy hosted clusters"}
	cluster := &cobra.Command{Use: "cluster", Short: "Destroy a hosted cluster"}
	var name, namespace string
	var grace time.Duration
	var ignoreNotFound bool
	agent := &cobra.Command{
		Use:   "agent",
		Short: "Destroy a hosted cluster on the Agent platform and everything hcp create made for it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return flagError("name", "is required", "example")
			}
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			err = destroyCluster(cmd.Context(), m.client, namespace, name, grace, cmd.OutOrStdout())
			if errors.Is(err, errNoCluster) && ignoreNotFound {
				fmt.Fprintf(cmd.OutOrStdout(), "HostedCluster %s/%s does not exist; nothing to destroy\n", namespace, name)
				return nil
			}
			return err
		},
	}
	agent.Flags().StringVar(&name, "name", "", "name of the hosted cluster")
	agent.Flags().StringVar(&namespace, "namespace", "clusters", "namespace of the HostedCluster")
	agent.Flags().DurationVar(&grace, "cluster-grace-period", 10*time.Minute, "how long to wait for the cluster to go")
	agent.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "succeed when the cluster does not exist")
	cluster.AddCommand(agent)
	destroy.AddCommand(cluster)
	return destroy
}

// errNoCluster: there is no HostedCluster to destroy.
var errNoCluster = errors.New("no such HostedCluster")

// destroyCluster deletes a HostedCluster's NodePools and the HostedCluster,
// waits until they are gone, then removes the Secrets hcp create made. With
// neither a HostedCluster nor anything hcp create made for one, it returns an
// error wrapping errNoCluster.
func destroyCluster(ctx context.Context, c client.Client, namespace, name string, grace time.Duration, out io.Writer) error {
	start := time.Now()
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &hyperv1.HostedCluster{}); apierrors.IsNotFound(err) {
		if !leftovers(ctx, c, namespace, name) {
			return fmt.Errorf("%w: HostedCluster %s/%s does not exist (kubectl get hostedclusters -A lists them; --ignore-not-found makes this a success)", errNoCluster, namespace, name)
		}
	} else if err != nil {
		return fmt.Errorf("reading HostedCluster %s/%s: %w", namespace, name, err)
	}
	pools := &hyperv1.NodePoolList{}
	if err := c.List(ctx, pools, client.InNamespace(namespace)); err != nil {
		return err
	}
	var waitFor []client.Object
	for i := range pools.Items {
		if pools.Items[i].Spec.ClusterName == name {
			waitFor = append(waitFor, &pools.Items[i])
		}
	}
	hc := &hyperv1.HostedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	waitFor = append(waitFor, hc)
	for _, obj := range waitFor {
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", client.ObjectKeyFromObject(obj), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	last := ""
	for _, obj := range waitFor {
		kind := "NodePool"
		if obj == hc {
			kind = "HostedCluster"
		}
		for {
			err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			if apierrors.IsNotFound(err) {
				fmt.Fprintf(out, "[%5.1fs] %s %s/%s deleted\n", time.Since(start).Seconds(), kind, namespace, obj.GetName())
				break
			}
			state := fmt.Sprintf("%s %s/%s to be deleted", kind, namespace, obj.GetName())
			if err == nil && len(obj.GetFinalizers()) > 0 {
				state += fmt.Sprintf(" (finalizers: %s; the control plane in namespace %s-%s is being removed)", strings.Join(obj.GetFinalizers(), ", "), namespace, name)
			}
			if state != last {
				fmt.Fprintf(out, "[%5.1fs] waiting for %s\n", time.Since(start).Seconds(), state)
				last = state
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s %s/%s still exists after %s (--cluster-grace-period); look at kubectl -n %s get %s %s -o yaml", kind, namespace, obj.GetName(), grace, namespace, strings.ToLower(kind), obj.GetName())
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	for _, s := range []string{name + "-pull-secret", name + "-ssh-key"} {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s}, secret); err != nil {
			continue
		}
		if secret.Labels[ManagedByLabel] != managedBy {
			continue
		}
		if err := c.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		fmt.Fprintf(out, "[%5.1fs] secret %s/%s deleted\n", time.Since(start).Seconds(), namespace, s)
	}
	fmt.Fprintf(out, "Hosted cluster %s/%s destroyed.\n", namespace, name)
	return nil
}

// leftovers says whether NodePools of the cluster or Secrets that hcp create
// made for it remain, for destroy to finish what an interrupted one began.
func leftovers(ctx context.Context, c client.Client, namespace, name string) bool {
	pools := &hyperv1.NodePoolList{}
	if err := c.List(ctx, pools, client.InNamespace(namespace)); err == nil {
		for i := range pools.Items {
			if pools.Items[i].Spec.ClusterName == name {
				return true
			}
		}
	}
	for _, s := range []string{name + "-pull-secret", name + "-ssh-key"} {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s}, secret); err == nil && secret.Labels[ManagedByLabel] == managedBy {
			return true
		}
	}
	return false
}

func newCreateKubeconfigCommand(kubeconfig *string) *cobra.Command {
	var name, namespace string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the admin kubeconfig of a hosted cluster (of all, merged, without --name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			b, err := hostedKubeconfig(cmd.Context(), m.client, namespace, name)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the hosted cluster (default: all)")
	cmd.Flags().StringVar(&namespace, "namespace", "clusters", "namespace of the HostedClusters")
	return cmd
}

// hostedKubeconfig returns one cluster's admin kubeconfig, or all of the
// namespace's merged with contexts named <namespace>-<name>.
func hostedKubeconfig(ctx context.Context, c client.Client, namespace, name string) ([]byte, error) {
	var clusters []hyperv1.HostedCluster
	if name != "" {
		hc := &hyperv1.HostedCluster{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, hc); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, flagError("name", fmt.Sprintf("no HostedCluster %q in namespace %q", name, namespace), "example")
			}
			return nil, err
		}
		clusters = append(clusters, *hc)
	} else {
		list := &hyperv1.HostedClusterList{}
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, err
		}
		clusters = list.Items
		sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })
	}
	merged := clientcmdapi.NewConfig()
	for _, hc := range clusters {
		if hc.Status.KubeConfig == nil {
			if name != "" {
				return nil, fmt.Errorf("HostedCluster %s/%s has no kubeconfig yet; wait until it is Available (hcp create cluster agent --wait, or kubectl -n %s get hc %s -w)", namespace, hc.Name, namespace, hc.Name)
			}
			continue
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: hc.Status.KubeConfig.Name}, s); err != nil {
			return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, hc.Status.KubeConfig.Name, err)
		}
		if name != "" {
			return s.Data["kubeconfig"], nil
		}
		cfg, err := clientcmd.Load(s.Data["kubeconfig"])
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", namespace, s.Name, err)
		}
		ctxName := namespace + "-" + hc.Name
		for _, cur := range []string{cfg.CurrentContext} {
			kc := cfg.Contexts[cur]
			if kc == nil {
				continue
			}
			merged.Clusters[ctxName] = cfg.Clusters[kc.Cluster]
			merged.AuthInfos[ctxName] = cfg.AuthInfos[kc.AuthInfo]
			merged.Contexts[ctxName] = &clientcmdapi.Context{Cluster: ctxName, AuthInfo: ctxName}
			if merged.CurrentContext == "" {
				merged.CurrentContext = ctxName
			}
		}
	}
	if len(merged.Contexts) == 0 {
		return nil, fmt.Errorf("no hosted cluster in namespace %s has a kubeconfig yet", namespace)
	}
	return clientcmd.Write(*merged)
}

func newCreateNodePoolAgentCommand(kubeconfig *string) *cobra.Command {
	var clusterName, name, namespace, selector, releaseImage string
	var count int32
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Create a NodePool of Agents for a hosted cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clusterName == "" {
				return flagError("cluster-name", "is required", "example")
			}
			if name == "" {
				return flagError("name", "is required", "example-workers")
			}
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				return flagError("name", fmt.Sprintf("%q is not a valid name", name), "example-workers")
			}
			if count < 0 {
				return flagError("node-count", "must not be negative", "2")
			}
			var sel *metav1.LabelSelector
			if selector != "" {
				var err error
				if sel, err = metav1.ParseToLabelSelector(selector); err != nil {
					return flagError("agentLabelSelector", fmt.Sprintf("%q is not a label selector: %v", selector, err), "inventory.agent-install.openshift.io/cpu-cores=4")
				}
			}
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			hc := &hyperv1.HostedCluster{}
			if err := m.client.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: clusterName}, hc); err != nil {
				if apierrors.IsNotFound(err) {
					return flagError("cluster-name", fmt.Sprintf("no HostedCluster %q in namespace %q", clusterName, namespace), "example")
				}
				return err
			}
			if releaseImage == "" {
				releaseImage = hc.Spec.Release.Image
			} else if served, err := release.Served(cmd.Context(), m.client); err == nil && !slices.Contains(served, releaseImage) {
				return flagError("release-image", fmt.Sprintf("%q is not a release this management cluster serves (available: %s)", releaseImage, strings.Join(served, ", ")), hc.Spec.Release.Image)
			}
			np := clusterspec.NodePool(namespace, name, clusterName, releaseImage, count, sel)
			if err := clusterspec.ApplyAll(cmd.Context(), m.client, []client.Object{np}, fieldOwner); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "nodepool %s/%s applied (%d nodes)\n", namespace, name, count)
			return nil
		},
	}
	cmd.Flags().StringVar(&clusterName, "cluster-name", "", "the HostedCluster the nodes join")
	cmd.Flags().StringVar(&name, "name", "", "name of the NodePool")
	cmd.Flags().StringVar(&namespace, "namespace", "clusters", "namespace of the HostedCluster")
	cmd.Flags().Int32Var(&count, "node-count", 0, "number of nodes")
	cmd.Flags().StringVar(&selector, "agentLabelSelector", "", "label selector of the Agents the pool may use")
	cmd.Flags().StringVar(&releaseImage, "release-image", "", "release of the nodes (default: the HostedCluster's); not newer than the cluster's, at most 3 minor versions older")
	return cmd
}

func newCreateInfraEnvCommand(kubeconfig *string) *cobra.Command {
	var name, namespace, pullSecret, sshKeyFile string
	var autoApprove bool
	cmd := &cobra.Command{
		Use:   "infraenv",
		Short: "Create an InfraEnv: hosts that boot its discovery artifacts become Agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return flagError("name", "is required", "example")
			}
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				return flagError("name", fmt.Sprintf("%q is not a valid name", name), "example")
			}
			if namespace == "" {
				return flagError("namespace", "is required: the namespace where the Agents will be", "clusters-example")
			}
			if pullSecret == "" {
				return flagError("pull-secret", "is required", "pull-secret.json")
			}
			ps, err := readPullSecret("pull-secret", pullSecret)
			if err != nil {
				return err
			}
			o := &ClusterOptions{SSHKeyFile: sshKeyFile}
			key, err := o.readSSHKey()
			if err != nil {
				return err
			}
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			if err := clusterspec.EnsureNamespace(cmd.Context(), m.client, namespace); err != nil {
				return err
			}
			secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-pull-secret", Labels: map[string]string{ManagedByLabel: managedBy}},
				Type:       corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: ps}}
			ie := &agentv1.InfraEnv{TypeMeta: metav1.TypeMeta{APIVersion: agentv1.GroupVersion.String(), Kind: "InfraEnv"},
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{ManagedByLabel: managedBy}},
				Spec: agentv1.InfraEnvSpec{PullSecretRef: &corev1.LocalObjectReference{Name: secret.Name},
					SSHAuthorizedKey: strings.TrimSpace(string(key)), AgentApproval: &agentv1.AgentApproval{AutoApprove: autoApprove}}}
			if err := clusterspec.ApplyAll(cmd.Context(), m.client, []client.Object{secret, ie}, fieldOwner); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "infraenv %s/%s applied\n", namespace, name)
			return printDiscovery(cmd.Context(), m.client, ie, out)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the InfraEnv")
	cmd.Flags().StringVar(&namespace, "namespace", "", "namespace of the InfraEnv and its Agents")
	cmd.Flags().StringVar(&pullSecret, "pull-secret", "", "file with the pull secret (JSON with an \"auths\" object)")
	cmd.Flags().StringVar(&sshKeyFile, "ssh-key", "", "file with the public ssh key for user core on discovered hosts")
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "approve every Agent that registers")
	return cmd
}

// printDiscovery waits briefly for the InfraEnv's discovery artifacts and says
// where they are, or how to find them later.
func printDiscovery(ctx context.Context, c client.Client, ie *agentv1.InfraEnv, out io.Writer) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got := &agentv1.InfraEnv{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ie), got); err == nil && got.Status.BootArtifacts.ScriptURL != "" {
			fmt.Fprintf(out, "Discovery artifacts:\n  any Linux host:      curl -fsSk '%s' | sh\n  CoreOS-style hosts:  boot with the Ignition config at %s\n",
				got.Status.BootArtifacts.ScriptURL, got.Status.BootArtifacts.DiscoveryIgnitionURL)
			fmt.Fprintf(out, "Hosts appear as Agents: kubectl -n %s get agents\n", ie.Namespace)
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(out, "The discovery artifacts are not published yet; they appear in kubectl -n %s get infraenv %s -o jsonpath='{.status.bootArtifacts}'\n", ie.Namespace, ie.Name)
	return nil
}
