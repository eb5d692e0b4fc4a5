// Package console is hcp's web console: pages to create and watch hosted
// clusters, their node pools and the host inventory, served by the operator.
//
// The console holds no power of its own. A user logs in with a bearer token or
// the credentials of a management kubeconfig; every read and write is then made
// with those credentials, so the management API's RBAC decides what each user
// sees and changes. Sessions live in the server (the browser holds only a
// random id in an HttpOnly, SameSite=Strict cookie), and every change must
// repeat the session's CSRF token. Pages show no secret values; the admin
// kubeconfig is sent only as a download the user asks for.
//
// Creating a cluster goes through package clusterspec, as hcp create cluster
// agent does, so both accept and refuse the same input with the same messages.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/release"
)

//go:embed web
var web embed.FS

// fieldOwner is the server-side apply field manager of what the console writes.
const fieldOwner = "hcp-console"

// Server is the console.
type Server struct {
	// Config reaches the management API. Only its address and CA are used:
	// requests carry the logged-in user's credentials.
	Config *rest.Config
	// Scheme has the types the console reads and writes.
	Scheme *runtime.Scheme
	// Releases lists the release images a cluster may run.
	Releases release.Store
	// APIServerAddress is the address the wizard proposes for a new cluster's
	// API server (empty: as hcp create cluster agent would choose).
	APIServerAddress string
	// Log is the console's logger.
	Log logr.Logger

	sessions *sessions
	shutdown chan struct{}
}

// Handler serves the pages and their API.
func (s *Server) Handler() http.Handler {
	if s.sessions == nil {
		s.sessions = newSessions(8 * time.Hour)
		s.shutdown = make(chan struct{})
	}
	mux := http.NewServeMux()
	assets, _ := fs.Sub(web, "web")
	mux.Handle("GET /", http.FileServerFS(assets))
	mux.HandleFunc("POST /api/login", s.login)
	mux.HandleFunc("POST /api/logout", s.authed(s.logout))
	mux.HandleFunc("GET /api/session", s.authed(s.session))
	mux.HandleFunc("GET /api/list/{kind}", s.authed(s.list))
	mux.HandleFunc("GET /api/clusters/{namespace}/{name}", s.authed(s.cluster))
	mux.HandleFunc("GET /api/clusters/{namespace}/{name}/kubeconfig", s.authed(s.kubeconfig))
	mux.HandleFunc("POST /api/clusters", s.authed(s.create))
	mux.HandleFunc("POST /api/clusters/{namespace}/{name}/upgrade", s.authed(s.upgrade))
	mux.HandleFunc("POST /api/clusters/{namespace}/{name}/backups", s.authed(s.backup))
	mux.HandleFunc("GET /api/wizard", s.authed(s.wizard))
	mux.HandleFunc("GET /api/agents/matching", s.authed(s.matchingAgents))
	mux.HandleFunc("POST /api/agents/{namespace}/{name}/approval", s.authed(s.approve))
	mux.HandleFunc("POST /api/nodepools/{namespace}/{name}/scale", s.authed(s.scale))
	mux.HandleFunc("GET /api/events", s.authed(s.events))
	return securityHeaders(mux)
}

// securityHeaders keeps pages from being framed or sniffed and scripts to the
// console's own.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request, sess *session)

// authed runs h for a logged-in user; changes need the session's CSRF token
// and a same-origin JSON request.
func (s *Server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, _ := s.sessions.get(r)
		if sess == nil {
			writeError(w, http.StatusUnauthorized, "", "You are not logged in, or your session ended; log in again.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) || !sess.csrfOK(r) {
				writeError(w, http.StatusForbidden, "", "The request's CSRF token is missing or wrong; reload the page and try again.")
				return
			}
		}
		h(w, r, sess)
	}
}

// sameOrigin refuses changes sent from other sites' pages.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

type loginRequest struct {
	// Token is a bearer token of the management API.
	Token string `json:"token"`
	// Kubeconfig is a management kubeconfig whose current context's
	// credentials (token or embedded client certificate) are used.
	Kubeconfig string `json:"kubeconfig"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusForbidden, "", "Log in from the console's page.")
		return
	}
	var req loginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "", "The login request is not JSON: "+err.Error())
		return
	}
	cfg, field, err := s.userConfig(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, field, err.Error())
		return
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metaCreate)
	if err != nil {
		if apierrors.IsUnauthorized(err) {
			writeError(w, http.StatusUnauthorized, field, "The management API did not accept these credentials.")
			return
		}
		writeError(w, http.StatusBadGateway, "", "Cannot reach the management API: "+err.Error())
		return
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s.Scheme})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	sess := &session{user: review.Status.UserInfo.Username, groups: review.Status.UserInfo.Groups, config: cfg, client: c}
	id := s.sessions.add(sess)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.sessions.ttl.Seconds())})
	s.Log.Info("console login", "user", sess.user)
	writeJSON(w, http.StatusOK, map[string]string{"user": sess.user, "csrf": sess.csrf})
}

// userConfig is the management API's address and CA with the credentials of a
// login request, never the console's own.
func (s *Server) userConfig(req loginRequest) (*rest.Config, string, error) {
	cfg := rest.AnonymousClientConfig(s.Config)
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = "hcp-console"
	switch {
	case req.Token != "" && req.Kubeconfig != "":
		return nil, "token", errors.New("give a token or a kubeconfig, not both")
	case req.Token != "":
		if strings.ContainsAny(req.Token, " \t\r\n") {
			return nil, "token", errors.New("a bearer token has no spaces or line breaks")
		}
		cfg.BearerToken = req.Token
		return cfg, "token", nil
	case req.Kubeconfig != "":
		kc, err := clientcmd.Load([]byte(req.Kubeconfig))
		if err != nil {
			return nil, "kubeconfig", fmt.Errorf("not a kubeconfig: %v", err)
		}
		ctx := kc.Contexts[kc.CurrentContext]
		if ctx == nil {
			return nil, "kubeconfig", fmt.Errorf("its current context %q is not defined", kc.CurrentContext)
		}
		ai := kc.AuthInfos[ctx.AuthInfo]
		switch {
		case ai == nil:
			return nil, "kubeconfig", fmt.Errorf("user %q of the current context is not defined", ctx.AuthInfo)
		case ai.Token != "":
			cfg.BearerToken = ai.Token
		case len(ai.ClientCertificateData) > 0 && len(ai.ClientKeyData) > 0:
			cfg.CertData, cfg.KeyData = ai.ClientCertificateData, ai.ClientKeyData
		default:
			return nil, "kubeconfig", fmt.Errorf("user %q has neither a token nor embedded client-certificate-data and client-key-data (files, exec and auth plugins cannot be used here)", ctx.AuthInfo)
		}
		return cfg, "kubeconfig", nil
	}
	return nil, "token", errors.New("is required: a bearer token (kubectl create token <serviceaccount>) or a kubeconfig")
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if _, id := s.sessions.get(r); id != "" {
		s.sessions.remove(id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{})
}

func (s *Server) session(w http.ResponseWriter, _ *http.Request, sess *session) {
	writeJSON(w, http.StatusOK, map[string]string{"user": sess.user, "csrf": sess.csrf})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is how the page learns what went wrong: a message to show and,
// for bad input, the field to show it next to.
type apiError struct {
	Field   string         `json:"field,omitempty"`
	Message string         `json:"message"`
	Fields  []fieldProblem `json:"fields,omitempty"`
	Status  int            `json:"status"`
}

type fieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, apiError{Field: field, Message: msg, Status: code})
}

// writeErr reports err: bad fields as 422 next to the field, the management
// API's refusals with their status (403 says what RBAC did not allow).
func writeErr(w http.ResponseWriter, err error) {
	if fe, ok := clusterspec.AsFieldError(err); ok {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Field: fe.Field, Message: fe.Hint(), Status: http.StatusUnprocessableEntity,
			Fields: []fieldProblem{{Field: fe.Field, Message: fe.Hint()}}})
		return
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		code := int(st.Code)
		msg := st.Message
		if apierrors.IsForbidden(err) {
			msg = "Not allowed: " + st.Message + ". Ask an administrator for access (RBAC) or choose a namespace you may use."
		}
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeError(w, code, "", msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "", err.Error())
}
