package ownership

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

func TestOwnersAreNormalized(t *testing.T) {
	u := &unstructured.Unstructured{}
	// The earlier operator let the list grow with repeats.
	u.SetAnnotations(map[string]string{v1alpha1.AnnotationOwnedBy: "b,a,,b, a ,c"})
	assert.DeepEqual(t, Owners(u), []string{"a", "b", "c"})
	assert.DeepEqual(t, With([]string{"a", "c"}, "b"), []string{"a", "b", "c"})
	assert.DeepEqual(t, With([]string{"a", "b"}, "b"), []string{"a", "b"})
	assert.DeepEqual(t, Without([]string{"a", "b"}, "a"), []string{"b"})
	assert.Assert(t, Has([]string{"a", "b"}, "b"))
	assert.Assert(t, !Has([]string{"a", "b"}, "c"))
}

func TestMarkOwnedKeepsUserMetadata(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetLabels(map[string]string{"app": "web"})
	u.SetAnnotations(map[string]string{"note": "x"})
	Mark(u, []string{"a", "b"}, "hash")
	assert.DeepEqual(t, u.GetLabels(), map[string]string{"app": "web", v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	assert.Equal(t, u.GetAnnotations()["note"], "x")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationOwnedBy], "a,b")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationContentHash], "hash")
	assert.Assert(t, Managed(u))
}
