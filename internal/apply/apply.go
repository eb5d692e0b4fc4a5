// Package apply writes objects with server-side apply under a field owner, the
// way kubectl apply --server-side does, and renders them as YAML the same way.
package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Unstructured converts a typed object into the form that is applied: no status,
// no server-set metadata.
func Unstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
		if len(md) == 0 {
			delete(m, "metadata")
		}
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// Object server-side applies obj as owner, taking over fields others set.
func Object(ctx context.Context, c client.Client, obj client.Object, owner string) error {
	u, err := Unstructured(obj)
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(owner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// YAML renders objects as a multi-document YAML stream with sorted keys.
func YAML(objs ...runtime.Object) ([]byte, error) {
	var out []byte
	for i, o := range objs {
		u, err := Unstructured(o)
		if err != nil {
			return nil, err
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
