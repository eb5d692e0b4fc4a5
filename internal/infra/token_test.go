package infra

import (
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key := []byte(strings.Repeat("k", 32))
	s, err := NewSigner(key, clock)
	if err != nil {
		t.Fatal(err)
	}
	ie := "b34ec008-8055-484b-bc0e-fa73f513f8fa"
	tok := s.Issue(ie, time.Hour)
	if err := s.Verify(tok, ie); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	if err := s.Verify(tok, "c748ff1a-3073-43e5-b4e8-d23256877396"); err != ErrTokenWrongEnv {
		t.Errorf("other InfraEnv: %v", err)
	}
	other, _ := NewSigner([]byte(strings.Repeat("x", 32)), clock)
	if err := other.Verify(tok, ie); err != ErrTokenForged {
		t.Errorf("token from another key: %v", err)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	forged := payload[:len(payload)-2] + "xx." + sig
	if err := s.Verify(forged, ie); err != ErrTokenForged && err != ErrTokenMalformed {
		t.Errorf("altered claims: %v", err)
	}
	for _, bad := range []string{"", "abc", "a.", ".b", "!!!.???", strings.Repeat("a", 2000) + ".b"} {
		if err := s.Verify(bad, ie); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	now = now.Add(2 * time.Hour)
	if err := s.Verify(tok, ie); err != ErrTokenExpired {
		t.Errorf("expired token: %v", err)
	}
	if _, err := NewSigner([]byte("short"), nil); err == nil {
		t.Error("short key accepted")
	}
}
