package controlplane

import (
	"bytes"
	"strings"
	"testing"
)

func names(e Encryption) string {
	var out []string
	for _, k := range e.Keys {
		out = append(out, k.Name)
	}
	return e.Write + " [" + strings.Join(out, " ") + "] migrated=" + e.Migrated
}

func TestNextEncryption(t *testing.T) {
	k1 := EncryptionKey{Name: "k1", Secret: bytes.Repeat([]byte{1}, 32)}
	k2 := EncryptionKey{Name: "k2", Secret: bytes.Repeat([]byte{2}, 32)}
	k3 := EncryptionKey{Name: "k3", Secret: bytes.Repeat([]byte{3}, 32)}
	enc := func(write, migrated string, keys ...EncryptionKey) *Encryption {
		e := &Encryption{Keys: keys, Write: write, Migrated: migrated}
		e.sort()
		return e
	}
	for _, tc := range []struct {
		name               string
		current            *Encryption
		active             EncryptionKey
		backup             *EncryptionKey
		replicas           int
		serving, rolledOut bool
		want               string
		migrate            bool
	}{
		{name: "a new control plane writes with its key at once, even replicated", active: k1, replicas: 3,
			want: "k1 [k1] migrated="},
		{name: "a new control plane's Secrets are rewritten once it runs the key", current: enc("k1", "", k1), active: k1, replicas: 3, serving: true, rolledOut: true,
			want: "k1 [k1] migrated=", migrate: true},
		{name: "not while a replica still runs an older configuration", current: enc("k1", "", k1), active: k1, replicas: 3, serving: true,
			want: "k1 [k1] migrated="},
		{name: "done: nothing changes", current: enc("k1", "k1", k1), active: k1, replicas: 3, serving: true, rolledOut: true,
			want: "k1 [k1] migrated=k1"},
		{name: "replicated API servers that store in plain text learn the key first", active: k1, replicas: 3, serving: true, rolledOut: true,
			want: "identity [k1] migrated="},
		{name: "then write with it once every one knows it", current: enc(WritePlain, "", k1), active: k1, replicas: 3, serving: true, rolledOut: true,
			want: "k1 [k1] migrated="},
		{name: "and wait while one does not", current: enc(WritePlain, "", k1), active: k1, replicas: 3, serving: true,
			want: "identity [k1] migrated="},
		{name: "a rotation: replicated servers learn the new key, still writing with the old", current: enc("k1", "k1", k1), active: k2, replicas: 3, serving: true, rolledOut: true,
			want: "k1 [k1 k2] migrated=k1"},
		{name: "then write with the new key, the old kept for reading", current: enc("k1", "k1", k1, k2), active: k2, replicas: 3, serving: true, rolledOut: true,
			want: "k2 [k2 k1] migrated=k1"},
		{name: "then rewrite every Secret", current: enc("k2", "k1", k2, k1), active: k2, replicas: 3, serving: true, rolledOut: true,
			want: "k2 [k2 k1] migrated=k1", migrate: true},
		{name: "then the old key goes", current: enc("k2", "k2", k2, k1), active: k2, replicas: 3, serving: true, rolledOut: true,
			want: "k2 [k2] migrated=k2"},
		{name: "a backup key stays", current: enc("k2", "k2", k2, k1), active: k2, backup: &k1, replicas: 3, serving: true, rolledOut: true,
			want: "k2 [k2 k1] migrated=k2"},
		{name: "a single API server writes with a new key at once, and keeps the old for reading", current: enc("k1", "k1", k1), active: k2, replicas: 1, serving: true, rolledOut: true,
			want: "k2 [k2 k1] migrated=k1"},
		{name: "a second rotation before the first is done keeps every key not yet rewritten", current: enc("k2", "k1", k2, k1), active: k3, replicas: 1, serving: true, rolledOut: true,
			want: "k3 [k3 k1 k2] migrated=k1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, migrate := NextEncryption(tc.current, tc.active, tc.backup, tc.replicas, tc.serving, tc.rolledOut)
			if got := names(next); got != tc.want || migrate != tc.migrate {
				t.Errorf("got %s migrate=%v, want %s migrate=%v", got, migrate, tc.want, tc.migrate)
			}
		})
	}
}

func TestEncryptionSecretRoundTrip(t *testing.T) {
	k1, k2 := NewEncryptionKey(bytes.Repeat([]byte{1}, 32)), NewEncryptionKey(bytes.Repeat([]byte{2}, 16))
	for _, e := range []Encryption{
		{Keys: []EncryptionKey{k2, k1}, Write: k2.Name, Migrated: k1.Name},
		{Keys: []EncryptionKey{k1}, Write: WritePlain},
	} {
		e.sort()
		s := e.Secret("ns")
		got, err := ParseEncryption(s)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(e) || !bytes.Equal(got.Config(), e.Config()) {
			t.Errorf("round trip: got %s, want %s", names(*got), names(e))
		}
	}
	// The key written with comes first; plain writes put identity first.
	e := Encryption{Keys: []EncryptionKey{k1}, Write: WritePlain}
	if c := string(e.Config()); strings.Index(c, "identity") > strings.Index(c, "aescbc") {
		t.Errorf("identity is not the first provider while writing in plain text:\n%s", c)
	}
	e.Write = k1.Name
	if c := string(e.Config()); strings.Index(c, "identity") < strings.Index(c, "aescbc") {
		t.Errorf("aescbc is not the first provider:\n%s", c)
	}
	// A key stored under another key's name is refused.
	s := e.Secret("ns")
	s.Data[keyPrefix+k1.Name] = k2.Secret
	if _, err := ParseEncryption(s); err == nil {
		t.Error("a key under another key's name was accepted")
	}
}
