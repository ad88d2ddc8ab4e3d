package manifest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestEquivalentServerDefaultedDeployment(t *testing.T) {
	desired := parseOne(t, string(readTestdata(t, "deployment-desired.yaml")))
	live := parseOne(t, string(readTestdata(t, "deployment-live.yaml")))
	assert.Assert(t, Equivalent(desired, live), "diff: %v", Diff(desired, live))
	assert.Assert(t, len(Diff(desired, live)) == 0)

	// Drift in live is seen.
	edits := []struct {
		path []string
		val  any
		want string
	}{
		{[]string{"spec", "replicas"}, int64(5), ".spec.replicas"},
		{[]string{"metadata", "labels", "app"}, "other", ".metadata.labels.app"},
		{[]string{"metadata", "annotations", "managed-by"}, nil, `.metadata.annotations["managed-by"]`},
		{[]string{"spec", "template", "spec", "containers"}, []any{}, ".spec.template.spec.containers"},
		{[]string{"spec", "selector", "matchLabels"}, map[string]any{"app": "shop", "x": "y"}, ""},
	}
	for _, e := range edits {
		l := live.DeepCopy()
		if e.val == nil {
			unstructured.RemoveNestedField(l.Object, e.path...)
		} else {
			assert.NilError(t, unstructured.SetNestedField(l.Object, e.val, e.path...))
		}
		if e.want == "" {
			assert.Assert(t, Equivalent(desired, l), "extra live fields are fine: %v", e.path)
			continue
		}
		assert.Assert(t, !Equivalent(desired, l), "%v", e.path)
		assert.DeepEqual(t, Diff(desired, l), []string{e.want})
	}

	// An image change deep in a list.
	l := live.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(l.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = "nginx:1.28"
	assert.NilError(t, unstructured.SetNestedSlice(l.Object, containers, "spec", "template", "spec", "containers"))
	assert.DeepEqual(t, Diff(desired, l), []string{".spec.template.spec.containers[0].image"})
}

func TestEquivalent(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n"
	const cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n  namespace: web\n"
	tests := []struct {
		name          string
		desired, live string
		diff          []string // nil means equivalent
	}{
		{
			name:    "identical",
			desired: cm + "data: {a: b}\n",
			live:    cm + "data: {a: b}\n",
		},
		{
			name:    "extra live keys",
			desired: cm + "data: {a: b}\n",
			live:    cm + "data: {a: b, c: d}\nimmutable: false\n",
		},
		{
			name:    "missing live key",
			desired: cm + "data: {a: b, c: d}\n",
			live:    cm + "data: {a: b}\n",
			diff:    []string{".data.c"},
		},
		{
			name:    "type change",
			desired: cm + "data: {a: \"1\"}\n",
			live:    cm + "data: {a: 1}\n",
			diff:    []string{".data.a"},
		},
		{
			name:    "numbers compare numerically",
			desired: cr + "spec: {num: 2, f: 0.5, big: 1e20}\n",
			live:    `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"a","namespace":"web"},"spec":{"num":2.0,"f":0.50,"big":100000000000000000000}}`,
		},
		{
			name:    "numbers differ",
			desired: cr + "spec: {num: 2}\n",
			live:    cr + "spec: {num: 2.5}\n",
			diff:    []string{".spec.num"},
		},
		{
			name:    "lists need the same length",
			desired: cr + "spec: {l: [1, 2]}\n",
			live:    cr + "spec: {l: [1, 2, 3]}\n",
			diff:    []string{".spec.l"},
		},
		{
			name:    "list elements are subsets",
			desired: cr + "spec: {l: [{name: a}]}\n",
			live:    cr + "spec: {l: [{name: a, default: x}]}\n",
		},
		{
			name:    "null equals missing",
			desired: cr + "spec: {a: null}\n",
			live:    cr + "spec: {}\n",
		},
		{
			name:    "null equals null",
			desired: cr + "spec: {a: null}\n",
			live:    cr + "spec: {a: null}\n",
		},
		{
			name:    "null does not equal a value",
			desired: cr + "spec: {a: null}\n",
			live:    cr + "spec: {a: 1}\n",
			diff:    []string{".spec.a"},
		},
		{
			name:    "value does not equal null",
			desired: cr + "spec: {a: 1}\n",
			live:    cr + "spec: {a: null}\n",
			diff:    []string{".spec.a"},
		},
		{
			name:    "empty list of a built-in kind is dropped by the server",
			desired: cm + "data: {}\nbinaryData: {}\nextra: []\n",
			live:    cm,
			diff:    []string{".binaryData", ".data"},
		},
		{
			name:    "empty list of a custom resource is kept by the server",
			desired: cr + "spec: {l: []}\n",
			live:    cr + "spec: {}\n",
			diff:    []string{".spec.l"},
		},
		{
			name:    "empty map is not the same as missing",
			desired: cr + "spec: {emptyDir: {}}\n",
			live:    cr + "spec: {}\n",
			diff:    []string{".spec.emptyDir"},
		},
		{
			name:    "empty labels and annotations equal none",
			desired: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n  labels: {}\n  annotations: {}\n",
			live:    cm,
		},
		{
			name:    "empty namespace equals none",
			desired: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  namespace: \"\"\n",
			live:    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n",
		},
		{
			name:    "server metadata and status are ignored",
			desired: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n  resourceVersion: \"1\"\n  uid: x\n  generation: 1\n  creationTimestamp: null\n  selfLink: /x\n  managedFields: []\nstatus: {phase: x}\n",
			live:    cm + "status: {phase: y}\n",
		},
		{
			name:    "labels differ",
			desired: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n  labels:\n    app.kubernetes.io/name: shop\n",
			live:    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\n  labels:\n    app.kubernetes.io/name: web\n",
			diff:    []string{`.metadata.labels["app.kubernetes.io/name"]`},
		},
		{
			name:    "apiVersion differs",
			desired: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\n",
			live:    "apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: a}\n",
			diff:    []string{".apiVersion"},
		},
		{
			name:    "quantities of built-in kinds compare by value",
			desired: "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {cpu: 0.5, memory: 1024Mi, pods: 10, requests.storage: 1000Gi}\n",
			live:    "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {cpu: 500m, memory: 1Gi, pods: \"10\", requests.storage: 1000Gi}\n",
		},
		{
			name:    "quantities that differ",
			desired: "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {cpu: 0.5, memory: 1G}\n",
			live:    "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {cpu: 600m, memory: 1Gi}\n",
			diff:    []string{".spec.hard.cpu", ".spec.hard.memory"},
		},
		{
			name:    "quantities of custom resources compare literally",
			desired: cr + "spec: {resources: {limits: {cpu: 0.5}}}\n",
			live:    cr + "spec: {resources: {limits: {cpu: 500m}}}\n",
			diff:    []string{".spec.resources.limits.cpu"},
		},
		{
			name:    "quantity-like values elsewhere compare literally",
			desired: cm + "data: {cpu: \"0.5\"}\n",
			live:    cm + "data: {cpu: 500m}\n",
			diff:    []string{".data.cpu"},
		},
		{
			name:    "secret stringData against data",
			desired: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {user: admin, password: hunter2}\ndata: {user: b3RoZXI=, token: dG9r}\n",
			live:    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ndata: {user: YWRtaW4=, password: aHVudGVyMg==, token: dG9r}\n",
		},
		{
			name:    "secret stringData changed",
			desired: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {user: admin, password: hunter3}\n",
			live:    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {user: YWRtaW4=, password: aHVudGVyMg==}\n",
			diff:    []string{".stringData.password"},
		},
		{
			name:    "secret data changed",
			desired: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMw==}\n",
			live:    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n",
			diff:    []string{".data.password"},
		},
		{
			name:    "stringData of a custom kind compares literally",
			desired: cr + "stringData: {a: b}\n",
			live:    cr + "data: {a: Yg==}\n",
			diff:    []string{".stringData"},
		},
		{
			name:    "map against scalar",
			desired: cr + "spec: {a: {b: c}}\n",
			live:    cr + "spec: {a: x}\n",
			diff:    []string{".spec.a"},
		},
		{
			name:    "booleans",
			desired: cr + "spec: {a: true, b: false}\n",
			live:    cr + "spec: {a: true, b: \"false\"}\n",
			diff:    []string{".spec.b"},
		},
		{
			name:    "odd keys are quoted",
			desired: cr + "spec: {\"a b\": 1, \"1x\": 2, _ok: 3, \"\": 4}\n",
			live:    cr + "spec: {}\n",
			diff:    []string{".spec._ok", `.spec[""]`, `.spec["1x"]`, `.spec["a b"]`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			desired, live := parseOne(t, tc.desired), parseOne(t, tc.live)
			assert.Equal(t, Equivalent(desired, live), tc.diff == nil)
			assert.DeepEqual(t, Diff(desired, live), tc.diff)
		})
	}
}

func TestEquivalentGoTypes(t *testing.T) {
	// Objects built in code may hold other Go number types.
	desired := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "a"},
		"spec":     map[string]any{"a": 2, "b": int32(3), "c": json.Number("4"), "d": float32(0.5), "e": uint64(7), "f": []string{"x"}},
	}}
	live := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "a"},
		"spec":     map[string]any{"a": int64(2), "b": float64(3), "c": int64(4), "d": 0.5, "e": int64(7), "f": []string{"x"}},
	}}
	assert.Assert(t, Equivalent(desired, live), "%v", Diff(desired, live))
	live.Object["spec"].(map[string]any)["f"] = []string{"y"}
	assert.DeepEqual(t, Diff(desired, live), []string{".spec.f"})
}

func TestEquivalentNil(t *testing.T) {
	u := parseOne(t, hashBase)
	assert.Assert(t, !Equivalent(nil, u))
	assert.Assert(t, !Equivalent(u, nil))
	assert.DeepEqual(t, Diff(u, nil), []string{"."})
	assert.DeepEqual(t, Diff(nil, nil), []string(nil))
}

func TestDiffIsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  k%02d: %d\n", i, i)
	}
	desired := parseOne(t, b.String())
	live := parseOne(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n")
	got := Diff(desired, live)
	assert.DeepEqual(t, got, []string{".spec"})
	live = parseOne(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {}\n")
	got = Diff(desired, live)
	assert.Equal(t, len(got), MaxDiffPaths+1)
	assert.Equal(t, got[0], ".spec.k00")
	assert.Equal(t, got[MaxDiffPaths], "(12 more)")
}

func TestEquivalentDoesNotModify(t *testing.T) {
	desired := parseOne(t, string(readTestdata(t, "deployment-desired.yaml")))
	live := parseOne(t, string(readTestdata(t, "deployment-live.yaml")))
	d0, l0 := desired.DeepCopy(), live.DeepCopy()
	Equivalent(desired, live)
	Diff(desired, live)
	ContentHash(desired)
	assert.DeepEqual(t, desired.Object, d0.Object)
	assert.DeepEqual(t, live.Object, l0.Object)
}
