package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hcp-dev/hcp/internal/clusterspec"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGa2lK0VHJkCrdtGtXfHvjDfYmVMjd6cV1Fpm44kDgqN user@host\n"

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func validOptions(t *testing.T) *ClusterOptions {
	dir := t.TempDir()
	return &ClusterOptions{
		PullSecretFile: write(t, dir, "pull-secret.json", `{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}`),
		SSHKeyFile:     write(t, dir, "id_rsa.pub", testKey),
		Timeout:        time.Minute,
		Spec: clusterspec.Spec{
			Name: "example", Namespace: "clusters", AgentNamespace: "clusters-example",
			BaseDomain:                     "krnl.es",
			APIServerAddress:               "api.example.krnl.es",
			EtcdStorageClass:               "local",
			ControlPlaneAvailabilityPolicy: "HighlyAvailable", InfraAvailabilityPolicy: "SingleReplica",
			ReleaseImage: "hcp.dev/release:1.37.2", ServiceCIDR: "172.31.0.0/16", ClusterCIDR: "10.132.0.0/14",
		},
	}
}

func TestBadInputNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		change func(o *ClusterOptions)
		want   []string
	}{
		{"missing name", func(o *ClusterOptions) { o.Name = "" }, []string{"--name: is required"}},
		{"missing pull secret", func(o *ClusterOptions) { o.PullSecretFile = "" }, []string{"--pull-secret: is required"}},
		{"name clusters", func(o *ClusterOptions) { o.Name = "clusters" }, []string{"--name", `"clusters" is reserved`}},
		{"name too long", func(o *ClusterOptions) { o.Name = strings.Repeat("a", 54) }, []string{"--name", "at most 53"}},
		{"name not RFC 1123", func(o *ClusterOptions) { o.Name = "Bad_Name" }, []string{"--name", "RFC 1123"}},
		{"name starting with a digit", func(o *ClusterOptions) { o.Name = "1cluster" }, []string{"--name", "starts with a letter"}},
		{"unreadable pull secret", func(o *ClusterOptions) { o.PullSecretFile = filepath.Join(dir, "missing.json") }, []string{"--pull-secret", "cannot read", "no such file"}},
		{"pull secret not JSON", func(o *ClusterOptions) { o.PullSecretFile = write(t, dir, "bad.json", "auths: {}") }, []string{"--pull-secret", "is not JSON"}},
		{"pull secret without auths", func(o *ClusterOptions) { o.PullSecretFile = write(t, dir, "noauths.json", `{"x":1}`) }, []string{"--pull-secret", `no "auths" object`}},
		{"malformed ssh key", func(o *ClusterOptions) { o.SSHKeyFile = write(t, dir, "bad.pub", "not a key") }, []string{"--ssh-key", "not an OpenSSH public key"}},
		{"missing explicit ssh key", func(o *ClusterOptions) { o.SSHKeyFile = filepath.Join(dir, "none.pub") }, []string{"--ssh-key", "cannot read"}},
		{"malformed ICSP YAML", func(o *ClusterOptions) { o.ImageContentSourcesFile = write(t, dir, "icsp.yaml", "source: [oops") }, []string{"--image-content-sources", "not a YAML list"}},
		{"ICSP entry without mirrors", func(o *ClusterOptions) {
			o.ImageContentSourcesFile = write(t, dir, "icsp2.yaml", "- source: quay.io/openshift-release-dev/ocp-release\n")
		}, []string{"--image-content-sources", "has no mirrors"}},
		{"ICSP unknown field", func(o *ClusterOptions) {
			o.ImageContentSourcesFile = write(t, dir, "icsp3.yaml", "- source: a\n  mirror: [b]\n")
		}, []string{"--image-content-sources", "mirror"}},
		{"toleration without =", func(o *ClusterOptions) { o.Tolerations = []string{"key"} }, []string{"--toleration", "not field=value"}},
		{"toleration bad operator", func(o *ClusterOptions) { o.Tolerations = []string{"key=a,operator=Maybe,effect=NoSchedule"} }, []string{"--toleration", "must be Exists or Equal"}},
		{"toleration bad effect", func(o *ClusterOptions) { o.Tolerations = []string{"key=a,operator=Exists,effect=Never"} }, []string{"--toleration", "NoSchedule, PreferNoSchedule or NoExecute"}},
		{"toleration unknown field", func(o *ClusterOptions) { o.Tolerations = []string{"key=a,colour=red"} }, []string{"--toleration", `unknown field "colour"`}},
		{"toleration seconds without NoExecute", func(o *ClusterOptions) {
			o.Tolerations = []string{"key=a,operator=Exists,effect=NoSchedule,tolerationSeconds=5"}
		}, []string{"--toleration", "needs effect=NoExecute"}},
		{"unknown availability policy", func(o *ClusterOptions) { o.ControlPlaneAvailabilityPolicy = "Sometimes" }, []string{"--control-plane-availability-policy", "SingleReplica or HighlyAvailable"}},
		{"unknown infra availability policy", func(o *ClusterOptions) { o.InfraAvailabilityPolicy = "Twice" }, []string{"--infra-availability-policy"}},
		{"missing agent namespace", func(o *ClusterOptions) { o.AgentNamespace = "" }, []string{"--agent-namespace: is required"}},
		{"bad base domain", func(o *ClusterOptions) { o.BaseDomain = "not a domain" }, []string{"--base-domain"}},
		{"bad API server address", func(o *ClusterOptions) { o.APIServerAddress = "http://x" }, []string{"--api-server-address"}},
		{"bad service CIDR", func(o *ClusterOptions) { o.ServiceCIDR = "172.31.0.0" }, []string{"--service-cidr", "not a CIDR"}},
		{"bad etcd size", func(o *ClusterOptions) { o.EtcdStorageSize = "lots" }, []string{"--etcd-storage-size"}},
		{"bad label selector", func(o *ClusterOptions) { o.AgentLabelSelector = "a in (" }, []string{"--agentLabelSelector"}},
		{"bad node selector key", func(o *ClusterOptions) { o.NodeSelector = map[string]string{"bad key": ""} }, []string{"--node-selector"}},
		{"render-sensitive without render", func(o *ClusterOptions) { o.RenderSensitive = true }, []string{"--render-sensitive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions(t)
			tc.change(o)
			_, err := o.validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
	if _, err := validOptions(t).validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	o := validOptions(t)
	o.SSHKeyFile, o.sshKeyDefaulted = filepath.Join(dir, "absent-default.pub"), true
	if _, err := o.validate(); err != nil {
		t.Fatalf("a missing default ssh key is not an error: %v", err)
	}
}

func TestParseToleration(t *testing.T) {
	tol, err := clusterspec.ParseToleration("key=kubernetes.io/custom,operator=Exists,effect=NoSchedule")
	if err != nil || tol.Key != "kubernetes.io/custom" || tol.Operator != "Exists" || tol.Effect != "NoSchedule" {
		t.Fatalf("%+v %v", tol, err)
	}
	tol, err = clusterspec.ParseToleration("key=a,operator=Equal,value=b,effect=NoExecute,tolerationSeconds=30")
	if err != nil || tol.Value != "b" || *tol.TolerationSeconds != 30 {
		t.Fatalf("%+v %v", tol, err)
	}
}

// TestRenderGolden compares --render output with testdata; UPDATE=true rewrites it.
func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		golden    string
		sensitive bool
		icsp      bool
	}{
		{"render.golden.yaml", false, false},
		{"render-sensitive-icsp.golden.yaml", true, true},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			o := validOptions(t)
			o.Render, o.RenderSensitive = true, tc.sensitive
			o.Tolerations = []string{"key=kubernetes.io/custom,operator=Exists,effect=NoSchedule"}
			o.NodePoolReplicas = 2
			o.AgentLabelSelector = "infraenvs.agent-install.openshift.io=example"
			if tc.icsp {
				o.ImageContentSourcesFile = write(t, t.TempDir(), "icsp.yaml",
					"- mirrors:\n  - registry.example.com:5000/openshift/release\n  source: quay.io/openshift-release-dev/ocp-v4.0-art-dev\n- mirrors:\n  - registry.example.com:5000/openshift/release-images\n  source: quay.io/openshift-release-dev/ocp-release\n")
			}
			var out bytes.Buffer
			if err := createCluster(context.Background(), o, "", &out); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if os.Getenv("UPDATE") == "true" {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE=true to create it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("--render output differs from %s (UPDATE=true rewrites it):\n%s", path, out.String())
			}
			if strings.Contains(out.String(), "kind: Secret") != tc.sensitive {
				t.Errorf("secrets rendered=%v, want %v", !tc.sensitive, tc.sensitive)
			}
		})
	}
}
