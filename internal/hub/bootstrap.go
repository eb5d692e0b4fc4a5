package hub

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

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
// namespace and the default StorageClass, and returns once every CRD serves
// its objects. It is idempotent.
func bootstrap(ctx context.Context, cfg *rest.Config, check *probe.Client, volumes string) error {
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
	// All at once: the API server establishes them in parallel.
	var g errgroup.Group
	for _, o := range objs {
		g.Go(func() error { return apply.Object(ctx, c, o, fieldOwner) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return served(ctx, check, cfg.Host)
}

// served waits until every CRD serves its objects and discovery lists it:
// every 20ms it asks, one request after another on one connection, for what
// is not served yet. That is later than Established: the API server sets up a
// custom resource's storage on its first request and answers 429 with
// Retry-After: 1 while it does, which client-go obeys, a second per resource
// type for the operator's informers. The storage is ready in milliseconds;
// asking without that wait has every type ready at once. (Asking for all at
// once instead would open a TLS connection per request, whose handshakes the
// starting API server pays for.)
func served(ctx context.Context, check *probe.Client, server string) error {
	crds, err := crd.All()
	if err != nil {
		return err
	}
	// The resources each group version must list, and those to ask for.
	pending := map[string][]string{}
	var order []string
	for _, o := range crds {
		version := o.Spec.Versions[0].Name
		for _, v := range o.Spec.Versions {
			if v.Storage {
				version = v.Name
			}
		}
		groupVersion := server + "/apis/" + o.Spec.Group + "/" + version
		if _, ok := pending[groupVersion]; !ok {
			order = append(order, groupVersion)
		}
		pending[groupVersion] = append(pending[groupVersion], o.Spec.Names.Plural)
	}
	return probe.Until(ctx, 20*time.Millisecond, "the CRDs to be served", func(ctx context.Context) error {
		var first error
		for _, groupVersion := range order {
			plurals := pending[groupVersion]
			if len(plurals) == 0 {
				continue
			}
			// Discovery lists it (clients map kinds to resources by it)
			// and its storage answers.
			body, err := check.Get(ctx, groupVersion)
			if err != nil {
				first = cmp.Or(first, err)
				continue
			}
			var left []string
			for _, plural := range plurals {
				if !bytes.Contains(body, []byte(`"name":"`+plural+`"`)) {
					first = cmp.Or(first, fmt.Errorf("discovery of %s does not list %s yet", groupVersion, plural))
					left = append(left, plural)
				} else if err := check.Check(ctx, groupVersion+"/"+plural+"?limit=1"); err != nil {
					first = cmp.Or(first, err)
					left = append(left, plural)
				}
			}
			pending[groupVersion] = left
		}
		return first
	})
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
