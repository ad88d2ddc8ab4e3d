package main

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON with apimachinery's decoder, so integers are int64 as
	// in objects read from the API.
	data, err := yaml.YAMLToJSON([]byte(y))
	assert.NilError(t, err)
	u := &unstructured.Unstructured{}
	assert.NilError(t, utiljson.Unmarshal(data, &u.Object))
	return u
}

func TestRenderDiffGolden(t *testing.T) {
	live := obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: 1234
  resourceVersion: "77"
  generation: 3
  creationTimestamp: "2026-08-20T10:00:00Z"
  managedFields: [{manager: vidra}]
  labels: {managed-by: vidra}
spec:
  replicas: 2
status:
  readyReplicas: 2
`)
	dry := live.DeepCopy()
	assert.NilError(t, unstructured.SetNestedField(dry.Object, int64(3), "spec", "replicas"))
	dry.SetResourceVersion("78")
	dry.SetGeneration(4)

	added := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: new, namespace: shop, uid: x}, data: {a: "1"}}`)
	removed := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: old, namespace: shop, resourceVersion: "5"}, data: {b: "2"}}`)
	noop := obj(t, `{apiVersion: v1, kind: Service, metadata: {name: web, namespace: shop, resourceVersion: "1"}}`)
	noopAfter := noop.DeepCopy()
	noopAfter.SetResourceVersion("2") // server fields only: not a change

	changes := []objectChange{
		{key: manifest.KeyOf(removed), before: removed},
		{key: manifest.KeyOf(live), before: live, after: dry},
		{key: manifest.KeyOf(added), after: added},
		{key: manifest.KeyOf(noop), before: noop, after: noopAfter},
	}
	sortChanges(changes)
	var b strings.Builder
	sum, err := renderDiff(&b, changes, "live", "feature", 3, painter{})
	assert.NilError(t, err)
	assert.Equal(t, sum, diffSummary{added: 1, changed: 1, deleted: 1})
	assert.Equal(t, b.String(), `=== ConfigMap shop/new (added)
--- /dev/null
+++ feature/core/ConfigMap/shop/new
@@ -0,0 +1,7 @@
+apiVersion: v1
+data:
+  a: "1"
+kind: ConfigMap
+metadata:
+  name: new
+  namespace: shop
=== ConfigMap shop/old (deleted)
--- live/core/ConfigMap/shop/old
+++ /dev/null
@@ -1,7 +0,0 @@
-apiVersion: v1
-data:
-  b: "2"
-kind: ConfigMap
-metadata:
-  name: old
-  namespace: shop
=== Deployment.apps shop/web (changed)
--- live/apps/Deployment/shop/web
+++ feature/apps/Deployment/shop/web
@@ -6,4 +6,4 @@
   name: web
   namespace: shop
 spec:
-  replicas: 2
+  replicas: 3
`)
	assert.Equal(t, summaryLine(sum, 1, "feature"), "feature would change 3 objects: 1 added, 1 changed, 1 deleted; 1 unchanged")
	assert.Equal(t, summaryLine(diffSummary{}, 4, "main"), "no changes: main matches the cluster (4 objects)")
}

func TestRenderDiffMasksSecrets(t *testing.T) {
	live := obj(t, `{apiVersion: v1, kind: Secret, metadata: {name: s, namespace: n}, data: {same: c2FtZQ==, changed: b2xk, gone: eA==}}`)
	dry := obj(t, `{apiVersion: v1, kind: Secret, metadata: {name: s, namespace: n}, data: {same: c2FtZQ==, changed: bmV3, added: eQ==}}`)
	var b strings.Builder
	_, err := renderDiff(&b, []objectChange{{key: manifest.KeyOf(live), before: live, after: dry}}, "live", "main", 10, painter{})
	assert.NilError(t, err)
	out := b.String()
	for _, secret := range []string{"c2FtZQ==", "b2xk", "bmV3", "eA==", "eQ=="} {
		assert.Assert(t, !strings.Contains(out, secret), "secret value %s printed:\n%s", secret, out)
	}
	assert.Assert(t, strings.Contains(out, "-  changed: '*** (before)'"), out)
	assert.Assert(t, strings.Contains(out, "+  changed: '*** (after)'"), out)
	assert.Assert(t, strings.Contains(out, "   same: '***'"), out)
	assert.Assert(t, strings.Contains(out, "+  added: '***'"), out)
	assert.Assert(t, strings.Contains(out, "-  gone: '***'"), out)

	// A Secret whose values do not change shows no diff at all.
	b.Reset()
	sum, err := renderDiff(&b, []objectChange{{key: manifest.KeyOf(live), before: live, after: live.DeepCopy()}}, "live", "main", 3, painter{})
	assert.NilError(t, err)
	assert.Equal(t, sum.total(), 0)
	assert.Equal(t, b.String(), "")
}

func TestObjectPath(t *testing.T) {
	assert.Equal(t, objectPath(manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "ns", Name: "web"}, ""), "apps/Deployment/ns/web")
	assert.Equal(t, objectPath(manifest.Key{Kind: "Namespace", Name: "ns"}, ""), "core/Namespace/ns")
	assert.Equal(t, objectPath(manifest.Key{Kind: "Namespace", Name: "ns"}, "https://edge:6443"), "edge:6443/core/Namespace/ns")
}

func TestMarkOwnedMatchesOperatorMarkers(t *testing.T) {
	u := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: c, labels: {app: x}}}`)
	live := obj(t, `{metadata: {annotations: {"managed-by": "vidra", "vidraresource.infrahub.operators.com/owned-by": "b,a,,b", "vidraresource.infrahub.operators.com/content-hash": "hash"}}}`)
	d := ownership.Decide(live, ownership.Owner{Name: "c", UID: "uid-c"}, "hash", false, func(string, types.UID) bool { return true })
	assert.Equal(t, d.Verdict, ownership.Write)
	ownership.MarkRecord(u, d.Record, "hash")
	assert.DeepEqual(t, u.GetLabels(), map[string]string{"app": "x", "managed-by": "vidra"})
	assert.DeepEqual(t, u.GetAnnotations(), map[string]string{
		"managed-by": "vidra",
		"vidraresource.infrahub.operators.com/owned-by":     "a,b,c",
		"vidraresource.infrahub.operators.com/owners":       `{"a":{"hash":"hash"},"b":{"hash":"hash"},"c":{"uid":"uid-c","hash":"hash"}}`,
		"vidraresource.infrahub.operators.com/content-hash": "hash",
	})
}
