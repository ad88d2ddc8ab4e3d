package ownership

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

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

func TestRecordReadsBothFormats(t *testing.T) {
	legacy := &unstructured.Unstructured{}
	legacy.SetAnnotations(map[string]string{v1alpha1.AnnotationOwnedBy: "b,a,,b", v1alpha1.AnnotationContentHash: "h1"})
	assert.DeepEqual(t, ReadRecord(legacy), Record{"a": {Hash: "h1"}, "b": {Hash: "h1"}})

	u := &unstructured.Unstructured{}
	MarkRecord(u, Record{"a": {UID: "u1", Hash: "h1"}, "b": {UID: "u2", Hash: "h2"}}, "h1")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationOwnedBy], "a,b")
	assert.Equal(t, u.GetAnnotations()[v1alpha1.AnnotationOwners], `{"a":{"uid":"u1","hash":"h1"},"b":{"uid":"u2","hash":"h2"}}`)
	assert.DeepEqual(t, ReadRecord(u), Record{"a": {UID: "u1", Hash: "h1"}, "b": {UID: "u2", Hash: "h2"}})
	assert.DeepEqual(t, Owners(u), []string{"a", "b"})
}

func TestDecide(t *testing.T) {
	live := &unstructured.Unstructured{}
	MarkRecord(live, Record{"a": {UID: "u1", Hash: "gold"}, "b": {UID: "u2", Hash: "gold"}, "gone": {UID: "u9", Hash: "gold"}}, "gold")
	alive := func(name string, uid types.UID) bool { return name != "gone" }

	d := Decide(live, Owner{Name: "a", UID: "u1"}, "silver", false, alive)
	assert.Equal(t, d.Verdict, Conflict)
	assert.DeepEqual(t, d.Disagreeing, []string{"b"})
	assert.DeepEqual(t, d.Record, Record{"a": {UID: "u1", Hash: "silver"}, "b": {UID: "u2", Hash: "gold"}})

	d = Decide(live, Owner{Name: "a", UID: "u1"}, "gold", false, alive)
	assert.Equal(t, d.Verdict, Write)
	assert.DeepEqual(t, d.Record, Record{"a": {UID: "u1", Hash: "gold"}, "b": {UID: "u2", Hash: "gold"}})

	assert.Equal(t, Decide(&unstructured.Unstructured{}, Owner{Name: "a"}, "h", false, alive).Verdict, NotOwned)
	assert.Equal(t, Decide(&unstructured.Unstructured{}, Owner{Name: "a"}, "h", true, alive).Verdict, Write)
	assert.DeepEqual(t, Decide(nil, Owner{Name: "a", UID: "u1"}, "h", false, alive).Record, Record{"a": {UID: "u1", Hash: "h"}})
}
