package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/install"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/runtime/kubernetes"
	"github.com/hcp-dev/hcp/internal/version"
)

// DefaultOperatorImage is the operator image install renders unless told otherwise.
func DefaultOperatorImage() string {
	return images.DefaultRepository + "/" + images.OperatorImage + ":" + version.Version
}

func newInstallCommand(kubeconfig *string) *cobra.Command {
	o := install.Options{Namespace: operator.DefaultNamespace, Replicas: 1}
	wait, timeout := false, 5*time.Minute
	flags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the operator")
		cmd.Flags().StringVar(&o.Image, "operator-image", DefaultOperatorImage(), "operator image (hcp release mirror prints it)")
		cmd.Flags().StringVar(&o.ImageRepository, "image-repository", "", "where control plane pods pull hcp's images from, as hcp release mirror --to pushed them (default: hcp's registry, "+images.DefaultRepository+")")
		cmd.Flags().Int32Var(&o.Replicas, "operator-replicas", o.Replicas, "operator replicas (one leads, the others wait)")
		cmd.Flags().StringVar(&o.InfraURL, "infra-url", "", "the infrastructure service as hosts reach it (https://host:port in front of Service hcp-infra); empty leaves the Agent platform off")
	}
	check := func() error {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return flagError("namespace", strings.Join(errs, "; "), operator.DefaultNamespace)
		}
		if o.Image == "" || strings.ContainsAny(o.Image, " \t\n") {
			return flagError("operator-image", "must be an image reference", "registry.example.com/hcp-operator:v1")
		}
		if o.ImageRepository != "" {
			if _, problem := checkRepository(o.ImageRepository, false); problem != "" {
				return flagError("image-repository", problem, repositoryExample)
			}
		}
		if o.InfraURL != "" {
			if err := infra.CheckURL(o.InfraURL); err != nil {
				return flagError("infra-url", err.Error(), "https://infra.example.com:8090")
			}
		}
		if wait && timeout <= 0 {
			return flagError("timeout", fmt.Sprintf("%s is not a time to wait; give a positive duration", timeout), "5m")
		}
		if o.Replicas < 1 || o.Replicas > 5 {
			return flagError("operator-replicas", fmt.Sprintf("%d is out of range; use 1 to 5", o.Replicas), "2")
		}
		return nil
	}
	// objects validates the flags and renders what to apply.
	objects := func() ([]client.Object, error) {
		if err := check(); err != nil {
			return nil, err
		}
		return install.Objects(o)
	}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install hcp on an existing Kubernetes management cluster: CRDs, priority classes, the operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := objects()
			if err != nil {
				return err
			}
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			for _, obj := range objs {
				if err := apply.Object(cmd.Context(), m.client, obj, "hcp-install"); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s applied\n", strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind), obj.GetName())
			}
			if wait {
				if err := waitOperator(cmd.Context(), m.client, o.Namespace, timeout, cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hcp is installed; the operator runs in namespace %s (kubectl -n %s get pods)\n", o.Namespace, o.Namespace)
			return nil
		},
	}
	flags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the operator runs and leads, showing progress (image pulls, scheduling)")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long --wait waits")
	render := &cobra.Command{
		Use:   "render",
		Short: "Print what hcp install applies, as YAML (kubectl apply --server-side -f -)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := objects()
			if err != nil {
				return err
			}
			ros := make([]runtime.Object, len(objs))
			for i := range objs {
				ros[i] = objs[i]
			}
			b, err := apply.YAML(ros...)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	flags(render)
	cmd.AddCommand(render)
	return cmd
}

// waitOperator waits until the operator Deployment is rolled out and one of
// its pods leads, printing each change of what it waits for: the pods'
// image pulls, scheduling and crashes in the kubelet's and scheduler's words.
func waitOperator(ctx context.Context, c client.Client, namespace string, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		state := operatorState(ctx, c, namespace)
		if state == "" {
			fmt.Fprintf(out, "[%5.1fs] the operator runs and leads\n", time.Since(start).Seconds())
			return nil
		}
		if state != last {
			fmt.Fprintf(out, "[%5.1fs] waiting: %s\n", time.Since(start).Seconds(), state)
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the operator did not run in %s; last state: %s (inspect: kubectl -n %s describe pods -l app=hcp-operator)", timeout, last, namespace)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// operatorState is what the operator waits for ("" once it leads).
func operatorState(ctx context.Context, c client.Client, namespace string) string {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "hcp-operator"}, d); err != nil {
		return "reading Deployment hcp-operator: " + err.Error()
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		return "listing the operator's pods: " + err.Error()
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
		state := fmt.Sprintf("Deployment hcp-operator: %d of %d pods available", d.Status.AvailableReplicas, want)
		for i := range pods.Items {
			if why := kubernetes.PodProblem(&pods.Items[i]); why != "" {
				return state + "; " + why
			}
		}
		return state
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: operator.LeaderElectionID}, lease); err != nil {
		return "the operator's pods run; waiting for one to lead (Lease " + operator.LeaderElectionID + "): " + err.Error()
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	for _, p := range pods.Items {
		// Replicas identify as <pod name>_<id>.
		if p.DeletionTimestamp == nil && strings.HasPrefix(holder, p.Name+"_") {
			return ""
		}
	}
	return fmt.Sprintf("the operator's pods run; the Lease %s is held by %q, not one of them", operator.LeaderElectionID, holder)
}
