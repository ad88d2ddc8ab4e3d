// Package statusapply writes the status of Vidra's own objects with
// server-side apply. The controller is the only writer of those fields, so
// it needs no resourceVersion: a status write never fails because the spec
// or metadata changed since the informer saw the object.
package statusapply

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// Body is the apply patch setting the whole status of a cluster-scoped
// object of the v1alpha1 group. Fields left out of status are removed.
func Body(kind, name string, status any) ([]byte, error) {
	data, err := json.Marshal(map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"status":     status,
	})
	if err != nil {
		return nil, fmt.Errorf("encode status of %s %s: %w", kind, name, err)
	}
	return data, nil
}

// Options are the patch options for a status apply.
func Options() metav1.PatchOptions {
	force := true
	return metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force}
}
