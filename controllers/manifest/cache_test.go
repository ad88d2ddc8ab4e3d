package manifest

import (
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

var _ cache.TransformFunc = StripForCache

func TestStripForCacheUnstructured(t *testing.T) {
	live := parseOne(t, string(readTestdata(t, "deployment-live.yaml")))
	live.SetAnnotations(map[string]string{
		LastAppliedAnnotation:               `{"kind":"Deployment"}`,
		"deployment.kubernetes.io/revision": "3",
	})
	want := live.DeepCopy()
	unstructured.RemoveNestedField(want.Object, "metadata", "managedFields")
	want.SetAnnotations(map[string]string{"deployment.kubernetes.io/revision": "3"})

	got, err := StripForCache(live)
	assert.NilError(t, err)
	assert.Assert(t, got == any(live), "changed in place")
	assert.DeepEqual(t, got.(*unstructured.Unstructured).Object, want.Object)

	again, err := StripForCache(got)
	assert.NilError(t, err)
	assert.DeepEqual(t, again.(*unstructured.Unstructured).Object, want.Object)
}

func TestStripForCacheEdgeCases(t *testing.T) {
	// Only the last-applied annotation: the empty map goes too.
	u := parseOne(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{}'\n")
	_, err := StripForCache(u)
	assert.NilError(t, err)
	_, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "annotations")
	assert.Assert(t, !found)

	// A non-string annotation must not cost the others.
	u = &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{
		"name":        "a",
		"annotations": map[string]any{"x": int64(1), "y": "z", LastAppliedAnnotation: "{}"},
	}}}
	_, err = StripForCache(u)
	assert.NilError(t, err)
	assert.DeepEqual(t, u.Object["metadata"].(map[string]any)["annotations"], map[string]any{"x": int64(1), "y": "z"})

	// No metadata at all, and a nil object.
	u = &unstructured.Unstructured{Object: map[string]any{"kind": "X"}}
	_, err = StripForCache(u)
	assert.NilError(t, err)
	var none *unstructured.Unstructured
	got, err := StripForCache(none)
	assert.NilError(t, err)
	assert.Assert(t, got == any(none))
}

func TestStripForCacheTyped(t *testing.T) {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name:          "a",
		Annotations:   map[string]string{LastAppliedAnnotation: "{}", "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "vidra"}},
	}}
	_, err := StripForCache(m)
	assert.NilError(t, err)
	assert.Assert(t, m.ManagedFields == nil)
	assert.DeepEqual(t, m.Annotations, map[string]string{"keep": "me"})

	m.Annotations = map[string]string{LastAppliedAnnotation: "{}"}
	_, err = StripForCache(m)
	assert.NilError(t, err)
	assert.Assert(t, m.Annotations == nil)
}

func TestStripForCacheLeavesTombstones(t *testing.T) {
	inner := parseOne(t, string(readTestdata(t, "deployment-live.yaml")))
	before := inner.DeepCopy()
	tomb := cache.DeletedFinalStateUnknown{Key: "web-shop/shop", Obj: inner}
	got, err := StripForCache(tomb)
	assert.NilError(t, err)
	assert.DeepEqual(t, got, any(tomb))
	assert.DeepEqual(t, inner.Object, before.Object)

	got, err = StripForCache("not an object")
	assert.NilError(t, err)
	assert.Equal(t, got, any("not an object"))
}
