package manifest

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		u    *unstructured.Unstructured
		want Key
		str  string
	}{
		{obj("apps/v1", "Deployment", "web", "shop"), Key{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "shop"}, "Deployment.apps web/shop"},
		{obj("v1", "Namespace", "", "web"), Key{Kind: "Namespace", Name: "web"}, "Namespace web"},
		{obj("v1", "Secret", "web", "creds"), Key{Kind: "Secret", Namespace: "web", Name: "creds"}, "Secret web/creds"},
		{obj("networking.k8s.io/v1beta1", "Ingress", "web", "shop"), Key{Group: "networking.k8s.io", Kind: "Ingress", Namespace: "web", Name: "shop"}, "Ingress.networking.k8s.io web/shop"},
		{nil, Key{}, " "},
	}
	for _, tc := range tests {
		got := KeyOf(tc.u)
		assert.DeepEqual(t, got, tc.want)
		assert.Equal(t, got.String(), tc.str)
	}
}

func TestKeyIgnoresVersion(t *testing.T) {
	a := KeyOf(obj("networking.k8s.io/v1beta1", "Ingress", "web", "shop"))
	b := KeyOf(obj("networking.k8s.io/v1", "Ingress", "web", "shop"))
	assert.Equal(t, a, b)
	assert.Equal(t, a.GroupKind(), schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"})
}

func TestDuplicates(t *testing.T) {
	docs, err := Parse([]byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: web
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a
    namespace: other
- apiVersion: v1
  kind: Secret
  metadata:
    name: a
    namespace: web
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  namespace: web
`))
	assert.NilError(t, err)
	assert.NilError(t, Duplicates(docs), "before defaulting, no namespace is its own key")

	// The caller defaults namespaces, then asks.
	for _, d := range docs {
		if d.Object.GetNamespace() == "" {
			d.Object.SetNamespace("web")
		}
	}
	assert.DeepEqual(t, problems(Duplicates(docs)), []string{
		"document 3 (line 21): ConfigMap web/a is already declared by document 1",
	})

	// A different version of the same object is still a duplicate.
	docs, err = Parse([]byte(`apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1beta1
  kind: Ingress
  metadata: {name: a, namespace: web}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: a, namespace: web}
`))
	assert.NilError(t, err)
	assert.Error(t, Duplicates(docs), "document 1 (line 1), item 2: Ingress.networking.k8s.io web/a is already declared by document 1 (item 1)")
	assert.NilError(t, Duplicates(nil))
}

func TestSecretSafe(t *testing.T) {
	s := obj("v1", "Secret", "web", "creds")
	s.Object["data"] = map[string]any{"password": "aHVudGVyMg=="}
	s.Object["stringData"] = map[string]any{"token": "hunter2"}
	assert.Equal(t, SecretSafe(s), "Secret web/creds")
	assert.Equal(t, SecretSafe(obj("apps/v1", "Deployment", "web", "shop")), "Deployment.apps web/shop")
	assert.Equal(t, SecretSafe(nil), "<nil>")
}
