package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/hcp-dev/hcp/internal/clusterspec"
)

// ManagedByLabel marks the objects the CLI creates, so destroy removes exactly those.
const ManagedByLabel = clusterspec.ManagedByLabel

// managedBy is ManagedByLabel's value.
const managedBy = clusterspec.ManagedBy

// ClusterOptions are the flags of hcp create cluster agent: a cluster's Spec,
// whose file contents the CLI reads from the files named here.
type ClusterOptions struct {
	clusterspec.Spec
	PullSecretFile          string
	SSHKeyFile              string
	ImageContentSourcesFile string
	Render                  bool
	RenderSensitive         bool
	Wait                    bool
	Timeout                 time.Duration

	// sshKeyDefaulted is set when --ssh-key was not given: a missing default
	// key is then not an error.
	sshKeyDefaulted bool
	// quietHints leaves the closing hints to the caller (hcp up --example).
	quietHints bool
}

// validCluster is a validated cluster: the spec with the files read, and its
// parsed inputs.
type validCluster struct {
	spec   *clusterspec.Spec
	inputs *clusterspec.Inputs
}

// flagError is a bad flag: it names the flag, what was wrong and an example.
func flagError(flag, problem, example string) error {
	return clusterspec.Invalid(flag, problem, example)
}

// validate reads the files the flags name and checks every flag. It needs no
// management cluster.
func (o *ClusterOptions) validate() (*validCluster, error) {
	spec := o.Spec
	s := &spec
	if err := clusterspec.ValidateName(o.Name, o.Namespace); err != nil {
		return nil, err
	}
	var err error
	if o.PullSecretFile != "" {
		if s.PullSecret, err = readPullSecret("pull-secret", o.PullSecretFile); err != nil {
			return nil, err
		}
	}
	if s.SSHKey, err = o.readSSHKey(); err != nil {
		return nil, err
	}
	if o.ImageContentSourcesFile != "" {
		b, err := os.ReadFile(o.ImageContentSourcesFile)
		if err != nil {
			return nil, flagError("image-content-sources", fmt.Sprintf("cannot read %s: %v", o.ImageContentSourcesFile, errUnwrapPath(err)), "icsp.yaml")
		}
		if s.ImageContentSources, err = clusterspec.ParseImageContentSources(o.ImageContentSourcesFile, b); err != nil {
			return nil, err
		}
	}
	in, err := s.Validate()
	if err != nil {
		return nil, err
	}
	if o.Wait && o.Timeout < 0 {
		return nil, flagError("timeout", "must not be negative", "10m")
	}
	if o.RenderSensitive && !o.Render {
		return nil, flagError("render-sensitive", "only applies with --render", "")
	}
	return &validCluster{spec: s, inputs: in}, nil
}

// readPullSecret reads a pull secret file: JSON with an "auths" object.
func readPullSecret(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, flagError(flag, fmt.Sprintf("cannot read %s: %v", path, errUnwrapPath(err)), "pull-secret.json")
	}
	if err := clusterspec.ParsePullSecret(path, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (o *ClusterOptions) readSSHKey() ([]byte, error) {
	if o.SSHKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(o.SSHKeyFile)
	if err != nil {
		if o.sshKeyDefaulted && os.IsNotExist(err) {
			return nil, nil
		}
		return nil, flagError("ssh-key", fmt.Sprintf("cannot read %s: %v", o.SSHKeyFile, errUnwrapPath(err)), "~/.ssh/id_rsa.pub")
	}
	if err := clusterspec.ParseSSHKey(o.SSHKeyFile, b); err != nil {
		return nil, err
	}
	return b, nil
}

func errUnwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
