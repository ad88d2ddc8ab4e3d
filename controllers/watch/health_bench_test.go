package watch

import (
	"fmt"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

// BenchmarkCachedObjectSize reports what a cached Deployment that is rolling
// out (so that it keeps a health record) and a ConfigMap (no record) retain
// after StripTransform and after HealthTransform.
func BenchmarkCachedObjectSize(b *testing.B) {
	deployment := `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web-%d, namespace: shop, generation: 2, uid: 3f1c, resourceVersion: "812",
	  labels: {app: web, managed-by: vidra}, annotations: {managed-by: vidra, vidraresource.infrahub.operators.com/owned-by: shop}},
	  spec: {replicas: 3, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]}}},
	  status: {observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 1, availableReplicas: 1, unavailableReplicas: 2,
	    conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable, message: "Deployment does not have minimum availability.", lastUpdateTime: "2026-12-05T04:00:00Z", lastTransitionTime: "2026-12-05T04:00:00Z"},
	                 {type: Progressing, status: "True", reason: ReplicaSetUpdated, message: "ReplicaSet \"web-5d\" is progressing.", lastUpdateTime: "2026-12-05T04:00:00Z", lastTransitionTime: "2026-12-05T04:00:00Z"}]}}`
	configMap := `{apiVersion: v1, kind: ConfigMap, metadata: {name: cfg-%d, namespace: shop, uid: 3f1d, resourceVersion: "813",
	  labels: {managed-by: vidra}, annotations: {managed-by: vidra, vidraresource.infrahub.operators.com/owned-by: shop}}, data: {a: b}}`
	for _, kind := range []struct{ name, doc string }{{"Deployment", deployment}, {"ConfigMap", configMap}} {
		for _, tr := range []struct {
			name string
			fn   cache.TransformFunc
		}{{"strip", StripTransform}, {"health", HealthTransform}} {
			b.Run(kind.name+"/"+tr.name, func(b *testing.B) {
				const n = 1000
				objs := make([]*unstructured.Unstructured, n)
				for i := range objs {
					objs[i] = decodeB(b, fmt.Sprintf(kind.doc, i))
				}
				var perObject float64
				for b.Loop() {
					kept := make([]any, n)
					before := heapInUse()
					for i, o := range objs {
						out, err := tr.fn(o.DeepCopy())
						if err != nil {
							b.Fatal(err)
						}
						kept[i] = out
					}
					perObject = float64(heapInUse()-before) / n
					runtime.KeepAlive(kept)
				}
				b.ReportMetric(perObject, "B-retained/object")
			})
		}
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func decodeB(b *testing.B, doc string) *unstructured.Unstructured {
	b.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		b.Fatal(err)
	}
	return u
}
