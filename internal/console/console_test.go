package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestUserConfigUsesOnlyTheUsersCredentials(t *testing.T) {
	s := &Server{Config: &rest.Config{Host: "https://192.0.2.1:6443", BearerToken: "operator-token",
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca"), CertData: []byte("operator-cert"), KeyData: []byte("operator-key")}}}
	cfg, _, err := s.userConfig(loginRequest{Token: "user-token"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != "user-token" || len(cfg.CertData) != 0 || string(cfg.CAData) != "ca" || cfg.Host != s.Config.Host {
		t.Fatalf("config %+v", cfg)
	}
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://evil.example:6443"}}]
users: [{name: u, user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	cfg, _, err = s.userConfig(loginRequest{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.CertData) != "cert" || string(cfg.KeyData) != "key" || cfg.BearerToken != "" || cfg.Host != s.Config.Host {
		t.Fatalf("the kubeconfig's credentials, not its server: %+v", cfg)
	}
	for _, tc := range []struct {
		req  loginRequest
		want string
	}{
		{loginRequest{}, "is required"},
		{loginRequest{Token: "a", Kubeconfig: "b"}, "not both"},
		{loginRequest{Token: "a b"}, "no spaces"},
		{loginRequest{Kubeconfig: "users: [{name: u, user: {client-certificate: /etc/cert}}]\ncontexts: [{name: x, context: {user: u}}]\ncurrent-context: x\n"}, "neither a token nor embedded"},
		{loginRequest{Kubeconfig: "{"}, "not a kubeconfig"},
	} {
		if _, _, err := s.userConfig(tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.req, err, tc.want)
		}
	}
}

func TestSessionsExpireAndCheckCSRF(t *testing.T) {
	ss := newSessions(time.Hour)
	now := time.Now()
	ss.now = func() time.Time { return now }
	s := &session{user: "alice"}
	id := ss.add(s)
	r := httptest.NewRequest("POST", "/api/clusters", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
	if got, _ := ss.get(r); got != s {
		t.Fatal("session not found")
	}
	if s.csrfOK(r) {
		t.Error("a request without the token passes")
	}
	r.Header.Set(csrfHeader, s.csrf+"x")
	if s.csrfOK(r) {
		t.Error("a wrong token passes")
	}
	r.Header.Set(csrfHeader, s.csrf)
	if !s.csrfOK(r) {
		t.Error("the right token fails")
	}
	now = now.Add(2 * time.Hour)
	if got, _ := ss.get(r); got != nil {
		t.Error("an expired session is still valid")
	}
}

func TestPairs(t *testing.T) {
	m, err := pairs("labels", "team=a\n\n owner = bob ,x=")
	if err != nil || m["team"] != "a" || m["owner"] != "bob" || m["x"] != "" || len(m) != 3 {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := pairs("labels", "team"); err == nil || !strings.Contains(err.Error(), "--labels") {
		t.Fatalf("%v", err)
	}
}

func TestPagesAreServedWithAStrictPolicy(t *testing.T) {
	s := &Server{}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/app.js") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/list/hostedclusters", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("API without a session: %d", rec.Code)
	}
}
