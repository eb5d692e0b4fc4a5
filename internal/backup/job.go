package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

// ErrInProgress: the backup runs elsewhere (a Job) and has not finished;
// ask again with the same archive name.
var ErrInProgress = errors.New("the backup is in progress")

// Taker takes one backup of a hosted cluster's control plane to a storage
// target, named name. A Taker that runs the backup elsewhere returns
// ErrInProgress until it has finished.
type Taker interface {
	Take(ctx context.Context, hc *hyperv1.HostedCluster, st hyperv1.EtcdBackupStorage, name string) (*Result, error)
}

// Local takes backups in this process: control planes whose etcd it
// reaches (the local runtime).
type Local struct {
	Client   client.Client
	Releases release.Store
	Network  Networker
	// DataDir holds Local backups (<DataDir>/backups) when their storage
	// names no path, and snapshots while they are archived.
	DataDir string
}

func (l Local) Take(ctx context.Context, hc *hyperv1.HostedCluster, st hyperv1.EtcdBackupStorage, name string) (*Result, error) {
	return TakeFor(ctx, l.Client, l.Releases, l.Network, l.DataDir, hc, st, name)
}

// JobInput is what a backup Job's program (hcp-operator etcd-backup) is
// given, as JSON in a Secret of the control plane namespace: it holds key
// material.
type JobInput struct {
	Name      string           `json:"name"`
	Endpoints []string         `json:"endpoints"`
	Manifest  Manifest         `json:"manifest"`
	Secrets   []*corev1.Secret `json:"secrets"`
	S3        JobS3            `json:"s3"`
}

// JobS3 is the bucket a Job writes to; credentials come from the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
type JobS3 struct {
	Endpoint string `json:"endpoint"`
	Region   string `json:"region,omitempty"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`
}

// CheckPodURL says why pods (the Kubernetes runtime's etcd members) cannot
// fetch the archive at u themselves; nil for an http(s) URL.
func CheckPodURL(u string) error {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return nil
	}
	return fmt.Errorf("%q: control planes here run as pods, which fetch the archive themselves; use an http(s) URL (a presigned S3 URL)", u)
}

// Paths in a backup Job's pod.
const (
	JobInputDir      = "/etc/hcp/backup"
	JobInputFile     = "input.json"
	JobEtcdClientDir = "/etc/hcp/etcd-client"
	JobWorkDir       = "/work"
	JobEtcdutl       = "/usr/local/bin/etcdutl"
)

// RunJob is a backup Job's program: it reads its input, takes the backup
// from inside the control plane namespace and writes the Result as JSON to
// out (the container's termination message).
func RunJob(ctx context.Context, inputDir, etcdClientDir, etcdutl, workDir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(inputDir, JobInputFile))
	if err != nil {
		return nil, err
	}
	var in JobInput
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", JobInputFile, err)
	}
	read := func(key string) ([]byte, error) { return os.ReadFile(filepath.Join(etcdClientDir, key)) }
	cert, err := read(controlplane.KeyCert)
	if err != nil {
		return nil, err
	}
	key, err := read(controlplane.KeyKey)
	if err != nil {
		return nil, err
	}
	ca, err := read(controlplane.KeyCA)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := ClientTLS(cert, key, ca)
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	target, err := NewS3(in.S3.Endpoint, in.S3.Region, in.S3.Bucket, in.S3.Prefix, os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"))
	if err != nil {
		return nil, fmt.Errorf("storage.s3: %w", err)
	}
	src := &Source{Endpoints: in.Endpoints, Etcdutl: etcdutl, Secrets: in.Secrets, Manifest: in.Manifest, TLS: tlsConfig}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return Take(ctx, src, target, in.Name, workDir)
}
