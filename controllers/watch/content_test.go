package watch

import (
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

func deploymentObj() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			"name":            "web",
			"namespace":       "ns",
			"resourceVersion": "10",
			"generation":      int64(1),
			"labels":          map[string]any{"managed-by": "vidra"},
			"annotations":     map[string]any{v1alpha1.AnnotationOwnedBy: "a,b"},
			"managedFields":   []any{map[string]any{"manager": "vidra"}},
		},
		"spec":   map[string]any{"replicas": int64(1)},
		"status": map[string]any{"readyReplicas": int64(0)},
	}}
}

func TestContentChanged(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(u *unstructured.Unstructured)
		want   bool
	}{
		{"nothing", func(*unstructured.Unstructured) {}, false},
		{"status", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, int64(1), "status", "readyReplicas")
		}, false},
		{"status removed", func(u *unstructured.Unstructured) { delete(u.Object, "status") }, false},
		{"resourceVersion", func(u *unstructured.Unstructured) { u.SetResourceVersion("11") }, false},
		{"generation", func(u *unstructured.Unstructured) { u.SetGeneration(2) }, false},
		{"managedFields", func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		}, false},
		{"spec", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, int64(2), "spec", "replicas")
		}, true},
		{"label value", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"managed-by": "x"}) }, true},
		{"annotation added", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{v1alpha1.AnnotationOwnedBy: "a,b", "x": "y"})
		}, true},
		{"annotations removed", func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		}, true},
		{"finalizer", func(u *unstructured.Unstructured) { u.SetFinalizers([]string{"f"}) }, true},
		{"new top-level field", func(u *unstructured.Unstructured) { u.Object["data"] = map[string]any{"k": "v"} }, true},
		{"spec removed", func(u *unstructured.Unstructured) { delete(u.Object, "spec") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := deploymentObj()
			n := old.DeepCopy()
			tt.mutate(n)
			if got := contentChanged(mustCompact(t, old), mustCompact(t, n)); got != tt.want {
				t.Errorf("contentChanged(old, new) = %v, want %v", got, tt.want)
			}
			if got := contentChanged(mustCompact(t, n), mustCompact(t, old)); got != tt.want {
				t.Errorf("contentChanged(new, old) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwnersOf(t *testing.T) {
	withOwners := func(v string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetAnnotations(map[string]string{v1alpha1.AnnotationOwnedBy: v})
		return u
	}
	tests := []struct {
		name string
		objs []*unstructured.Unstructured
		want []string
	}{
		{"none", []*unstructured.Unstructured{{Object: map[string]any{}}}, nil},
		{"nil object", []*unstructured.Unstructured{nil, withOwners("a")}, []string{"a"}},
		{"one", []*unstructured.Unstructured{withOwners("b,a")}, []string{"a", "b"}},
		{"spaces and empties", []*unstructured.Unstructured{withOwners(" a , ,b,")}, []string{"a", "b"}},
		{"union", []*unstructured.Unstructured{withOwners("a,b"), withOwners("b,c")}, []string{"a", "b", "c"}},
		{"owner removed", []*unstructured.Unstructured{withOwners("a,b"), withOwners("a")}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cached []*cachedObject
			for _, o := range tt.objs {
				if o == nil {
					cached = append(cached, nil)
					continue
				}
				cached = append(cached, mustCompact(t, o))
			}
			if got := ownersOf(cached...); !slices.Equal(got, tt.want) {
				t.Errorf("ownersOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStripTransform(t *testing.T) {
	u := deploymentObj()
	u.SetAnnotations(map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
		"deployment.kubernetes.io/revision":                "3",
		"keep":                                             "me",
	})
	for range 2 { // idempotent
		out, err := StripTransform(u)
		if err != nil {
			t.Fatal(err)
		}
		if out != any(u) {
			t.Fatal("StripTransform returned a different object")
		}
		if u.GetManagedFields() != nil {
			t.Error("managedFields kept")
		}
		if _, found := u.Object["status"]; found {
			t.Error("status kept")
		}
		if got := u.GetAnnotations(); len(got) != 1 || got["keep"] != "me" {
			t.Errorf("annotations = %v, want only keep=me", got)
		}
	}

	u.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"})
	if _, err := StripTransform(u); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "annotations"); found {
		t.Error("empty annotations map kept")
	}

	// A non-string annotation must not cost the others.
	u = &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{
		"name":        "a",
		"annotations": map[string]any{"x": int64(1), "y": "z", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
	}}}
	if _, err := StripTransform(u); err != nil {
		t.Fatal(err)
	}
	if got := u.Object["metadata"].(map[string]any)["annotations"]; !reflect.DeepEqual(got, map[string]any{"x": int64(1), "y": "z"}) {
		t.Errorf("annotations = %v", got)
	}

	tomb := cache.DeletedFinalStateUnknown{Key: "ns/x"}
	if out, err := StripTransform(tomb); err != nil || out != any(tomb) {
		t.Errorf("tombstone: got %v, %v; want it unchanged", out, err)
	}
}

func BenchmarkContentChanged(b *testing.B) {
	old := deploymentObj()
	n := old.DeepCopy()
	n.SetResourceVersion("11")
	_ = unstructured.SetNestedField(n.Object, int64(1), "status", "readyReplicas")
	a, c := mustCompact(b, old), mustCompact(b, n)
	b.ReportAllocs()
	for b.Loop() {
		if contentChanged(a, c) {
			b.Fatal("changed")
		}
	}
}

func mustCompact(t testing.TB, u *unstructured.Unstructured) *cachedObject {
	t.Helper()
	c, err := compact(u)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What Get returns is the transformed object, numbers as int64 included:
// only status gives way to the health record.
func TestCachedObjectRoundTrip(t *testing.T) {
	u := deploymentObj()
	if _, err := HealthTransform(u); err != nil {
		t.Fatal(err)
	}
	c := mustCompact(t, u)
	got, err := c.object()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Object, u.Object) {
		t.Errorf("decoded cached object differs:\n got %v\nwant %v", got.Object, u.Object)
	}
	if want, _ := healthRecord(u); c.healthOf() != want {
		t.Errorf("health %v, want %v", c.healthOf(), want)
	}
	copied := c.DeepCopyObject().(*cachedObject)
	copied.Name = "other"
	if c.Name == "other" {
		t.Error("DeepCopyObject shares the metadata")
	}
}
