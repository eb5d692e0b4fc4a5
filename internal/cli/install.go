package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/infra"
	"github.com/hcp-dev/hcp/internal/install"
	"github.com/hcp-dev/hcp/internal/operator"
	"github.com/hcp-dev/hcp/internal/version"
)

// DefaultOperatorImage is the operator image install renders unless told otherwise.
func DefaultOperatorImage() string {
	return images.DefaultRepository + "/" + images.OperatorImage + ":" + version.Version
}

func newInstallCommand(kubeconfig *string) *cobra.Command {
	o := install.Options{Namespace: operator.DefaultNamespace, Replicas: 1}
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
			fmt.Fprintf(cmd.OutOrStdout(), "hcp is installed; the operator runs in namespace %s (kubectl -n %s get pods)\n", o.Namespace, o.Namespace)
			return nil
		},
	}
	flags(cmd)
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
