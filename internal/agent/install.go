package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	ignition "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"
)

// maxIgnitionBytes bounds the config a host accepts from the ignition server.
const maxIgnitionBytes = 8 << 20

// ErrUnreachable says the Ignition server could not be reached or failed;
// trying again later may succeed.
var ErrUnreachable = errors.New("the Ignition server is unreachable")

// Install applies a NodePool's Ignition under root: it fetches the config the
// pointer merges (with the pointer's headers, trusting only the pointer's CA),
// validates it, and writes its files, systemd units and users' ssh keys. It
// returns the applied config.
func Install(ctx context.Context, pointer []byte, root string) (*igntypes.Config, error) {
	ptr, rpt, err := ignition.Parse(pointer)
	if err != nil || rpt.IsFatal() {
		return nil, fmt.Errorf("pointer config: %v %s", err, rpt.String())
	}
	if len(ptr.Ignition.Config.Merge) != 1 || ptr.Ignition.Config.Merge[0].Source == nil {
		return nil, errors.New("pointer config: ignition.config.merge must name exactly one source")
	}
	src := ptr.Ignition.Config.Merge[0]
	pool := x509.NewCertPool()
	for i, ca := range ptr.Ignition.Security.TLS.CertificateAuthorities {
		b, err := decodeSource(ca.Source)
		if err != nil {
			return nil, fmt.Errorf("pointer config: ignition.security.tls.certificateAuthorities[%d]: %w", i, err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("pointer config: ignition.security.tls.certificateAuthorities[%d]: no PEM certificate", i)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *src.Source, nil)
	if err != nil {
		return nil, fmt.Errorf("pointer config: source: %w", err)
	}
	for _, h := range src.HTTPHeaders {
		if h.Value != nil {
			req.Header.Set(h.Name, *h.Value)
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching Ignition from %s: %w: %w", *src.Source, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIgnitionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching Ignition from %s: %w: %w", *src.Source, ErrUnreachable, err)
	}
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("fetching Ignition from %s: %w: %s %s", *src.Source, ErrUnreachable, resp.Status, reason(body))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching Ignition from %s: %s: %s", *src.Source, resp.Status, strings.TrimSpace(string(body)))
	}
	if len(body) > maxIgnitionBytes {
		return nil, fmt.Errorf("the Ignition from %s is larger than %d bytes", *src.Source, maxIgnitionBytes)
	}
	cfg, rpt, err := ignition.Parse(body)
	if err != nil || rpt.IsFatal() {
		return nil, fmt.Errorf("the Ignition from %s is invalid: %v %s", *src.Source, err, rpt.String())
	}
	return &cfg, Apply(cfg, root)
}

// Apply writes an Ignition config's files, units and ssh keys under root.
func Apply(cfg igntypes.Config, root string) error {
	for _, f := range cfg.Storage.Files {
		b, err := decodeSource(f.Contents.Source)
		if err != nil {
			return fmt.Errorf("storage.files %s: %w", f.Path, err)
		}
		mode := os.FileMode(0o644)
		if f.Mode != nil {
			mode = os.FileMode(*f.Mode)
		}
		if err := writeUnder(root, f.Path, b, mode); err != nil {
			return err
		}
	}
	for _, u := range cfg.Systemd.Units {
		if u.Contents == nil {
			continue
		}
		path := "/etc/systemd/system/" + u.Name
		if err := writeUnder(root, path, []byte(*u.Contents), 0o644); err != nil {
			return err
		}
		if u.Enabled != nil && *u.Enabled {
			link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u.Name)
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				return err
			}
			_ = os.Remove(link)
			if err := os.Symlink(path, link); err != nil {
				return err
			}
		}
	}
	for _, u := range cfg.Passwd.Users {
		if len(u.SSHAuthorizedKeys) == 0 {
			continue
		}
		var keys []string
		for _, k := range u.SSHAuthorizedKeys {
			keys = append(keys, string(k))
		}
		if err := writeUnder(root, "/home/"+u.Name+"/.ssh/authorized_keys.d/ignition", []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeUnder writes path (absolute, as on the node) below root, refusing
// paths that would leave it.
func writeUnder(root, path string, b []byte, mode os.FileMode) error {
	if !filepath.IsAbs(path) || strings.Contains(path, "..") {
		return fmt.Errorf("path %q: must be absolute and stay on the node", path)
	}
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	tmp := full + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, full)
}

func decodeSource(src *string) ([]byte, error) {
	if src == nil {
		return nil, nil
	}
	if !strings.HasPrefix(*src, "data:") {
		return nil, fmt.Errorf("source %.40q: only data URLs are applied", *src)
	}
	u, err := dataurl.DecodeString(*src)
	if err != nil {
		return nil, err
	}
	return u.Data, nil
}
