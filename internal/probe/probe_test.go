package probe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// What etcd 3.7's JSON gateway answers: a status with a NOSPACE alarm of
// another member and of the member itself, and an alarm request.
func TestEtcdStatusAndNoSpace(t *testing.T) {
	var alarmBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v3/maintenance/status":
			_, _ = io.WriteString(w, `{"header":{"cluster_id":"1", "member_id":"10276657743932975437", "revision":"1", "raft_term":"2"}, "version":"3.7.0",`+
				` "leader":"10276657743932975437", "errors":["memberID:42  alarm:NOSPACE", "memberID:10276657743932975437  alarm:NOSPACE"]}`)
		case "/v3/maintenance/alarm":
			b, _ := io.ReadAll(r.Body)
			alarmBody = string(b)
			_, _ = io.WriteString(w, `{"header":{}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := &Client{http: srv.Client()}
	m, err := c.EtcdStatus(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m != (EtcdMember{ID: "10276657743932975437", Leads: true, NoSpace: true}) {
		t.Errorf("status = %+v", m)
	}
	if err := c.EtcdNoSpace(context.Background(), srv.URL, m.ID, false); err != nil {
		t.Fatal(err)
	}
	if want := `{"action":"DEACTIVATE","memberID":"10276657743932975437","alarm":"NOSPACE"}`; alarmBody != want {
		t.Errorf("alarm request %s, want %s", alarmBody, want)
	}
	for url, want := range map[string]bool{"https://a:2379/health": true, "https://a:2379/health?exclude=NOSPACE": true, "https://a:6443/readyz": false} {
		if isEtcdHealth(url) != want {
			t.Errorf("isEtcdHealth(%s) = %v", url, !want)
		}
	}
}
