// Package probe checks the health endpoints of control plane components
// (kube-apiserver /readyz, etcd /health, /healthz of the others) over TLS.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Client checks health endpoints with one TLS configuration.
type Client struct {
	http *http.Client
}

// New returns a Client that trusts roots and presents cert (when not nil).
func New(roots *x509.CertPool, cert *tls.Certificate) *Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	// Connections are kept between checks: a TLS handshake per check costs
	// both sides more CPU than the check itself.
	return &Client{http: &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second},
	}}
}

// Check GETs url and returns nil on a 200 answer. For etcd's /health it also
// requires {"health":"true"}.
func (c *Client) Check(ctx context.Context, url string) error {
	body, err := c.Get(ctx, url)
	if err != nil {
		return err
	}
	if isEtcdHealth(url) && !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("%s is unhealthy: %s", url, strings.TrimSpace(string(body)))
	}
	return nil
}

// isEtcdHealth reports whether url is etcd's /health, with or without a query.
func isEtcdHealth(url string) bool {
	path, _, _ := strings.Cut(url, "?")
	return strings.HasSuffix(path, "/health")
}

// Get GETs url and returns the start of the body (64 KiB at most) of a 200
// answer; any other answer is an error.
func (c *Client) Get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

// EtcdLeads reports whether the etcd member serving clients at base (its
// https://host:port) leads its cluster, from its maintenance status.
func (c *Client) EtcdLeads(ctx context.Context, base string) (bool, error) {
	m, err := c.EtcdStatus(ctx, base)
	return m.Leads, err
}

// EtcdMember is what an etcd member says of itself in its maintenance status.
type EtcdMember struct {
	// ID is the member's ID as etcd's JSON gateway writes it (a decimal string).
	ID    string
	Leads bool
	// NoSpace is whether the member's NOSPACE alarm is raised: the cluster
	// refuses writes while it is.
	NoSpace bool
}

// alarmOf matches one alarm in the errors of etcd's maintenance status
// ("memberID:<id> alarm:NOSPACE").
var alarmOf = regexp.MustCompile(`memberID:\s*(\d+)\s+alarm:\s*NOSPACE`)

// EtcdStatus asks the etcd member serving clients at base (its
// https://host:port) for its maintenance status. It is answered by the
// member alone, without a consensus round.
func (c *Client) EtcdStatus(ctx context.Context, base string) (EtcdMember, error) {
	body, err := c.PostJSON(ctx, base+"/v3/maintenance/status", "{}")
	if err != nil {
		return EtcdMember{}, err
	}
	var st struct {
		Header struct {
			MemberID string `json:"member_id"`
		} `json:"header"`
		Leader string   `json:"leader"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Header.MemberID == "" {
		return EtcdMember{}, fmt.Errorf("%s/v3/maintenance/status: unexpected answer %q", base, lastLines(string(body), 1))
	}
	m := EtcdMember{ID: st.Header.MemberID, Leads: st.Leader == st.Header.MemberID}
	for _, e := range st.Errors {
		if a := alarmOf.FindStringSubmatch(e); a != nil && a[1] == m.ID {
			m.NoSpace = true
		}
	}
	return m, nil
}

// EtcdNoSpace raises (or, with raise false, disarms) the NOSPACE alarm of
// the etcd member id through the member serving clients at base. While it is
// raised, etcd refuses every write with "database space exceeded" and still
// serves reads.
func (c *Client) EtcdNoSpace(ctx context.Context, base, id string, raise bool) error {
	action := "DEACTIVATE"
	if raise {
		action = "ACTIVATE"
	}
	_, err := c.PostJSON(ctx, base+"/v3/maintenance/alarm", fmt.Sprintf(`{"action":%q,"memberID":%q,"alarm":"NOSPACE"}`, action, id))
	return err
}

// PostJSON POSTs a JSON body to url and returns the start of the body of a
// 200 answer, as Get does.
func (c *Client) PostJSON(ctx context.Context, url, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req)
}

func (c *Client) do(req *http.Request) ([]byte, error) {
	url := req.URL.String()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(lastLines(string(body), 3)))
	}
	return body, nil
}

// Until calls check every interval until it returns nil or ctx ends; then it
// returns the last error, wrapped with what was waited for.
func Until(ctx context.Context, interval time.Duration, what string, check func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		var f final
		if errors.As(last, &f) {
			return f.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Final wraps an error that Until returns at once instead of checking again.
func Final(err error) error { return final{err} }

type final struct{ err error }

func (f final) Error() string { return f.err.Error() }
func (f final) Unwrap() error { return f.err }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
