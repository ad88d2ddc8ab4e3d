package watch

import (
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/controllers/health"
)

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	assert.NilError(t, err)
	u := &unstructured.Unstructured{}
	assert.NilError(t, u.UnmarshalJSON(data))
	return u
}

func TestHealthTransformKeepsOnlyHealth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		doc        string
		want       health.Result
		wantStatus map[string]any
	}{
		{
			name: "rolling deployment keeps its record",
			doc: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 2, managedFields: [{manager: vidra}]},
			  spec: {replicas: 3}, status: {observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 1, conditions: [{type: Available, status: "False"}]}}`,
			want:       health.Result{Status: health.InProgress, Message: "1 of 3 replicas available"},
			wantStatus: map[string]any{healthKey: "InProgress", healthMessageKey: "1 of 3 replicas available"},
		},
		{
			name:       "failed SDC config",
			doc:        `{apiVersion: config.sdcio.dev/v1alpha1, kind: Config, metadata: {name: leaf1, namespace: network}, status: {conditions: [{type: Ready, status: "False", reason: Failed, message: "device rejected"}]}}`,
			want:       health.Result{Status: health.Failed, Message: "device rejected"},
			wantStatus: map[string]any{healthKey: "Failed", healthMessageKey: "device rejected"},
		},
		{
			name: "configmap keeps no status",
			doc:  `{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: shop}, data: {a: b}}`,
			want: health.Result{Status: health.Current},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := decode(t, tc.doc)
			out, err := HealthTransform(u)
			assert.NilError(t, err)
			got := out.(*unstructured.Unstructured)
			assert.Assert(t, got.GetManagedFields() == nil)
			st, _ := got.Object["status"].(map[string]any)
			assert.DeepEqual(t, st, tc.wantStatus)
			assert.Equal(t, mustCompact(t, got).healthOf(), tc.want)

			// Idempotent: a second pass changes nothing.
			again, err := HealthTransform(got.DeepCopy())
			assert.NilError(t, err)
			assert.DeepEqual(t, again.(*unstructured.Unstructured).Object, got.Object)
		})
	}
	tomb := "not an object"
	out, err := HealthTransform(tomb)
	assert.NilError(t, err)
	assert.Equal(t, out, any(tomb))
}

func TestContentChangedIgnoresHealthRecord(t *testing.T) {
	a := decode(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 3}, status: {vidra.health: InProgress}}`)
	b := decode(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 3}, status: {vidra.health: Current}}`)
	assert.Assert(t, !contentChanged(mustCompact(t, a), mustCompact(t, b)), "a health change is not drift")
	assert.Assert(t, mustCompact(t, a).healthOf() != mustCompact(t, b).healthOf())
}
