package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

// ManagedByLabel marks the objects the CLI creates, so destroy removes exactly those.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// managedBy is ManagedByLabel's value.
const managedBy = "hcp"

// ClusterOptions are the flags of hcp create cluster agent.
type ClusterOptions struct {
	Name                           string
	Namespace                      string
	PullSecretFile                 string
	AgentNamespace                 string
	BaseDomain                     string
	APIServerAddress               string
	EtcdStorageClass               string
	EtcdStorageSize                string
	SSHKeyFile                     string
	ControlPlaneAvailabilityPolicy string
	InfraAvailabilityPolicy        string
	ReleaseImage                   string
	ImageContentSourcesFile        string
	Tolerations                    []string
	NodePoolReplicas               int32
	AgentLabelSelector             string
	NodeSelector                   map[string]string
	ServiceCIDR                    string
	ClusterCIDR                    string
	Labels                         map[string]string
	Annotations                    map[string]string
	Render                         bool
	RenderSensitive                bool
	Wait                           bool
	Timeout                        time.Duration

	// sshKeyDefaulted is set when --ssh-key was not given: a missing default
	// key is then not an error.
	sshKeyDefaulted bool
}

// clusterInputs are the validated contents of the files the flags name.
type clusterInputs struct {
	pullSecret          []byte
	sshKey              []byte
	imageContentSources []hyperv1.ImageContentSource
	tolerations         []corev1.Toleration
	agentSelector       *metav1.LabelSelector
	etcdSize            *resource.Quantity
}

// flagError is a bad flag: it names the flag, what was wrong and an example.
func flagError(flag, problem, example string) error {
	if example == "" {
		return fmt.Errorf("--%s: %s", flag, problem)
	}
	return fmt.Errorf("--%s: %s (for example: --%s %s)", flag, problem, flag, example)
}

// validate checks every flag and reads the files they name. It needs no
// management cluster.
func (o *ClusterOptions) validate() (*clusterInputs, error) {
	in := &clusterInputs{}
	if o.Name == "" {
		return nil, flagError("name", "is required", "example")
	}
	if o.Name == "clusters" {
		return nil, flagError("name", `"clusters" is reserved for the namespace of hosted clusters; choose another name`, "example")
	}
	if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 || o.Name[0] < 'a' || o.Name[0] > 'z' {
		return nil, flagError("name", fmt.Sprintf("%q must be a lowercase RFC 1123 label that starts with a letter (a-z, 0-9, '-')", o.Name), "example")
	}
	if len(o.Name) > 53 {
		return nil, flagError("name", fmt.Sprintf("%q is %d characters; at most 53 are allowed", o.Name, len(o.Name)), "example")
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return nil, flagError("namespace", fmt.Sprintf("%q is not a valid namespace name", o.Namespace), "clusters")
	}
	if cp := o.Namespace + "-" + o.Name; len(cp) > 63 {
		return nil, flagError("name", fmt.Sprintf("the control plane namespace %q would be %d characters; namespace and name together must fit in 62", cp, len(cp)), "example")
	}
	if o.AgentNamespace == "" {
		return nil, flagError("agent-namespace", "is required: the namespace where the cluster's Agents are", "clusters-example")
	}
	if errs := validation.IsDNS1123Label(o.AgentNamespace); len(errs) > 0 {
		return nil, flagError("agent-namespace", fmt.Sprintf("%q is not a valid namespace name", o.AgentNamespace), "clusters-example")
	}
	if o.PullSecretFile == "" {
		return nil, flagError("pull-secret", "is required: a file with the registry pull secret (JSON with an \"auths\" object)", "pull-secret.json")
	}
	var err error
	if in.pullSecret, err = readPullSecret("pull-secret", o.PullSecretFile); err != nil {
		return nil, err
	}
	if in.sshKey, err = o.readSSHKey(); err != nil {
		return nil, err
	}
	for flag, v := range map[string]string{"control-plane-availability-policy": o.ControlPlaneAvailabilityPolicy, "infra-availability-policy": o.InfraAvailabilityPolicy} {
		if v != string(hyperv1.SingleReplica) && v != string(hyperv1.HighlyAvailable) {
			return nil, flagError(flag, fmt.Sprintf("%q is not allowed; use SingleReplica or HighlyAvailable", v), "HighlyAvailable")
		}
	}
	if o.BaseDomain != "" {
		if errs := validation.IsDNS1123Subdomain(o.BaseDomain); len(errs) > 0 {
			return nil, flagError("base-domain", fmt.Sprintf("%q is not a DNS domain", o.BaseDomain), "krnl.es")
		}
	}
	if o.APIServerAddress != "" {
		if net.ParseIP(o.APIServerAddress) == nil && len(validation.IsDNS1123Subdomain(o.APIServerAddress)) > 0 {
			return nil, flagError("api-server-address", fmt.Sprintf("%q is neither an IP address nor a DNS name", o.APIServerAddress), "api.example.krnl.es")
		}
	}
	if o.ReleaseImage == "" || strings.ContainsAny(o.ReleaseImage, " \t\n") {
		return nil, flagError("release-image", "is required: a release image reference (hcp version lists the available ones)", "hcp.dev/release:1.37.2")
	}
	if o.EtcdStorageClass != "" && len(validation.IsDNS1123Subdomain(o.EtcdStorageClass)) > 0 {
		return nil, flagError("etcd-storage-class", fmt.Sprintf("%q is not a valid StorageClass name", o.EtcdStorageClass), "local")
	}
	if o.EtcdStorageSize != "" {
		q, err := resource.ParseQuantity(o.EtcdStorageSize)
		if err != nil || q.Sign() <= 0 {
			return nil, flagError("etcd-storage-size", fmt.Sprintf("%q is not a positive size", o.EtcdStorageSize), "8Gi")
		}
		in.etcdSize = &q
	}
	for flag, cidr := range map[string]string{"service-cidr": o.ServiceCIDR, "cluster-cidr": o.ClusterCIDR} {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return nil, flagError(flag, fmt.Sprintf("%q is not a CIDR", cidr), map[string]string{"service-cidr": "172.31.0.0/16", "cluster-cidr": "10.132.0.0/14"}[flag])
		}
	}
	if o.ImageContentSourcesFile != "" {
		if in.imageContentSources, err = readImageContentSources(o.ImageContentSourcesFile); err != nil {
			return nil, err
		}
	}
	for _, t := range o.Tolerations {
		tol, err := parseToleration(t)
		if err != nil {
			return nil, err
		}
		in.tolerations = append(in.tolerations, tol)
	}
	if o.AgentLabelSelector != "" {
		if in.agentSelector, err = metav1.ParseToLabelSelector(o.AgentLabelSelector); err != nil {
			return nil, flagError("agentLabelSelector", fmt.Sprintf("%q is not a label selector: %v", o.AgentLabelSelector, err), "inventory.agent-install.openshift.io/cpu-cores=4")
		}
	}
	for flag, m := range map[string]map[string]string{"node-selector": o.NodeSelector, "labels": o.Labels, "annotations": o.Annotations} {
		for k := range m {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, flagError(flag, fmt.Sprintf("key %q is not a valid label key: %s", k, strings.Join(errs, "; ")), "node-role.kubernetes.io/infra=")
			}
		}
	}
	for k, v := range o.NodeSelector {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, flagError("node-selector", fmt.Sprintf("value %q of %q is not a valid label value", v, k), "node-role.kubernetes.io/infra=")
		}
	}
	if o.Wait && o.Timeout < 0 {
		return nil, flagError("timeout", "must not be negative", "10m")
	}
	if o.RenderSensitive && !o.Render {
		return nil, flagError("render-sensitive", "only applies with --render", "")
	}
	return in, nil
}

// readPullSecret reads a pull secret file: JSON with an "auths" object.
func readPullSecret(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, flagError(flag, fmt.Sprintf("cannot read %s: %v", path, errUnwrapPath(err)), "pull-secret.json")
	}
	var doc struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, flagError(flag, fmt.Sprintf("%s is not JSON: %v", path, err), `pull-secret.json holding {"auths":{"quay.io":{"auth":"..."}}}`)
	}
	if doc.Auths == nil {
		return nil, flagError(flag, fmt.Sprintf("%s has no \"auths\" object", path), `pull-secret.json holding {"auths":{"quay.io":{"auth":"..."}}}`)
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
	if _, _, _, _, err := ssh.ParseAuthorizedKey(b); err != nil {
		return nil, flagError("ssh-key", fmt.Sprintf("%s is not an OpenSSH public key (%v)", o.SSHKeyFile, err), "~/.ssh/id_rsa.pub holding \"ssh-ed25519 AAAA... user@host\"")
	}
	return b, nil
}

// readImageContentSources reads the documentation's ICSP file: a YAML list of
// {source, mirrors}.
func readImageContentSources(path string) ([]hyperv1.ImageContentSource, error) {
	const example = "icsp.yaml holding \"- mirrors: [registry.example.com:5000/openshift/release]\\n  source: quay.io/openshift-release-dev/ocp-v4.0-art-dev\""
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, flagError("image-content-sources", fmt.Sprintf("cannot read %s: %v", path, errUnwrapPath(err)), example)
	}
	var list []hyperv1.ImageContentSource
	if err := yaml.UnmarshalStrict(b, &list); err != nil {
		return nil, flagError("image-content-sources", fmt.Sprintf("%s is not a YAML list of {source, mirrors}: %v", path, err), example)
	}
	if len(list) == 0 {
		return nil, flagError("image-content-sources", fmt.Sprintf("%s lists no sources", path), example)
	}
	for i, s := range list {
		if s.Source == "" {
			return nil, flagError("image-content-sources", fmt.Sprintf("%s: entry %d has no source", path, i), example)
		}
		if len(s.Mirrors) == 0 {
			return nil, flagError("image-content-sources", fmt.Sprintf("%s: entry %d (%s) has no mirrors", path, i, s.Source), example)
		}
		for _, m := range append([]string{s.Source}, s.Mirrors...) {
			if m == "" || strings.ContainsAny(m, " \t") {
				return nil, flagError("image-content-sources", fmt.Sprintf("%s: entry %d: %q is not a repository", path, i, m), example)
			}
		}
	}
	return list, nil
}

// parseToleration reads key=...,operator=...,effect=...[,value=...][,tolerationSeconds=...].
func parseToleration(s string) (corev1.Toleration, error) {
	const example = `"key=kubernetes.io/custom,operator=Exists,effect=NoSchedule"`
	var t corev1.Toleration
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return t, flagError("toleration", fmt.Sprintf("%q: %q is not field=value", s, part), example)
		}
		switch k {
		case "key":
			t.Key = v
		case "value":
			t.Value = v
		case "operator":
			if v != string(corev1.TolerationOpExists) && v != string(corev1.TolerationOpEqual) {
				return t, flagError("toleration", fmt.Sprintf("%q: operator %q must be Exists or Equal", s, v), example)
			}
			t.Operator = corev1.TolerationOperator(v)
		case "effect":
			switch corev1.TaintEffect(v) {
			case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			default:
				return t, flagError("toleration", fmt.Sprintf("%q: effect %q must be NoSchedule, PreferNoSchedule or NoExecute", s, v), example)
			}
			t.Effect = corev1.TaintEffect(v)
		case "tolerationSeconds":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return t, flagError("toleration", fmt.Sprintf("%q: tolerationSeconds %q must be a whole number of seconds", s, v), example)
			}
			t.TolerationSeconds = &n
		default:
			return t, flagError("toleration", fmt.Sprintf("%q: unknown field %q (allowed: key, operator, value, effect, tolerationSeconds)", s, k), example)
		}
	}
	if t.Key == "" && t.Operator != corev1.TolerationOpExists {
		return t, flagError("toleration", fmt.Sprintf("%q: key is required unless operator=Exists", s), example)
	}
	if t.Operator == corev1.TolerationOpExists && t.Value != "" {
		return t, flagError("toleration", fmt.Sprintf("%q: value must be empty with operator=Exists", s), example)
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		return t, flagError("toleration", fmt.Sprintf("%q: tolerationSeconds needs effect=NoExecute", s), example)
	}
	return t, nil
}

func errUnwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
