package hub

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/hcp-dev/hcp/config/crd"
	"github.com/hcp-dev/hcp/internal/release"
)

// testRelease is the release payload from make build (HCP_BIN, default ../../bin).
func testRelease(t *testing.T) *release.Release {
	t.Helper()
	bin := os.Getenv("HCP_BIN")
	if bin == "" {
		bin = "../../bin"
	}
	rel, err := (release.Store{Dir: filepath.Join(bin, "release")}).Default()
	if err != nil {
		t.Fatalf("the release payload is missing (%v); run make build first", err)
	}
	return rel
}

// A program that takes the management API port after hcp chose it and before
// kube-apiserver listens on it: hcp chooses another port and comes up on it.
func TestStartChoosesAnotherPortWhenItsPortIsTaken(t *testing.T) {
	dir := t.TempDir()
	var thief net.Listener
	defer func() {
		if thief != nil {
			thief.Close()
		}
	}()
	progress := func(step string) {
		if step != "kube-apiserver" {
			return
		}
		st, err := loadState(filepath.Join(dir, "hub.json"))
		if err != nil {
			t.Error(err)
			return
		}
		if thief, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(st.APIPort)); err != nil {
			t.Error(err)
			return
		}
		// An HTTP server like the one that answered 404 to hcp's probes.
		go func() { _ = http.Serve(thief, http.NotFoundHandler()) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Start(ctx, Options{DataDir: dir, Release: testRelease(t), Log: testr.New(t), Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	if thief == nil {
		t.Fatal("the port was never taken")
	}
	taken := thief.Addr().(*net.TCPAddr).Port
	if h.state.APIPort == taken {
		t.Fatalf("the management API still uses the taken port %d", taken)
	}
	cs := h.RESTConfig()
	if cs.Host != fmt.Sprintf("https://127.0.0.1:%d", h.state.APIPort) {
		t.Fatalf("the admin client points at %s, the API listens on %d", cs.Host, h.state.APIPort)
	}
	kc, err := os.ReadFile(h.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kc), fmt.Sprintf("127.0.0.1:%d", h.state.APIPort)) {
		t.Fatalf("the kubeconfig does not name the new port %d", h.state.APIPort)
	}
}

// The port the user asked for is not silently replaced.
func TestStartReportsATakenPortTheUserAskedFor(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Options{DataDir: dir, Release: testRelease(t), Log: testr.New(t), Port: port})
	if err == nil {
		t.Fatal("started on a port in use")
	}
	want := fmt.Sprintf("port %d for the management API is in use; choose another with --port", port)
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// Start returns with every CRD in discovery and serving its objects at once
// (no 429 while its storage is set up), WaitAPIReady with the API server
// ready, and WaitReady with kube-controller-manager healthy too; Ready is
// closed then.
func TestStartServesEveryCRD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Start(ctx, Options{DataDir: t.TempDir(), Release: testRelease(t), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	check, err := h.prober()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range crds {
		gv := h.Server() + "/apis/" + o.Spec.Group + "/" + o.Spec.Versions[len(o.Spec.Versions)-1].Name
		body, err := check.Get(ctx, gv)
		if err != nil || !strings.Contains(string(body), `"name":"`+o.Spec.Names.Plural+`"`) {
			t.Errorf("discovery of %s does not list %s (%v)", gv, o.Spec.Names.Plural, err)
		}
		if err := check.Check(ctx, gv+"/"+o.Spec.Names.Plural); err != nil {
			t.Errorf("first list of %s: %v", o.Name, err)
		}
	}
	if err := h.WaitAPIReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := check.Check(ctx, h.readyzURL()); err != nil {
		t.Errorf("API server readiness after WaitAPIReady: %v", err)
	}
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := check.Check(ctx, h.kcmHealthURL()); err != nil {
		t.Errorf("kube-controller-manager after WaitReady: %v", err)
	}
	select {
	case <-h.Ready():
	default:
		t.Error("Ready is not closed after WaitReady returned")
	}
}
