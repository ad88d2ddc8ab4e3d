package vidraresource

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
	assert.DeepEqual(t, ownersOf(u), []string{"a", "b", "c"})
	assert.DeepEqual(t, withOwner([]string{"a", "c"}, "b"), []string{"a", "b", "c"})
	assert.DeepEqual(t, withOwner([]string{"a", "b"}, "b"), []string{"a", "b"})
	assert.DeepEqual(t, withoutOwner([]string{"a", "b"}, "a"), []string{"b"})
	assert.Assert(t, hasOwner([]string{"a", "b"}, "b"))
	assert.Assert(t, !hasOwner([]string{"a", "b"}, "c"))
}

func TestMarkOwnedKeepsUserMetadata(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetLabels(map[string]string{"app": "web"})
	u.SetAnnotations(map[string]string{"note": "x"})
	markOwned(u, []string{"a", "b"}, "hash")
	assert.DeepEqual(t, u.GetLabels(), map[string]string{"app": "web", v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	assert.Equal(t, u.GetAnnotations()["note"], "x")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationOwnedBy], "a,b")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationContentHash], "hash")
	assert.Assert(t, managedByVidra(u))
}

func TestMergeInventoryKeepsOldAndIdentifiesByGroupKind(t *testing.T) {
	old := []v1alpha1.ManagedResource{
		{APIVersion: "networking.k8s.io/v1beta1", Group: "networking.k8s.io", Version: "v1beta1", Kind: "Ingress", Namespace: "n", Name: "i", Resource: "ingresses"},
		{APIVersion: "v1", Kind: "Service", Namespace: "n", Name: "gone", Version: "v1", Resource: "services"},
	}
	next := []v1alpha1.ManagedResource{
		{APIVersion: "networking.k8s.io/v1", Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Namespace: "n", Name: "i", Resource: "ingresses"},
	}
	merged := mergeInventory(old, next)
	assert.Equal(t, len(merged), 2, "an apiVersion change is the same object")
	for _, m := range merged {
		if m.Kind == "Ingress" {
			assert.Equal(t, m.Version, "v1")
		}
	}
}
