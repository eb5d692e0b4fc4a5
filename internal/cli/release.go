package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/release"
	"github.com/hcp-dev/hcp/internal/version"
)

func newReleaseCommand() *cobra.Command {
	releaseDir := release.DefaultDir()
	cmd := &cobra.Command{Use: "release", Short: "List release payloads and mirror hcp's images to a registry"}
	cmd.PersistentFlags().StringVar(&releaseDir, "release-dir", releaseDir, "directory of release payloads")

	list := &cobra.Command{
		Use:   "list",
		Short: "Print the release payloads and their control plane images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rels, err := release.Store{Dir: releaseDir}.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, r := range rels {
				fmt.Fprintf(out, "%s  kubernetes %s  %s\n", r.Image, r.KubernetesVersion(), r.ImageRef(images.DefaultRepository, images.ControlPlaneImage))
			}
			return nil
		},
	}

	var to, only string
	var insecure bool
	mirror := &cobra.Command{
		Use:   "mirror --to <registry>/<repository>",
		Short: "Push the releases' control plane images and the operator image to a registry",
		Long: `Builds the control plane image of each release payload and the operator's image
from the programs beside hcp, and pushes them to <registry>/<repository>/control-plane
and <registry>/<repository>/operator, with the credentials of the docker config
($DOCKER_CONFIG/config.json, ~/.docker/config.json). It prints the references by
digest and the hcp install command that uses them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, problem := checkRepository(to, insecure)
			if problem != "" {
				return flagError("to", problem, repositoryExample)
			}
			store := release.Store{Dir: releaseDir}
			rels, err := store.List()
			if err != nil {
				return err
			}
			if only != "" {
				r, err := store.Resolve(only)
				if err != nil {
					return flagError("release-image", err.Error(), "hcp.dev/release:1.37.2")
				}
				rels = []*release.Release{r}
			}
			if len(rels) == 0 {
				return fmt.Errorf("no release payloads in %s: build them with make release", releaseDir)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			binDir := filepath.Dir(exe)
			var specs []images.Spec
			for _, r := range rels {
				specs = append(specs, images.ControlPlaneSpec(r))
			}
			for _, r := range rels {
				specs = append(specs, images.EtcdBackupSpec(r, filepath.Join(binDir, "hcp-operator")))
			}
			op, err := images.OperatorSpec(binDir, version.Version, rels)
			if err != nil {
				return err
			}
			specs = append(specs, op)
			blobs, err := os.MkdirTemp("", "hcp-mirror-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(blobs)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "building %d images from %s and %s\n", len(specs), releaseDir, binDir)
			built, err := images.Build(blobs, specs...)
			if err != nil {
				return err
			}
			opts := []remote.Option{remote.WithContext(cmd.Context()), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
			var opRef string
			for i, img := range built {
				// hcp/control-plane → <repo>/control-plane
				path := strings.TrimPrefix(img.Repository, images.OwnRepository+"/")
				tag, err := name.NewTag(repo.String()+"/"+path+":"+img.Tag, nameOpts(insecure)...)
				if err != nil {
					return flagError("to", err.Error(), repositoryExample)
				}
				digest, err := img.Image.Digest()
				if err != nil {
					return err
				}
				if i < len(rels) {
					if want := rels[i].Images[images.ControlPlaneImage]; want != "" && want != digest.String() {
						return fmt.Errorf("release %s: its control plane image built as %s, but its release.json records %s: rebuild with make", rels[i].Name, digest, want)
					}
				}
				fmt.Fprintf(out, "pushing %s\n", tag)
				if err := remote.Write(tag, img.Image, opts...); err != nil {
					return fmt.Errorf("pushing %s: %w (log in with docker login or set credentials in $DOCKER_CONFIG/config.json)", tag, err)
				}
				ref := tag.Context().Name() + "@" + digest.String()
				fmt.Fprintf(out, "  %s\n", ref)
				if i == len(built)-1 {
					opRef = ref
				}
			}
			fmt.Fprintf(out, "mirrored; install hcp with these images:\n  hcp install --operator-image %s --image-repository %s\n", opRef, repo)
			return nil
		},
	}
	mirror.Flags().StringVar(&to, "to", "", "registry and repository to push to, e.g. registry.example.com:5000/hcp")
	mirror.Flags().StringVar(&only, "release-image", "", "mirror only this release (default: every release payload)")
	mirror.Flags().BoolVar(&insecure, "insecure", false, "talk to the registry over plain HTTP")

	digests := &cobra.Command{
		Use:    "write-digests",
		Short:  "Record the digests of each release payload's images in its release.json",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rels, err := release.Store{Dir: releaseDir}.List()
			if err != nil {
				return err
			}
			for _, r := range rels {
				if err := images.WriteDigests(r); err != nil {
					return fmt.Errorf("release %s: %w", r.Name, err)
				}
			}
			return nil
		},
	}
	cmd.AddCommand(list, mirror, digests)
	return cmd
}

func nameOpts(insecure bool) []name.Option {
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// repositoryExample is a registry and repository, for flag errors.
const repositoryExample = "registry.example.com:5000/hcp"

// checkRepository checks a registry and repository path with no tag or
// digest (--to, --image-repository), or says what is wrong with it.
func checkRepository(s string, insecure bool) (name.Repository, string) {
	if s == "" {
		return name.Repository{}, "is required"
	}
	if strings.Contains(s, "@") || strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
		return name.Repository{}, fmt.Sprintf("%q names a tag or digest; give a registry and repository only", s)
	}
	if !strings.Contains(s, "/") {
		return name.Repository{}, fmt.Sprintf("%q has no repository; give <registry>/<repository>", s)
	}
	repo, err := name.NewRepository(s, nameOpts(insecure)...)
	if err != nil {
		return name.Repository{}, err.Error()
	}
	return repo, ""
}
