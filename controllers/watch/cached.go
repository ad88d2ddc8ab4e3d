package watch

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/health"
)

// cachedObject is what an informer keeps of a managed object once the
// transform is done: what every event reads (identity, owners, health) as
// fields, and the rest as JSON, decoded only by Get. Kept as nested maps,
// a cached Deployment takes several times the memory of its JSON, and the
// drift caches were most of the operator's heap.
type cachedObject struct {
	metav1.TypeMeta
	// ObjectMeta holds the name, namespace, UID, resourceVersion and
	// generation only; labels and annotations are in content.
	metav1.ObjectMeta
	ownedBy        string
	health         health.Result
	healthRecorded bool
	// content is the object without status, managedFields,
	// resourceVersion and generation: what drift is. Equal content is an
	// equal object, since encoding/json sorts map keys. It is never
	// modified, so copies share it.
	content []byte
}

// DeepCopyObject makes cachedObject a runtime.Object, as informers expect.
func (c *cachedObject) DeepCopyObject() runtime.Object {
	out := *c
	out.ObjectMeta = *c.ObjectMeta.DeepCopy()
	return &out
}

// compact turns a transformed object into what the cache keeps.
func compact(u *unstructured.Unstructured) (*cachedObject, error) {
	c := &cachedObject{}
	c.APIVersion, c.Kind = u.GetAPIVersion(), u.GetKind()
	c.Name, c.Namespace, c.UID = u.GetName(), u.GetNamespace(), u.GetUID()
	c.ResourceVersion, c.Generation = u.GetResourceVersion(), u.GetGeneration()
	c.health, c.healthRecorded = healthRecord(u)
	// NestedString reads in place; GetAnnotations would copy the map.
	c.ownedBy, _, _ = unstructured.NestedString(u.Object, "metadata", "annotations", v1alpha1.AnnotationOwnedBy)

	content := make(map[string]any, len(u.Object))
	for k, v := range u.Object {
		if !ignoredTop[k] {
			content[k] = v
		}
	}
	if meta, ok := u.Object["metadata"].(map[string]any); ok {
		kept := make(map[string]any, len(meta))
		for k, v := range meta {
			if !ignoredMetadata[k] {
				kept[k] = v
			}
		}
		content["metadata"] = kept
	}
	data, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s for the cache: %w", c.Kind, c.Namespace, c.Name, err)
	}
	c.content = data
	return c, nil
}

// object decodes the cached object, with its resourceVersion, generation
// and health record put back.
func (c *cachedObject) object() (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	// util/json keeps integers as int64, as the dynamic client does.
	if err := utiljson.Unmarshal(c.content, &u.Object); err != nil {
		return nil, fmt.Errorf("decode cached %s %s/%s: %w", c.Kind, c.Namespace, c.Name, err)
	}
	if c.ResourceVersion != "" {
		u.SetResourceVersion(c.ResourceVersion)
	}
	if c.Generation != 0 {
		u.SetGeneration(c.Generation)
	}
	if c.healthRecorded {
		rec := map[string]any{healthKey: string(c.health.Status)}
		if c.health.Message != "" {
			rec[healthMessageKey] = c.health.Message
		}
		u.Object["status"] = rec
	}
	return u, nil
}

// healthOf is the health of a cached object: the record HealthTransform
// left, Current when there is none (a ConfigMap, say).
func (c *cachedObject) healthOf() health.Result {
	if !c.healthRecorded {
		return health.Result{Status: health.Current}
	}
	return c.health
}
