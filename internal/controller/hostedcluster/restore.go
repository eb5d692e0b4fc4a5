package hostedcluster

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/release"
)

// ReasonRestoreSnapshotInvalid: the archive spec.etcd.managed.storage.restoreSnapshotURL
// names cannot be restored.
const ReasonRestoreSnapshotInvalid = "RestoreSnapshotInvalid"

// restoreURL is the backup archive a HostedCluster is to start from, or "".
func restoreURL(hc *hyperv1.HostedCluster) string {
	if m := hc.Spec.Etcd.Managed; m != nil && len(m.Storage.RestoreSnapshotURL) > 0 {
		return m.Storage.RestoreSnapshotURL[0]
	}
	return ""
}

// fetchRestore reads and checks the archive a new HostedCluster starts from,
// unpacking its snapshot where the control plane's etcd is restored from. A
// problem is returned for an archive that cannot be used; then nothing is
// created.
func (r *Reconciler) fetchRestore(ctx context.Context, hc *hyperv1.HostedCluster, rel *release.Release, cpns string) (*backup.Contents, *problem) {
	u := restoreURL(hc)
	bad := func(format string, args ...any) *problem {
		return &problem{hyperv1.ConditionValidConfiguration, ReasonRestoreSnapshotInvalid,
			"spec.etcd.managed.storage.restoreSnapshotURL: " + fmt.Sprintf(format, args...)}
	}
	if r.DataDir == "" {
		return nil, bad("this operator has no data directory to restore into")
	}
	if r.RemoteRestore {
		if err := backup.CheckPodURL(u); err != nil {
			return nil, bad("%v; nothing was created", err)
		}
	}
	dir := backup.RestoreDir(r.DataDir, cpns)
	refuse := func(format string, args ...any) *problem {
		_ = os.RemoveAll(dir)
		return bad(format, args...)
	}
	contents, err := backup.Fetch(ctx, u, dir)
	if err != nil {
		return nil, refuse("%s: %v; nothing was created", u, err)
	}
	if m := contents.Manifest; m.InfraID != hc.Spec.InfraID {
		return nil, refuse("the archive is of a cluster with infraID %q (%s), this one's is %q; set spec.infraID: %s to restore it, or name another archive",
			m.InfraID, m.Cluster, hc.Spec.InfraID, m.InfraID)
	}
	if rel != nil {
		if _, err := backup.Verify(ctx, rel.Binary(release.Etcdutl), contents.SnapshotPath); err != nil {
			return nil, refuse("the archive's snapshot is not a whole etcd database: %v", err)
		}
	}
	return contents, nil
}

// restoreSecrets writes the archive's Secrets (root CA, service account key,
// encryption keys) into the control plane namespace before the control
// plane exists, so that it keeps them instead of making new ones.
func (r *Reconciler) restoreSecrets(ctx context.Context, hc *hyperv1.HostedCluster, cpns string, contents *backup.Contents) error {
	for _, s := range contents.Secrets {
		dst := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cpns, Name: s.Name}}
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, dst, func() error {
			dst.Labels = map[string]string{hosted.ManagedLabel: hc.Name}
			dst.Annotations = s.Annotations
			dst.Type, dst.Data = s.Type, s.Data
			return nil
		}); err != nil {
			return fmt.Errorf("restoring secret %s: %w", s.Name, err)
		}
	}
	return nil
}
