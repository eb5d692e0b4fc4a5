package backup

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

// ArchivedSecrets are the control plane Secrets an archive carries: without
// them a restored etcd holds certificates, tokens and Secrets nothing can
// use. The etcd and API server certificates are issued again from the root
// CA.
var ArchivedSecrets = []string{
	controlplane.SecretRootCA, controlplane.SecretFrontProxyCA, controlplane.SecretServiceAccount,
	controlplane.SecretEncryptionKey, controlplane.SecretEncryptionConfig,
}

// ClientTLS is the TLS configuration of an etcd client with the etcd client
// certificate (PEM) and the CA that signed etcd's serving certificates.
func ClientTLS(cert, key, ca []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// Source is a control plane to back up.
type Source struct {
	Endpoints []string
	TLS       *tls.Config
	// Etcdutl is the control plane's release's etcdutl.
	Etcdutl  string
	Secrets  []*corev1.Secret
	Manifest Manifest
}

// Result is a written archive.
type Result struct {
	URL      string
	Size     int64
	SHA256   string
	Manifest Manifest
}

// Networker places a control plane's replicas: the runtime's Network.
type Networker func(namespace string, replicas int) (controlplane.Network, error)

// SourceFor is the backup source of a HostedCluster's control plane.
func SourceFor(ctx context.Context, c client.Client, releases release.Store, network Networker, hc *hyperv1.HostedCluster) (*Source, error) {
	cpns := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	hcp := &hyperv1.HostedControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hc.Name}, hcp); err != nil {
		return nil, fmt.Errorf("the control plane of %s/%s: %w", hc.Namespace, hc.Name, err)
	}
	rel, err := releases.Resolve(hcp.Spec.ReleaseImage)
	if err != nil {
		return nil, err
	}
	quorum, _ := hosted.Replicas(hcp.Spec.ControllerAvailabilityPolicy)
	n, err := network(cpns, quorum)
	if err != nil {
		return nil, err
	}
	get := func(name string) (*corev1.Secret, error) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: cpns, Name: name}, s); err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", cpns, name, err)
		}
		return s, nil
	}
	etcdClient, err := get(controlplane.SecretEtcdClient)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := ClientTLS(etcdClient.Data[controlplane.KeyCert], etcdClient.Data[controlplane.KeyKey], etcdClient.Data[controlplane.KeyCA])
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", cpns, controlplane.SecretEtcdClient, err)
	}
	src := &Source{
		Endpoints: controlplane.EtcdClientURLs(n, quorum),
		TLS:       tlsConfig,
		Etcdutl:   rel.Binary(release.Etcdutl),
		Manifest:  Manifest{Cluster: hc.Namespace + "/" + hc.Name, InfraID: hc.Spec.InfraID, Release: rel.Name},
	}
	for _, name := range ArchivedSecrets {
		s, err := get(name)
		if err != nil {
			return nil, err
		}
		src.Secrets = append(src.Secrets, s)
	}
	return src, nil
}

// TargetFor is the Target a storage spec names; credentials are read from
// namespace. dataDir holds Local backups when the spec names no path.
func TargetFor(ctx context.Context, c client.Client, namespace string, st hyperv1.EtcdBackupStorage, dataDir string) (Target, error) {
	switch st.Type {
	case hyperv1.LocalBackupStorage:
		dir := filepath.Join(dataDir, "backups")
		if st.Local != nil && st.Local.Path != "" {
			dir = st.Local.Path
		}
		return Dir(dir), nil
	case hyperv1.S3BackupStorage:
		s3 := st.S3
		if s3 == nil {
			return nil, fmt.Errorf("storage.s3 is required when storage.type is S3")
		}
		creds := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s3.Credentials.Name}, creds); err != nil {
			return nil, fmt.Errorf("storage.s3.credentials: secret %s/%s: %w", namespace, s3.Credentials.Name, err)
		}
		id, key := string(creds.Data[hyperv1.S3AccessKeyIDKey]), string(creds.Data[hyperv1.S3SecretAccessKeyKey])
		if id == "" || key == "" {
			return nil, fmt.Errorf("storage.s3.credentials: secret %s/%s needs keys %s and %s", namespace, s3.Credentials.Name, hyperv1.S3AccessKeyIDKey, hyperv1.S3SecretAccessKeyKey)
		}
		return NewS3(s3.Endpoint, s3.Region, s3.Bucket, s3.Prefix, id, key)
	}
	return nil, fmt.Errorf("storage.type %q is not Local or S3", st.Type)
}

// ArchiveName is the name of a cluster's archive taken at t.
func ArchiveName(hc *hyperv1.HostedCluster, t time.Time) string {
	return ArchivePrefix(hc) + t.UTC().Format("20060102-150405") + ".tar.gz"
}

// ArchivePrefix starts the names of a cluster's archives.
func ArchivePrefix(hc *hyperv1.HostedCluster) string {
	return hc.Namespace + "-" + hc.Name + "-"
}

// ScheduledPrefix starts the names of a cluster's scheduled archives: the
// retention count applies to those only, never to a backup taken by hand.
func ScheduledPrefix(hc *hyperv1.HostedCluster) string {
	return ArchivePrefix(hc) + "scheduled-"
}

// ScheduledArchiveName is the name of a cluster's scheduled archive taken at t.
func ScheduledArchiveName(hc *hyperv1.HostedCluster, t time.Time) string {
	return ScheduledPrefix(hc) + t.UTC().Format("20060102-150405") + ".tar.gz"
}

// Take snapshots the source's etcd, checks the snapshot with etcdutl, and
// stores the archive in target under name. Nothing is stored unless the
// archive is whole; workDir holds the snapshot meanwhile.
func Take(ctx context.Context, src *Source, target Target, name, workDir string) (*Result, error) {
	if err := target.Check(ctx); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(workDir, "backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	snap := filepath.Join(dir, SnapshotName)
	if err := Snapshot(ctx, src.Endpoints, src.TLS, snap); err != nil {
		return nil, err
	}
	st, err := Verify(ctx, src.Etcdutl, snap)
	if err != nil {
		return nil, err
	}
	m := src.Manifest
	m.Revision, m.Keys, m.Time = st.Revision, st.TotalKey, time.Now().UTC()
	f, err := os.Create(filepath.Join(dir, "archive.tar.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if err := Write(io.MultiWriter(f, h), &m, snap, src.Secrets); err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	u, err := target.Put(ctx, name, f, size)
	if err != nil {
		return nil, err
	}
	return &Result{URL: u, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Manifest: m}, nil
}

// Prune deletes a cluster's oldest archives in target beyond keep.
func Prune(ctx context.Context, target Target, prefix string, keep int) ([]string, error) {
	all, err := target.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var gone []string
	for len(all) > keep {
		if err := target.Delete(ctx, all[0].Name); err != nil {
			return gone, err
		}
		gone = append(gone, all[0].Name)
		all = all[1:]
	}
	return gone, nil
}

// TakeFor backs a HostedCluster up to storage (credentials from the
// HostedCluster's namespace) as archive name; dataDir holds Local archives
// when storage names no directory, and the snapshot meanwhile.
func TakeFor(ctx context.Context, c client.Client, releases release.Store, network Networker, dataDir string,
	hc *hyperv1.HostedCluster, storage hyperv1.EtcdBackupStorage, name string) (*Result, error) {
	target, err := TargetFor(ctx, c, hc.Namespace, storage, dataDir)
	if err != nil {
		return nil, err
	}
	src, err := SourceFor(ctx, c, releases, network, hc)
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return Take(tctx, src, target, name, filepath.Join(dataDir, "tmp"))
}
