package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sessionCookie holds the session's id; the session's credentials stay on the
// server.
const sessionCookie = "hcp-console-session"

// csrfHeader carries the session's CSRF token on every change.
const csrfHeader = "X-CSRF-Token"

// session is one logged-in user: their credentials for the management API (a
// client that carries them) and the token that every change must repeat.
type session struct {
	user    string
	groups  []string
	csrf    string
	config  *rest.Config
	client  client.WithWatch
	expires time.Time
}

// sessions are the logged-in users, by session id.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
	now func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}, now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// add stores s under a new id and returns the id.
func (ss *sessions) add(s *session) string {
	id := randomToken()
	s.csrf = randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, old := range ss.m {
		if now.After(old.expires) {
			delete(ss.m, k)
		}
	}
	s.expires = now.Add(ss.ttl)
	ss.m[id] = s
	return id
}

// get is the request's session, if its cookie names a live one.
func (ss *sessions) get(r *http.Request) (*session, string) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, ""
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil || ss.now().After(s.expires) {
		delete(ss.m, c.Value)
		return nil, ""
	}
	return s, c.Value
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// csrfOK says whether a request repeats its session's CSRF token.
func (s *session) csrfOK(r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
