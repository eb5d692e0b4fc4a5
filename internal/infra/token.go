package infra

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Token errors; all of them mean 401 to the caller.
var (
	ErrTokenMalformed = errors.New("token is malformed")
	ErrTokenForged    = errors.New("token signature does not match")
	ErrTokenExpired   = errors.New("token has expired")
	ErrTokenWrongEnv  = errors.New("token is for another InfraEnv")
)

// Signer issues and checks the per-InfraEnv tokens agents present in
// X-Secret-Key: <claims>.<HMAC-SHA256 of claims>, both base64url.
type Signer struct {
	key []byte
	now func() time.Time
}

type claims struct {
	InfraEnv string `json:"ie"`
	Expires  int64  `json:"exp"`
}

// NewSigner returns a Signer with a secret key of at least 32 bytes.
func NewSigner(key []byte, now func() time.Time) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("token key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: key, now: now}, nil
}

// Issue returns a token for an InfraEnv ID, valid for ttl.
func (s *Signer) Issue(infraEnvID string, ttl time.Duration) string {
	b, _ := json.Marshal(claims{InfraEnv: infraEnvID, Expires: s.now().Add(ttl).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

// Verify checks a token's signature, expiry and InfraEnv.
func (s *Signer) Verify(token, infraEnvID string) error {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || payload == "" || sig == "" || len(token) > 1024 {
		return ErrTokenMalformed
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return ErrTokenMalformed
	}
	if !hmac.Equal(got, s.mac(payload)) {
		return ErrTokenForged
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ErrTokenMalformed
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return ErrTokenMalformed
	}
	if s.now().Unix() >= c.Expires {
		return ErrTokenExpired
	}
	if c.InfraEnv != infraEnvID {
		return ErrTokenWrongEnv
	}
	return nil
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}
