package hub

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-dev/hcp/config/crd"
	"github.com/hcp-dev/hcp/internal/apply"
	"github.com/hcp-dev/hcp/internal/probe"
)

const (
	// Namespace holds hcp's own objects (leader election, operator state).
	Namespace = "hcp-system"
	// StorageClass is the default StorageClass: a directory per volume under
	// <data-dir>/volumes/local.
	StorageClass = "local"
	// LocalProvisioner is the provisioner of StorageClass.
	LocalProvisioner = "hcp.dev/local"
	// StorageClassPathParameter is the StorageClass parameter holding the directory.
	StorageClassPathParameter = "path"

	fieldOwner = "hcp"
)

// bootstrap installs what every management plane has: the CRDs, the hcp-system
// namespace and the default StorageClass. It is idempotent.
func bootstrap(ctx context.Context, cfg *rest.Config, volumes string) error {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, storagev1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("management API client: %w", err)
	}
	crds, err := crd.All()
	if err != nil {
		return err
	}
	var objs []client.Object
	for _, o := range crds {
		objs = append(objs, o)
	}
	objs = append(objs,
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: Namespace}},
		LocalStorageClass(filepath.Join(volumes, StorageClass)),
	)
	for _, o := range objs {
		if err := apply.Object(ctx, c, o, fieldOwner); err != nil {
			return err
		}
	}
	for _, o := range crds {
		name := o.Name
		if err := probe.Until(ctx, 50*time.Millisecond, "CRD "+name+" to be established", func(ctx context.Context) error {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
				return err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("not established yet")
		}); err != nil {
			return err
		}
	}
	return nil
}

// LocalStorageClass is the default StorageClass of a management plane whose
// volumes are directories under dir.
func LocalStorageClass(dir string) *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		TypeMeta: metav1.TypeMeta{APIVersion: "storage.k8s.io/v1", Kind: "StorageClass"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       LocalProvisioner,
		Parameters:        map[string]string{StorageClassPathParameter: dir},
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &binding,
	}
}
