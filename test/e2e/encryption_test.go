package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/probe"
)

// etcdMember is a running etcd member of a control plane, with a client
// that holds the certificate it serves with.
type etcdMember struct {
	replica, url string
	client       *probe.Client
}

// etcdMembers finds a control plane's running etcd members from their
// command lines.
func etcdMembers(t *testing.T, cpDir string) []etcdMember {
	t.Helper()
	var out []etcdMember
	for _, pid := range componentProcesses(cpDir) {
		key := replicaOf(pid)
		if !strings.HasPrefix(key, "etcd-") {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		flags := map[string]string{}
		for _, a := range strings.Split(string(cmdline), "\x00") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok {
				flags[k] = v
			}
		}
		ca, err := os.ReadFile(flags["trusted-ca-file"])
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		pair, err := tls.LoadX509KeyPair(flags["cert-file"], flags["key-file"])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, etcdMember{replica: key, url: flags["listen-client-urls"], client: probe.New(roots, &pair)})
	}
	if len(out) == 0 {
		t.Fatalf("no etcd member of %s runs", cpDir)
	}
	return out
}

// etcdValues reads every key under prefix straight from a control plane's
// etcd, as stored.
func etcdValues(t *testing.T, cpDir, prefix string) map[string][]byte {
	t.Helper()
	m := etcdMembers(t, cpDir)[0]
	b64 := base64.StdEncoding.EncodeToString
	end := []byte(prefix)
	end[len(end)-1]++
	rangeOf := func(body string) []struct{ Key, Value string } {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := m.client.PostJSON(ctx, m.url+"/v3/kv/range", body)
		if err != nil {
			t.Fatalf("reading %s from etcd: %v", prefix, err)
		}
		var r struct {
			Kvs []struct{ Key, Value string } `json:"kvs"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("reading %s from etcd: %v: %s", prefix, err, out)
		}
		return r.Kvs
	}
	values := map[string][]byte{}
	for _, kv := range rangeOf(fmt.Sprintf(`{"key":%q,"range_end":%q,"keys_only":true}`, b64([]byte(prefix)), b64(end))) {
		one := rangeOf(fmt.Sprintf(`{"key":%q}`, kv.Key))
		if len(one) == 1 {
			k, _ := base64.StdEncoding.DecodeString(one[0].Key)
			v, _ := base64.StdEncoding.DecodeString(one[0].Value)
			values[string(k)] = v
		}
	}
	return values
}

// encryptedWith checks that every Secret in a control plane's etcd is stored
// encrypted with AES-CBC key keyName (any key when empty) and that none holds
// marker in plain text; it returns the key the first one names.
func encryptedWith(cpDir, keyName, marker string, values map[string][]byte) (string, error) {
	if len(values) == 0 {
		return "", fmt.Errorf("no Secret in etcd")
	}
	seen := ""
	for k, v := range values {
		if strings.Contains(string(v), marker) {
			return "", fmt.Errorf("%s holds %q in plain text", k, marker)
		}
		rest, ok := strings.CutPrefix(string(v), "k8s:enc:aescbc:v1:")
		if !ok {
			return "", fmt.Errorf("%s is not stored encrypted: %q", k, v[:min(len(v), 40)])
		}
		name, _, _ := strings.Cut(rest, ":")
		if keyName != "" && name != keyName {
			return "", fmt.Errorf("%s is encrypted with %s, not %s", k, name, keyName)
		}
		seen = name
	}
	return seen, nil
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("enc", "HighlyAvailable", "local", rel.Image), "apply", "-f", "-")
	up.waitAvailable(t, "enc")
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-enc")
	kc := up.adminKubeconfig(t, "enc")
	const marker = "plain-text-marker-7c1f"
	guestKubectl(t, kc, "create", "secret", "generic", "marker", "--from-literal=password="+marker)

	// By default every Secret is encrypted with a key hcp made.
	var first string
	eventually(t, 2*time.Minute, "every Secret encrypted with the cluster's own key", func() error {
		if c := up.condition("hc", "clusters", "enc", "SecretsEncrypted"); !strings.HasPrefix(c, "True/") {
			return fmt.Errorf("SecretsEncrypted=%q", c)
		}
		var err error
		first, err = encryptedWith(cpDir, "", marker, etcdValues(t, cpDir, "/registry/secrets/"))
		return err
	})
	t.Logf("Secrets stored encrypted with %s", first)

	// Rotation to a key of the user's, while a client reads Secrets every
	// 100 ms through the published endpoint.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "enc-key-2", "--from-file=key="+keyFile)
	second := controlplane.NewEncryptionKey(key).Name
	reader := startSecretReader(t, kc)
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "enc", "--type", "merge", "-p",
		`{"spec":{"secretEncryption":{"type":"aescbc","aescbc":{"activeKey":{"name":"enc-key-2"}}}}}`)
	start := time.Now()
	var steps []string
	eventually(t, 5*time.Minute, "every Secret rewritten with the new key", func() error {
		c := up.condition("hc", "clusters", "enc", "SecretsEncrypted")
		if len(steps) == 0 || steps[len(steps)-1] != c {
			steps = append(steps, c)
		}
		if !strings.HasPrefix(c, "True/") || !strings.Contains(c, second) {
			return fmt.Errorf("SecretsEncrypted=%q", c)
		}
		_, err := encryptedWith(cpDir, second, marker, etcdValues(t, cpDir, "/registry/secrets/"))
		return err
	})
	total, failed := reader.finish()
	t.Logf("rotation %s -> %s done in %.1fs; steps: %q; reads: %d, failed: %d", first, second, time.Since(start).Seconds(), steps, total, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d reads failed during the rotation:\n%s", len(failed), total, strings.Join(failed, "\n"))
	}
	if got := guestKubectl(t, kc, "get", "secret", "marker", "-o", "jsonpath={.data.password}"); got != base64.StdEncoding.EncodeToString([]byte(marker)) {
		t.Errorf("secret marker after the rotation holds %q", got)
	}
	// The replaced key is gone from the API servers' configuration.
	cfg := up.mustKubectl("", "-n", "clusters-enc", "get", "secret", controlplane.SecretEncryptionConfig, "-o", "jsonpath={.data.config\\.yaml}")
	if plain, _ := base64.StdEncoding.DecodeString(cfg); strings.Contains(string(plain), first) || !strings.Contains(string(plain), second) {
		t.Errorf("the encryption configuration after the rotation:\n%s", plain)
	}

	// Bad input: a missing key and a short key are refused naming the
	// field, and the cluster keeps the key it has.
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "enc", "--type", "merge", "-p",
		`{"spec":{"secretEncryption":{"aescbc":{"activeKey":{"name":"no-such-key"}}}}}`)
	eventually(t, time.Minute, "the missing key refused", func() error {
		c := up.condition("hc", "clusters", "enc", "ValidConfiguration")
		if !strings.HasPrefix(c, "False/") || !strings.Contains(c, "spec.secretEncryption.aescbc.activeKey") || !strings.Contains(c, "no-such-key") {
			return fmt.Errorf("ValidConfiguration=%q", c)
		}
		return nil
	})
	up.mustKubectl("", "-n", "clusters", "create", "secret", "generic", "short-key", "--from-literal=key=0123456789")
	up.mustKubectl("", "-n", "clusters", "patch", "hc", "enc", "--type", "merge", "-p",
		`{"spec":{"secretEncryption":{"aescbc":{"activeKey":{"name":"short-key"}}}}}`)
	eventually(t, time.Minute, "the short key refused", func() error {
		c := up.condition("hc", "clusters", "enc", "ValidConfiguration")
		if !strings.HasPrefix(c, "False/") || !strings.Contains(c, "10 bytes") {
			return fmt.Errorf("ValidConfiguration=%q", c)
		}
		return nil
	})
	if c := up.condition("hc", "clusters", "enc", "SecretsEncrypted"); !strings.HasPrefix(c, "True/") || !strings.Contains(c, second) {
		t.Errorf("after a refused key: SecretsEncrypted=%q, want True with %s", c, second)
	}
	if _, err := encryptedWith(cpDir, second, marker, etcdValues(t, cpDir, "/registry/secrets/")); err != nil {
		t.Errorf("after a refused key: %v", err)
	}
	if out, err := up.kubectl("", "-n", "clusters", "patch", "hc", "enc", "--type", "merge", "-p", `{"spec":{"secretEncryption":{"type":"aescbc","aescbc":null}}}`); err == nil {
		t.Errorf("type aescbc without aescbc accepted: %s", out)
	}
}

// secretReader reads a Secret and lists Secrets every 100 ms.
type secretReader struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	total   int
	failed  []string
	started time.Time
}

func startSecretReader(t *testing.T, kubeconfig string) *secretReader {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 10 * time.Second
	cs := kubernetes.NewForConfigOrDie(cfg)
	r := &secretReader{stop: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(r.done)
		for {
			_, err := cs.CoreV1().Secrets("default").Get(context.Background(), "marker", metav1.GetOptions{})
			if err == nil {
				_, err = cs.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{})
			}
			r.mu.Lock()
			r.total++
			if err != nil {
				r.failed = append(r.failed, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *secretReader) finish() (int, []string) {
	close(r.stop)
	<-r.done
	return r.total, r.failed
}
