package e2e

import (
	"strings"
	"testing"
)

// TestAPIValidation applies HostedCluster and NodePool manifests written from the
// seeds' fields, then invalid variants, which the API server must reject naming
// the field.
func TestAPIValidation(t *testing.T) {
	up := startUp(t, t.TempDir())
	up.mustKubectl("", "create", "namespace", "clusters")
	hc := readTestdata(t, "hostedcluster.yaml")
	np := readTestdata(t, "nodepool.yaml")
	up.mustKubectl(hc, "apply", "-f", "-")
	up.mustKubectl(np, "apply", "-f", "-")

	rename := func(s, name string) string {
		return strings.Replace(s, "  name: example\n", "  name: "+name+"\n", 1)
	}
	cases := []struct {
		name     string
		manifest string
		want     []string
	}{
		{"bad availability policy enum", rename(strings.Replace(hc, "controllerAvailabilityPolicy: HighlyAvailable", "controllerAvailabilityPolicy: Sometimes", 1), "bad-policy"),
			[]string{`spec.controllerAvailabilityPolicy: Unsupported value: "Sometimes"`, `"SingleReplica", "HighlyAvailable"`}},
		{"changed immutable availability policy", strings.Replace(hc, "controllerAvailabilityPolicy: HighlyAvailable", "controllerAvailabilityPolicy: SingleReplica", 1),
			[]string{"spec.controllerAvailabilityPolicy is immutable"}},
		{"changed immutable base domain", strings.Replace(hc, "baseDomain: krnl.es", "baseDomain: example.org", 1),
			[]string{"spec.dns.baseDomain is immutable"}},
		{"changed immutable etcd storage class", strings.Replace(hc, "storageClassName: local", "storageClassName: fast", 1),
			[]string{"spec.etcd.managed.storage.persistentVolume.storageClassName is immutable"}},
		{"missing pull secret", rename(strings.Replace(hc, "  pullSecret:\n    name: example-pull-secret\n", "", 1), "no-pull-secret"),
			[]string{"spec.pullSecret: Required value"}},
		{"missing release", rename(strings.Replace(hc, "  release:\n    image: hcp.dev/release:1.37.2\n", "", 1), "no-release"),
			[]string{"spec.release: Required value"}},
		{"bad publishing strategy", rename(strings.Replace(hc, "type: NodePort", "type: Magic", 1), "bad-publishing"),
			[]string{`spec.services[0].servicePublishingStrategy.type: Unsupported value: "Magic"`}},
		{"duplicate service", rename(strings.Replace(hc, "service: OAuthServer", "service: APIServer", 1), "dup-service"),
			[]string{"spec.services must list each service once"}},
		{"agent platform without agent namespace", rename(strings.Replace(hc, "    agent:\n      agentNamespace: clusters-example\n", "", 1), "no-agent"),
			[]string{"spec.platform.agent is required when spec.platform.type is Agent"}},
		{"name that is not an RFC 1123 label", rename(hc, "Bad.Name"),
			[]string{"metadata.name"}},
		{"bad cluster network CIDR", rename(strings.Replace(hc, "10.132.0.0/14", "10.132.0.0", 1), "bad-cidr"),
			[]string{"spec.networking.clusterNetwork[0].cidr", "must be a CIDR"}},
		{"changed immutable nodepool cluster", strings.Replace(np, "clusterName: example", "clusterName: other", 1),
			[]string{"spec.clusterName is immutable"}},
		{"negative nodepool replicas", rename(strings.Replace(np, "replicas: 2", "replicas: -1", 1), "negative"),
			[]string{"spec.replicas: Invalid value: -1"}},
		{"bad upgrade type", rename(strings.Replace(np, "upgradeType: Replace", "upgradeType: Sideways", 1), "sideways"),
			[]string{`spec.management.upgradeType: Unsupported value: "Sideways"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := up.kubectl(tc.manifest, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("error does not say %q:\n%s", w, out)
				}
			}
		})
	}

	// An unknown field (a documented field hcp does not act on, or a typo) is
	// rejected, not silently dropped.
	out, err := up.kubectl(strings.Replace(hc, "  dns:\n", "  fips: true\n  dns:\n", 1), "apply", "-f", "-")
	if err == nil || !strings.Contains(out, `unknown field "spec.fips"`) {
		t.Errorf("unknown field accepted: %v\n%s", err, out)
	}

	// NodePool has the scale subresource, so kubectl scale works.
	up.mustKubectl("", "-n", "clusters", "scale", "nodepool", "example", "--replicas", "5")
	if got := up.mustKubectl("", "-n", "clusters", "get", "np", "example", "-o", "jsonpath={.spec.replicas}"); got != "5" {
		t.Errorf("replicas after kubectl scale: %q", got)
	}
	// Short names and printer columns.
	if got := up.mustKubectl("", "-n", "clusters", "get", "hc"); !strings.Contains(got, "KUBECONFIG") || !strings.Contains(got, "PROGRESSING") {
		t.Errorf("hc columns:\n%s", got)
	}
	if got := up.mustKubectl("", "-n", "clusters", "get", "np"); !strings.Contains(got, "CLUSTER") || !strings.Contains(got, "DESIRED") || !strings.Contains(got, "CURRENT") {
		t.Errorf("np columns:\n%s", got)
	}
	if got := up.mustKubectl("", "get", "agents", "-A"); !strings.Contains(got, "No resources found") {
		t.Errorf("agents: %s", got)
	}
}
