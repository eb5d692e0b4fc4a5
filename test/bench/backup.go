package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/backup"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/release"
)

// backups measures a backup of a hosted cluster holding objects ConfigMaps
// (1 KiB each): an HCPEtcdBackup from creation to BackupCompleted, and the
// archive's size, next to what etcdctl snapshot save does (a snapshot of the
// same etcd through its client maintenance API to a file) followed by
// etcdutl snapshot status, in the same run.
func backups(bin string, objects int) error {
	rel, err := release.Store{Dir: filepath.Join(bin, "release")}.Default()
	if err != nil {
		return err
	}
	up, err := startUpForClusters(bin)
	if err != nil {
		return err
	}
	defer up.stop()
	ctx := context.Background()
	name := "backup"
	if _, _, err := createCluster(ctx, up.client, rel, name, hyperv1.SingleReplica, up.dir); err != nil {
		return err
	}
	sec := &corev1.Secret{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name + "-admin-kubeconfig"}, sec); err != nil {
		return err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(sec.Data["kubeconfig"])
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := fill(ctx, cs, objects); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %d ConfigMaps in %.1fs\n", objects, time.Since(start).Seconds())

	// Baseline: the snapshot etcdctl snapshot save takes, and etcdutl's check.
	ep, tlsConfig, err := etcdOf(ctx, up, name)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hcp-bench-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	snap := filepath.Join(dir, "snapshot.db")
	start = time.Now()
	if err := snapshotSave(ctx, ep, tlsConfig, snap); err != nil {
		return fmt.Errorf("baseline snapshot: %w", err)
	}
	if _, err := backup.Verify(ctx, rel.Binary(release.Etcdutl), snap); err != nil {
		return err
	}
	base := time.Since(start)
	info, err := os.Stat(snap)
	if err != nil {
		return err
	}

	b := &hyperv1.HCPEtcdBackup{ObjectMeta: metav1.ObjectMeta{Namespace: "clusters", Name: "bench"},
		Spec: hyperv1.HCPEtcdBackupSpec{HostedCluster: corev1.LocalObjectReference{Name: name}, Storage: hyperv1.EtcdBackupStorage{Type: hyperv1.LocalBackupStorage}}}
	start = time.Now()
	if err := up.client.Create(ctx, b); err != nil {
		return err
	}
	for deadline := start.Add(10 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if err := up.client.Get(ctx, client.ObjectKeyFromObject(b), b); err == nil {
			if c := meta.FindStatusCondition(b.Status.Conditions, hyperv1.ConditionBackupCompleted); c != nil && c.Status == metav1.ConditionTrue {
				break
			} else if c != nil && c.Status == metav1.ConditionFalse {
				return fmt.Errorf("the backup failed: %s", c.Message)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the backup did not complete in 10 minutes")
		}
	}
	took := time.Since(start)

	// Restore: etcdutl alone, then the whole cluster from the archive.
	start = time.Now()
	if err := backup.RestoreData(ctx, rel.Binary(release.Etcdutl), snap, filepath.Join(dir, "restored"),
		backup.Member{Name: "m", InitialCluster: "m=http://127.0.0.1:2380", Token: "bench", PeerURL: "http://127.0.0.1:2380"}); err != nil {
		return err
	}
	baseRestore := time.Since(start)
	hc := &hyperv1.HostedCluster{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name}, hc); err != nil {
		return err
	}
	infraID := hc.Spec.InfraID
	if _, err := deleteCluster(ctx, up.client, name, up.dir); err != nil {
		return err
	}
	restored, _, err := createClusterWith(ctx, up.client, rel, name, hyperv1.SingleReplica, up.dir, func(hc *hyperv1.HostedCluster) {
		hc.Spec.InfraID = infraID
		hc.Spec.Etcd.Managed = &hyperv1.ManagedEtcdSpec{Storage: hyperv1.ManagedEtcdStorageSpec{Type: "PersistentVolume", RestoreSnapshotURL: []string{b.Status.URL}}}
	})
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: "clusters", Name: name + "-admin-kubeconfig"}, sec); err != nil {
		return err
	}
	if cfg, err = clientcmd.RESTConfigFromKubeConfig(sec.Data["kubeconfig"]); err != nil {
		return err
	}
	if cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	cms, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil || len(cms.Items) < objects {
		got := 0
		if cms != nil {
			got = len(cms.Items)
		}
		return fmt.Errorf("after the restore %d ConfigMaps (want %d): %v", got, objects, err)
	}

	fmt.Printf("\n## Backup and restore of a hosted cluster with %d ConfigMaps (1 KiB each)\n\n", objects)
	fmt.Printf("| | hcp | baseline | ratio | size |\n|---|---|---|---|---|\n")
	fmt.Printf("| backup: HCPEtcdBackup created -> BackupCompleted (snapshot, etcdutl check, archive with CA and keys, to the data directory) vs etcdctl snapshot save + etcdutl snapshot status | %.2fs | %.2fs | %.2fx | archive %s (gzip), snapshot %s |\n",
		took.Seconds(), base.Seconds(), ratio(took.Seconds(), base.Seconds()), mib(b.Status.Size), mib(info.Size()))
	fmt.Printf("| restore: HostedCluster created from the archive -> Available vs etcdutl snapshot restore alone | %.2fs | %.2fs | %.2fx | |\n",
		restored.Seconds(), baseRestore.Seconds(), ratio(restored.Seconds(), baseRestore.Seconds()))
	fmt.Printf("\nThe restore's baseline only writes a data directory; hcp's figure also starts the control plane (etcd, kube-apiserver, controllers) until the cluster is Available.\n\n")
	fmt.Printf("backup of %d objects: hcp %.2fs vs snapshot save + status %.2fs (%.2fx), archive %s vs snapshot %s; restore to Available %.2fs vs etcdutl snapshot restore %.2fs\n",
		objects, took.Seconds(), base.Seconds(), ratio(took.Seconds(), base.Seconds()), mib(b.Status.Size), mib(info.Size()), restored.Seconds(), baseRestore.Seconds())
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// fill creates n ConfigMaps of 1 KiB in the hosted cluster, 16 at a time.
func fill(ctx context.Context, cs *kubernetes.Clientset, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	data := strings.Repeat("x", 1024)
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + strconv.FormatInt(i, 10)}, Data: map[string]string{"d": data}}
				if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// etcdOf finds a cluster's etcd client URL (from its member's command line)
// and a TLS configuration with the control plane's etcd client certificate.
func etcdOf(ctx context.Context, up *upInstance, name string) (string, *tls.Config, error) {
	cpns := "clusters-" + name
	s := &corev1.Secret{}
	if err := up.client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: controlplane.SecretEtcdClient}, s); err != nil {
		return "", nil, err
	}
	pair, err := tls.X509KeyPair(s.Data[controlplane.KeyCert], s.Data[controlplane.KeyKey])
	if err != nil {
		return "", nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.Data[controlplane.KeyCA])
	for _, pid := range controlPlanePids(filepath.Join(up.dir, "controlplanes", cpns)) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if u, ok := strings.CutPrefix(a, "--listen-client-urls="); ok {
				return u, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
			}
		}
	}
	return "", nil, fmt.Errorf("no etcd member of %s runs", cpns)
}

// snapshotSave is what etcdctl snapshot save does: stream the snapshot
// through the client maintenance API into a file.
func snapshotSave(ctx context.Context, ep string, tlsConfig *tls.Config, path string) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tlsConfig, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(rc); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
