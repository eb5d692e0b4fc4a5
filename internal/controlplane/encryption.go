package controlplane

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const (
	// SecretEncryptionKey is the AES-CBC key hcp makes for a control plane
	// whose spec names none (key KeyEncryptionKey).
	SecretEncryptionKey = "kas-secret-encryption-key"
	// SecretEncryptionConfig is the kube-apiserver's encryption configuration
	// (KeyEncryptionConfig), with every key it names (key.<name>) and the
	// state of a rotation in its annotations.
	SecretEncryptionConfig = "kas-secret-encryption-config"
	// KeyEncryptionKey is the key of an encryption key Secret.
	KeyEncryptionKey = "key"
	// KeyEncryptionConfig is the configuration file in SecretEncryptionConfig.
	KeyEncryptionConfig = "config.yaml"

	annotationWriteKey    = "hcp.dev/encryption-write-key"
	annotationMigratedKey = "hcp.dev/encryption-migrated-key"
	keyPrefix             = "key."
)

// WritePlain is Encryption.Write while Secrets are still written in plain
// text: the API servers first learn the key they will write with.
const WritePlain = "identity"

// EncryptionKey is an AES-CBC key, named by its digest: the name is stored
// with every value it encrypts, so a key keeps its name in every
// configuration.
type EncryptionKey struct {
	Name   string
	Secret []byte
}

// NewEncryptionKey names a key.
func NewEncryptionKey(secret []byte) EncryptionKey {
	sum := sha256.Sum256(secret)
	return EncryptionKey{Name: "key-" + hex.EncodeToString(sum[:6]), Secret: secret}
}

// GenerateEncryptionKey makes a random 32-byte key.
func GenerateEncryptionKey() (EncryptionKey, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return EncryptionKey{}, err
	}
	return NewEncryptionKey(b), nil
}

// Encryption is how the kube-apiservers store Secrets: the keys they read
// with, the one they write with (first of Keys, or WritePlain), and the key
// every stored Secret is known to be written with (Migrated).
type Encryption struct {
	Keys     []EncryptionKey
	Write    string
	Migrated string
}

func (e Encryption) has(name string) bool {
	return slices.ContainsFunc(e.Keys, func(k EncryptionKey) bool { return k.Name == name })
}

// Equal reports whether two encryptions configure the same.
func (e Encryption) Equal(o Encryption) bool {
	return e.Write == o.Write && e.Migrated == o.Migrated && slices.EqualFunc(e.Keys, o.Keys, func(a, b EncryptionKey) bool { return a.Name == b.Name })
}

// NextEncryption is the next step towards storing every Secret with active
// (backup, when set, is kept for reading). current is what the API servers
// were last given (nil: none, Secrets are stored in plain text); replicas is
// how many API servers there are, serving whether any runs, and rolledOut
// whether every one runs current. A replicated API server learns a new key
// before any replica writes with it, so none meets a Secret it cannot read;
// a key is dropped only once every Secret is rewritten with the active one.
// migrate says that the Secrets are now to be rewritten (then
// Migrated(active) records it).
func NextEncryption(current *Encryption, active EncryptionKey, backup *EncryptionKey, replicas int, serving, rolledOut bool) (next Encryption, migrate bool) {
	next = Encryption{Write: WritePlain}
	if current != nil {
		next = Encryption{Keys: slices.Clone(current.Keys), Write: current.Write, Migrated: current.Migrated}
	}
	learnFirst := replicas > 1 && serving
	switch {
	case !next.has(active.Name) && learnFirst:
		next.Keys = append(next.Keys, active)
	case !next.has(active.Name):
		next.Keys = append([]EncryptionKey{active}, next.Keys...)
		next.Write = active.Name
	case next.Write != active.Name && (!learnFirst || rolledOut):
		next.Write = active.Name
	}
	if backup != nil && !next.has(backup.Name) {
		next.Keys = append(next.Keys, *backup)
	}
	if next.Migrated == active.Name {
		next.Keys = slices.DeleteFunc(next.Keys, func(k EncryptionKey) bool {
			return k.Name != active.Name && (backup == nil || k.Name != backup.Name)
		})
	}
	next.sort()
	migrate = next.Write == active.Name && next.Migrated != active.Name && current != nil && next.Equal(*current) && rolledOut
	return next, migrate
}

// sort puts the key written with first, the others by name: one order for
// the same keys, so the configuration changes only when they do.
func (e *Encryption) sort() {
	slices.SortFunc(e.Keys, func(a, b EncryptionKey) int {
		switch {
		case a.Name == b.Name:
			return 0
		case a.Name == e.Write:
			return -1
		case b.Name == e.Write:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// Config is the kube-apiserver's EncryptionConfiguration for e.
func (e Encryption) Config() []byte {
	keys := make([]map[string]string, 0, len(e.Keys))
	for _, k := range e.Keys {
		keys = append(keys, map[string]string{"name": k.Name, "secret": base64.StdEncoding.EncodeToString(k.Secret)})
	}
	aescbc := map[string]any{"aescbc": map[string]any{"keys": keys}}
	identity := map[string]any{"identity": map[string]any{}}
	providers := []any{aescbc, identity}
	if e.Write == WritePlain || len(keys) == 0 {
		providers = []any{identity}
		if len(keys) > 0 {
			providers = append(providers, aescbc)
		}
	}
	b, _ := yaml.Marshal(map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "EncryptionConfiguration",
		"resources":  []any{map[string]any{"resources": []string{"secrets"}, "providers": providers}},
	})
	return b
}

// Secret is SecretEncryptionConfig for e.
func (e Encryption) Secret(namespace string) *corev1.Secret {
	data := map[string][]byte{KeyEncryptionConfig: e.Config()}
	for _, k := range e.Keys {
		data[keyPrefix+k.Name] = k.Secret
	}
	s := secret(namespace, SecretEncryptionConfig, data)
	s.Annotations = map[string]string{annotationWriteKey: e.Write}
	if e.Migrated != "" {
		s.Annotations[annotationMigratedKey] = e.Migrated
	}
	return s
}

// ParseEncryption reads SecretEncryptionConfig back.
func ParseEncryption(s *corev1.Secret) (*Encryption, error) {
	e := &Encryption{Write: s.Annotations[annotationWriteKey], Migrated: s.Annotations[annotationMigratedKey]}
	for name, b := range s.Data {
		if n, ok := strings.CutPrefix(name, keyPrefix); ok {
			k := NewEncryptionKey(b)
			if k.Name != n {
				return nil, fmt.Errorf("secret %s/%s: key %s does not hold the key of that name", s.Namespace, s.Name, name)
			}
			e.Keys = append(e.Keys, k)
		}
	}
	if e.Write == "" || (e.Write != WritePlain && !e.has(e.Write)) {
		return nil, fmt.Errorf("secret %s/%s: the key it writes with, %q, is not among its keys", s.Namespace, s.Name, e.Write)
	}
	e.sort()
	return e, nil
}
