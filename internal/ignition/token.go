package ignition

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of a NodePool's token Secret in the control plane namespace.
const (
	KeyToken          = "token"
	KeyPreviousToken  = "previous-token"
	KeyRotatedAt      = "rotated-at"
	KeyBootstrapID    = "bootstrap-token-id"
	KeyBootstrapToken = "bootstrap-token-secret"
	// KeyRelease is the release the tokens are for: a NodePool that changes
	// release gets new tokens, and the old ones stop working at once.
	KeyRelease = "release"
)

// Tokens are a NodePool's ignition tokens: the current one, and the previous
// one, which stays valid for a grace period after a rotation.
type Tokens struct {
	Current, Previous string
	RotatedAt         time.Time
}

// TokensFrom reads the tokens in a token Secret.
func TokensFrom(s *corev1.Secret) Tokens {
	t := Tokens{Current: string(s.Data[KeyToken]), Previous: string(s.Data[KeyPreviousToken])}
	t.RotatedAt, _ = time.Parse(time.RFC3339, string(s.Data[KeyRotatedAt]))
	return t
}

// Valid says whether token is the current token, or the previous one within
// grace of the rotation.
func (t Tokens) Valid(token string, now time.Time, grace time.Duration) bool {
	if token == "" {
		return false
	}
	if t.Current != "" && subtle.ConstantTimeCompare([]byte(token), []byte(t.Current)) == 1 {
		return true
	}
	return t.Previous != "" && now.Sub(t.RotatedAt) < grace && subtle.ConstantTimeCompare([]byte(token), []byte(t.Previous)) == 1
}

// Rotate makes a new current token, keeping the old one as previous.
func (t Tokens) Rotate(now time.Time) Tokens {
	return Tokens{Current: RandomHex(32), Previous: t.Current, RotatedAt: now}
}

// Due says whether the tokens should be rotated.
func (t Tokens) Due(now time.Time, every time.Duration) bool {
	return t.Current == "" || now.Sub(t.RotatedAt) >= every
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
