package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/apply"
)

// backupStorage turns --to and the S3 flags into a storage spec.
func backupStorage(to, endpoint, region, credentials string) (hyperv1.EtcdBackupStorage, error) {
	switch {
	case to == "":
		return hyperv1.EtcdBackupStorage{Type: hyperv1.LocalBackupStorage}, nil
	case strings.HasPrefix(to, "s3://"):
		u, err := url.Parse(to)
		if err != nil || u.Host == "" {
			return hyperv1.EtcdBackupStorage{}, flagError("to", fmt.Sprintf("%q is not s3://<bucket>[/<prefix>]", to), "s3://backups/hcp")
		}
		if errs := validation.IsDNS1123Subdomain(u.Host); len(errs) > 0 || len(u.Host) < 3 || len(u.Host) > 63 {
			return hyperv1.EtcdBackupStorage{}, flagError("to", fmt.Sprintf("bucket %q is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", u.Host), "s3://backups/hcp")
		}
		if e, err := url.Parse(endpoint); endpoint == "" || err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || strings.Trim(e.Path, "/") != "" {
			return hyperv1.EtcdBackupStorage{}, flagError("s3-endpoint", fmt.Sprintf("%q: an S3 target needs the store's URL", endpoint), "https://s3.example.com")
		}
		if credentials == "" {
			return hyperv1.EtcdBackupStorage{}, flagError("s3-credentials", "an S3 target needs a Secret in the HostedCluster's namespace with keys "+
				hyperv1.S3AccessKeyIDKey+" and "+hyperv1.S3SecretAccessKeyKey, "s3-credentials")
		}
		return hyperv1.EtcdBackupStorage{Type: hyperv1.S3BackupStorage, S3: &hyperv1.S3EtcdBackupStorage{Endpoint: endpoint, Bucket: u.Host,
			Prefix: strings.Trim(u.Path, "/"), Region: region, Credentials: corev1.LocalObjectReference{Name: credentials}}}, nil
	case filepath.IsAbs(to):
		return hyperv1.EtcdBackupStorage{Type: hyperv1.LocalBackupStorage, Local: &hyperv1.LocalEtcdBackupStorage{Path: filepath.Clean(to)}}, nil
	}
	return hyperv1.EtcdBackupStorage{}, flagError("to", fmt.Sprintf("%q is neither an absolute directory on the management plane nor s3://<bucket>[/<prefix>]", to), "/var/backups/hcp")
}

func newCreateEtcdBackupCommand(kubeconfig *string) *cobra.Command {
	var name, namespace, backupName, to, endpoint, region, credentials string
	var wait, render bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "etcd-backup",
		Short: "Back up a hosted cluster: its etcd and the keys that make it usable, in one archive",
		Long: `Creates an HCPEtcdBackup: the operator snapshots the cluster's etcd, checks the snapshot
with etcdutl, and writes it with the root CA, the service account key and the secret
encryption keys to a directory on the management plane (default: its data directory's
backups/) or to an S3 bucket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return flagError("name", "is required: the HostedCluster to back up", "example")
			}
			if backupName == "" {
				backupName = name + "-" + time.Now().UTC().Format("20060102-150405")
			}
			if errs := validation.IsDNS1123Subdomain(backupName); len(errs) > 0 {
				return flagError("backup-name", fmt.Sprintf("%q is not a valid name", backupName), "example-before-upgrade")
			}
			if wait && timeout <= 0 {
				return flagError("timeout", "must be positive with --wait", "10m")
			}
			storage, err := backupStorage(to, endpoint, region, credentials)
			if err != nil {
				return err
			}
			b := &hyperv1.HCPEtcdBackup{TypeMeta: metav1.TypeMeta{APIVersion: hyperv1.GroupVersion.String(), Kind: "HCPEtcdBackup"},
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: backupName, Labels: map[string]string{ManagedByLabel: managedBy}},
				Spec:       hyperv1.HCPEtcdBackupSpec{HostedCluster: corev1.LocalObjectReference{Name: name}, Storage: storage}}
			out := cmd.OutOrStdout()
			if render {
				y, err := apply.YAML(b)
				if err != nil {
					return err
				}
				_, err = out.Write(y)
				return err
			}
			m, err := connect(cmd.Context(), *kubeconfig)
			if err != nil {
				return err
			}
			if err := m.client.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: name}, &hyperv1.HostedCluster{}); apierrors.IsNotFound(err) {
				return flagError("name", fmt.Sprintf("no HostedCluster %q in namespace %q", name, namespace), "example")
			} else if err != nil {
				return err
			}
			if err := m.client.Create(cmd.Context(), b); err != nil {
				if apierrors.IsAlreadyExists(err) {
					return flagError("backup-name", fmt.Sprintf("HCPEtcdBackup %s/%s exists; a backup is taken once, so pick another name", namespace, backupName), name+"-2")
				}
				return err
			}
			fmt.Fprintf(out, "hcpetcdbackup %s/%s created\n", namespace, backupName)
			if !wait {
				return nil
			}
			return waitBackup(cmd.Context(), m.client, client.ObjectKeyFromObject(b), timeout, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the HostedCluster to back up")
	f.StringVar(&namespace, "namespace", "clusters", "namespace of the HostedCluster")
	f.StringVar(&backupName, "backup-name", "", "name of the HCPEtcdBackup (default <name>-<UTC time>)")
	f.StringVar(&to, "to", "", "where the archive goes: an absolute directory on the management plane, or s3://<bucket>[/<prefix>] (default: the management plane's data directory, backups/)")
	f.StringVar(&endpoint, "s3-endpoint", "", "URL of the S3-compatible store, for --to s3://...")
	f.StringVar(&region, "s3-region", "", "region of the bucket (default us-east-1)")
	f.StringVar(&credentials, "s3-credentials", "", "Secret in --namespace with keys aws_access_key_id and aws_secret_access_key, for --to s3://...")
	f.BoolVar(&wait, "wait", false, "wait until the archive is written, showing progress")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "how long --wait waits")
	f.BoolVar(&render, "render", false, "print the HCPEtcdBackup as YAML instead of creating it")
	return cmd
}

func waitBackup(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, out io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		b := &hyperv1.HCPEtcdBackup{}
		state := "the operator has not picked the backup up yet"
		if err := c.Get(ctx, key, b); err != nil {
			state = "reading the HCPEtcdBackup: " + err.Error()
		} else if cond := meta.FindStatusCondition(b.Status.Conditions, hyperv1.ConditionBackupCompleted); cond != nil {
			switch cond.Status {
			case metav1.ConditionTrue:
				fmt.Fprintf(out, "[%5.1fs] backup written: %s (%d bytes, sha256 %s)\n", time.Since(start).Seconds(), b.Status.URL, b.Status.Size, b.Status.SHA256)
				return nil
			case metav1.ConditionFalse:
				return fmt.Errorf("backup %s failed: %s: %s", key, cond.Reason, cond.Message)
			}
			state = cond.Message
		}
		if state != last {
			fmt.Fprintf(out, "[%5.1fs] waiting: %s\n", time.Since(start).Seconds(), state)
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for backup %s after %s; last state: %s (kubectl get hcpetcdbackup -n %s %s shows how it ends)",
				key, time.Since(start).Round(time.Second), last, key.Namespace, key.Name)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
