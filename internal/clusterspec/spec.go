package clusterspec

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"

	"github.com/hcp-dev/hcp/internal/hosted"
)

// Defaults of the fields a user may leave out.
const (
	DefaultNamespace = "clusters"
)

// Publishing strategies of the API server a Spec may ask for.
const (
	PublishNodePort     = "NodePort"
	PublishLoadBalancer = "LoadBalancer"
)

// Spec is a new hosted cluster as the user describes it. Contents of files
// (pull secret, ssh key, mirrors) are already read.
type Spec struct {
	Name                string
	Namespace           string
	PullSecret          []byte
	AgentNamespace      string
	BaseDomain          string
	APIServerAddress    string
	APIServerPublishing string
	EtcdStorageClass    string
	EtcdStorageSize     string
	// InfraID is the cluster's infrastructure ID; generated when empty.
	InfraID string
	// RestoreFrom is a backup archive the cluster starts from.
	RestoreFrom                    string
	SSHKey                         []byte
	ControlPlaneAvailabilityPolicy string
	InfraAvailabilityPolicy        string
	ReleaseImage                   string
	ImageContentSources            []hyperv1.ImageContentSource
	Tolerations                    []string
	NodePoolReplicas               int32
	AgentLabelSelector             string
	NodeSelector                   map[string]string
	ServiceCIDR                    string
	ClusterCIDR                    string
	Labels                         map[string]string
	Annotations                    map[string]string
}

// Inputs are the parsed forms of a valid Spec's fields.
type Inputs struct {
	tolerations   []corev1.Toleration
	agentSelector *metav1.LabelSelector
	etcdSize      *resource.Quantity
}

// Validate checks every field; it needs no management cluster. The first bad
// field is returned as a *FieldError.
func (s *Spec) Validate() (*Inputs, error) {
	in, errs := s.Check()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return in, nil
}

// Check checks every field and returns every problem, at most one per field,
// in the order of the fields: a form shows each next to its field.
func (s *Spec) Check() (*Inputs, []*FieldError) {
	in := &Inputs{}
	var errs []*FieldError
	seen := map[string]bool{}
	for _, check := range []func() error{
		func() error { return ValidateName(s.Name, s.Namespace) },
		func() error {
			if s.AgentNamespace == "" {
				return Invalid("agent-namespace", "is required: the namespace where the cluster's Agents are", "clusters-example")
			}
			if errs := validation.IsDNS1123Label(s.AgentNamespace); len(errs) > 0 {
				return Invalid("agent-namespace", fmt.Sprintf("%q is not a valid namespace name", s.AgentNamespace), "clusters-example")
			}
			return nil
		},
		func() error {
			if len(s.PullSecret) == 0 {
				return Invalid("pull-secret", "is required: the registry pull secret (JSON with an \"auths\" object)", "pull-secret.json")
			}
			return ParsePullSecret("the pull secret", s.PullSecret)
		},
		func() error {
			if len(s.SSHKey) > 0 {
				return ParseSSHKey("the key", s.SSHKey)
			}
			return nil
		},
		func() error {
			return checkPolicy("control-plane-availability-policy", s.ControlPlaneAvailabilityPolicy)
		},
		func() error { return checkPolicy("infra-availability-policy", s.InfraAvailabilityPolicy) },
		func() error {
			if s.BaseDomain != "" && len(validation.IsDNS1123Subdomain(s.BaseDomain)) > 0 {
				return Invalid("base-domain", fmt.Sprintf("%q is not a DNS domain", s.BaseDomain), "krnl.es")
			}
			return nil
		},
		func() error {
			switch s.APIServerPublishing {
			case "", PublishNodePort:
			case PublishLoadBalancer:
				if s.BaseDomain == "" && s.APIServerAddress == "" {
					return Invalid("base-domain", "is required with LoadBalancer publishing: the load balancer answers for api.<name>.<base-domain>", "krnl.es")
				}
			default:
				return Invalid("api-server-publishing", fmt.Sprintf("%q is not allowed; use NodePort or LoadBalancer", s.APIServerPublishing), PublishNodePort)
			}
			return nil
		},
		func() error {
			if s.APIServerAddress != "" && net.ParseIP(s.APIServerAddress) == nil && len(validation.IsDNS1123Subdomain(s.APIServerAddress)) > 0 {
				return Invalid("api-server-address", fmt.Sprintf("%q is neither an IP address nor a DNS name", s.APIServerAddress), "api.example.krnl.es")
			}
			return nil
		},
		func() error {
			if s.ReleaseImage == "" || strings.ContainsAny(s.ReleaseImage, " \t\n") {
				return Invalid("release-image", "is required: a release image reference (hcp version lists the available ones)", "hcp.dev/release:1.37.2")
			}
			return nil
		},
		func() error {
			if s.InfraID != "" && len(validation.IsDNS1123Label(s.InfraID)) > 0 {
				return Invalid("infra-id", fmt.Sprintf("%q is not a DNS label (lower-case letters, digits and '-')", s.InfraID), "example-x7k2p")
			}
			return nil
		},
		func() error {
			if s.RestoreFrom == "" {
				return nil
			}
			u, err := url.Parse(s.RestoreFrom)
			switch {
			case err != nil || (u.Scheme == "file" && u.Path == "") || (u.Scheme != "file" && u.Scheme != "http" && u.Scheme != "https"):
				return Invalid("restore-from", fmt.Sprintf("%q: use file:///<path> on the management plane or an http(s) URL of a backup archive", s.RestoreFrom), "file:///var/lib/hcp/backups/clusters-example-20261203-031317.tar.gz")
			case s.InfraID == "":
				return Invalid("infra-id", "is required with --restore-from: the infraID of the cluster the archive was taken of (its manifest.json says it)", "example-x7k2p")
			}
			return nil
		},
		func() error {
			if s.EtcdStorageClass != "" && len(validation.IsDNS1123Subdomain(s.EtcdStorageClass)) > 0 {
				return Invalid("etcd-storage-class", fmt.Sprintf("%q is not a valid StorageClass name", s.EtcdStorageClass), "local")
			}
			return nil
		},
		func() error {
			if s.EtcdStorageSize == "" {
				return nil
			}
			q, err := resource.ParseQuantity(s.EtcdStorageSize)
			if err != nil || q.Sign() <= 0 {
				return Invalid("etcd-storage-size", fmt.Sprintf("%q is not a positive size", s.EtcdStorageSize), "8Gi")
			}
			in.etcdSize = &q
			return nil
		},
		func() error { return checkCIDR("service-cidr", s.ServiceCIDR, hosted.DefaultServiceCIDR) },
		func() error { return checkCIDR("cluster-cidr", s.ClusterCIDR, hosted.DefaultClusterCIDR) },
		func() error {
			for _, t := range s.Tolerations {
				tol, err := ParseToleration(t)
				if err != nil {
					return err
				}
				in.tolerations = append(in.tolerations, tol)
			}
			return nil
		},
		func() error {
			if s.NodePoolReplicas > 500 {
				return Invalid("node-pool-replicas", fmt.Sprintf("%d is more than 500 nodes", s.NodePoolReplicas), "2")
			}
			return nil
		},
		func() error {
			if s.AgentLabelSelector == "" {
				return nil
			}
			var err error
			if in.agentSelector, err = metav1.ParseToLabelSelector(s.AgentLabelSelector); err != nil {
				return Invalid("agentLabelSelector", fmt.Sprintf("%q is not a label selector: %v", s.AgentLabelSelector, err), "inventory.agent-install.openshift.io/cpu-cores=4")
			}
			return nil
		},
		func() error { return checkKeys("node-selector", s.NodeSelector, true) },
		func() error { return checkKeys("labels", s.Labels, true) },
		func() error { return checkKeys("annotations", s.Annotations, false) },
	} {
		if err := check(); err != nil {
			fe, ok := AsFieldError(err)
			if !ok {
				fe = &FieldError{Problem: err.Error()}
			}
			if !seen[fe.Field] {
				seen[fe.Field] = true
				errs = append(errs, fe)
			}
		}
	}
	return in, errs
}

func checkPolicy(flag, v string) error {
	if v != string(hyperv1.SingleReplica) && v != string(hyperv1.HighlyAvailable) {
		return Invalid(flag, fmt.Sprintf("%q is not allowed; use SingleReplica or HighlyAvailable", v), "HighlyAvailable")
	}
	return nil
}

func checkCIDR(flag, cidr, example string) error {
	if _, _, err := net.ParseCIDR(cidr); err != nil {
		return Invalid(flag, fmt.Sprintf("%q is not a CIDR", cidr), example)
	}
	return nil
}

// checkKeys checks a map's keys as label keys and, for labels and selectors,
// its values as label values.
func checkKeys(flag string, m map[string]string, labelValues bool) error {
	for k, v := range m {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return Invalid(flag, fmt.Sprintf("key %q is not a valid label key: %s", k, strings.Join(errs, "; ")), "node-role.kubernetes.io/infra=")
		}
		if errs := validation.IsValidLabelValue(v); labelValues && len(errs) > 0 {
			return Invalid(flag, fmt.Sprintf("value %q of %q is not a valid label value", v, k), "node-role.kubernetes.io/infra=")
		}
	}
	return nil
}

// ValidateName checks a hosted cluster's name and namespace.
func ValidateName(name, namespace string) error {
	if name == "" {
		return Invalid("name", "is required", "example")
	}
	if name == "clusters" {
		return Invalid("name", `"clusters" is reserved for the namespace of hosted clusters; choose another name`, "example")
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || name[0] < 'a' || name[0] > 'z' {
		return Invalid("name", fmt.Sprintf("%q must be a lowercase RFC 1123 label that starts with a letter (a-z, 0-9, '-')", name), "example")
	}
	if len(name) > 53 {
		return Invalid("name", fmt.Sprintf("%q is %d characters; at most 53 are allowed", name, len(name)), "example")
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return Invalid("namespace", fmt.Sprintf("%q is not a valid namespace name", namespace), DefaultNamespace)
	}
	if cp := hosted.ControlPlaneNamespace(namespace, name); len(cp) > 63 {
		return Invalid("name", fmt.Sprintf("the control plane namespace %q would be %d characters; namespace and name together must fit in 62", cp, len(cp)), "example")
	}
	return nil
}

// ParsePullSecret checks a pull secret: JSON with an "auths" object. source
// names it in messages (a file's path, or "the pull secret").
func ParsePullSecret(source string, b []byte) error {
	const example = `pull-secret.json holding {"auths":{"quay.io":{"auth":"..."}}}`
	var doc struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Invalid("pull-secret", fmt.Sprintf("%s is not JSON: %v", source, err), example)
	}
	if doc.Auths == nil {
		return Invalid("pull-secret", fmt.Sprintf("%s has no \"auths\" object", source), example)
	}
	return nil
}

// ParseSSHKey checks an OpenSSH public key.
func ParseSSHKey(source string, b []byte) error {
	if _, _, _, _, err := ssh.ParseAuthorizedKey(b); err != nil {
		return Invalid("ssh-key", fmt.Sprintf("%s is not an OpenSSH public key (%v)", source, err), "~/.ssh/id_rsa.pub holding \"ssh-ed25519 AAAA... user@host\"")
	}
	return nil
}

// ParseImageContentSources reads the documentation's ICSP file: a YAML list of
// {source, mirrors}.
func ParseImageContentSources(source string, b []byte) ([]hyperv1.ImageContentSource, error) {
	const example = "icsp.yaml holding \"- mirrors: [registry.example.com:5000/openshift/release]\\n  source: quay.io/openshift-release-dev/ocp-v4.0-art-dev\""
	var list []hyperv1.ImageContentSource
	if err := yaml.UnmarshalStrict(b, &list); err != nil {
		return nil, Invalid("image-content-sources", fmt.Sprintf("%s is not a YAML list of {source, mirrors}: %v", source, err), example)
	}
	if len(list) == 0 {
		return nil, Invalid("image-content-sources", fmt.Sprintf("%s lists no sources", source), example)
	}
	for i, s := range list {
		if s.Source == "" {
			return nil, Invalid("image-content-sources", fmt.Sprintf("%s: entry %d has no source", source, i), example)
		}
		if len(s.Mirrors) == 0 {
			return nil, Invalid("image-content-sources", fmt.Sprintf("%s: entry %d (%s) has no mirrors", source, i, s.Source), example)
		}
		for _, m := range append([]string{s.Source}, s.Mirrors...) {
			if m == "" || strings.ContainsAny(m, " \t") {
				return nil, Invalid("image-content-sources", fmt.Sprintf("%s: entry %d: %q is not a repository", source, i, m), example)
			}
		}
	}
	return list, nil
}

// ParseToleration reads key=...,operator=...,effect=...[,value=...][,tolerationSeconds=...].
func ParseToleration(s string) (corev1.Toleration, error) {
	const example = `"key=kubernetes.io/custom,operator=Exists,effect=NoSchedule"`
	var t corev1.Toleration
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return t, Invalid("toleration", fmt.Sprintf("%q: %q is not field=value", s, part), example)
		}
		switch k {
		case "key":
			t.Key = v
		case "value":
			t.Value = v
		case "operator":
			if v != string(corev1.TolerationOpExists) && v != string(corev1.TolerationOpEqual) {
				return t, Invalid("toleration", fmt.Sprintf("%q: operator %q must be Exists or Equal", s, v), example)
			}
			t.Operator = corev1.TolerationOperator(v)
		case "effect":
			switch corev1.TaintEffect(v) {
			case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			default:
				return t, Invalid("toleration", fmt.Sprintf("%q: effect %q must be NoSchedule, PreferNoSchedule or NoExecute", s, v), example)
			}
			t.Effect = corev1.TaintEffect(v)
		case "tolerationSeconds":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return t, Invalid("toleration", fmt.Sprintf("%q: tolerationSeconds %q must be a whole number of seconds", s, v), example)
			}
			t.TolerationSeconds = &n
		default:
			return t, Invalid("toleration", fmt.Sprintf("%q: unknown field %q (allowed: key, operator, value, effect, tolerationSeconds)", s, k), example)
		}
	}
	if t.Key == "" && t.Operator != corev1.TolerationOpExists {
		return t, Invalid("toleration", fmt.Sprintf("%q: key is required unless operator=Exists", s), example)
	}
	if t.Operator == corev1.TolerationOpExists && t.Value != "" {
		return t, Invalid("toleration", fmt.Sprintf("%q: value must be empty with operator=Exists", s), example)
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		return t, Invalid("toleration", fmt.Sprintf("%q: tolerationSeconds needs effect=NoExecute", s), example)
	}
	return t, nil
}
