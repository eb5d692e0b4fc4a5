package backup

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Snapshot saves a snapshot of the etcd cluster whose members serve clients
// at endpoints into path, through etcd's client maintenance API. It takes it
// from a healthy member, a follower when one is healthy (a snapshot streams
// the whole database; the leader has the cluster's writes to do), and writes
// it whole or not at all.
func Snapshot(ctx context.Context, endpoints []string, tlsConfig *tls.Config, path string) error {
	var errs []error
	for _, ep := range pickMember(ctx, endpoints, tlsConfig) {
		err := snapshotFrom(ctx, ep, tlsConfig, path)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no etcd member is healthy (tried %s)", strings.Join(endpoints, ", "))
	}
	return fmt.Errorf("taking an etcd snapshot: %w", errors.Join(errs...))
}

func etcdClient(ep string, tlsConfig *tls.Config) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tlsConfig, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// pickMember orders the healthy members: followers first, then the leader.
func pickMember(ctx context.Context, endpoints []string, tlsConfig *tls.Config) []string {
	var followers, leaders []string
	for _, ep := range endpoints {
		c, err := etcdClient(ep, tlsConfig)
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(sctx, ep)
		cancel()
		_ = c.Close()
		switch {
		case err != nil || len(st.Errors) > 0:
		case st.Leader == st.Header.MemberId:
			leaders = append(leaders, ep)
		default:
			followers = append(followers, ep)
		}
	}
	return append(followers, leaders...)
}

func snapshotFrom(ctx context.Context, ep string, tlsConfig *tls.Config, path string) error {
	c, err := etcdClient(ep, tlsConfig)
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(part)
	n, err := io.Copy(f, rc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n < 512 {
		return fmt.Errorf("the snapshot is %d bytes, too short to be a database", n)
	}
	return os.Rename(part, path)
}

// Status is what etcdutl says of a snapshot file.
type Status struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int64  `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

// Verify checks a snapshot file with etcdutl (the release's etcdutl at
// etcdutl): that it is a whole etcd database, and what revision it holds.
func Verify(ctx context.Context, etcdutl, path string) (*Status, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, etcdutl, "snapshot", "status", path, "--write-out=json")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("etcdutl snapshot status: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	st := &Status{}
	if err := json.Unmarshal(out.Bytes(), st); err != nil {
		return nil, fmt.Errorf("etcdutl snapshot status: %w: %s", err, strings.TrimSpace(out.String()))
	}
	if st.Revision <= 0 {
		return nil, fmt.Errorf("etcdutl snapshot status: the snapshot holds no revision: %s", strings.TrimSpace(out.String()))
	}
	return st, nil
}
