package watch

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/vidra-operator/vidra/controllers/health"
)

// The cache keeps, in place of an object's status, only its health: the
// keys below under "status". An object that is Current without a message
// (a ConfigMap, a Role, most objects) keeps no status at all.
const (
	healthKey        = "vidra.health"
	healthMessageKey = "vidra.healthMessage"
)

// HealthTransform is the default Options.Transform: it judges the object's
// health while its status is still there, then strips it as StripTransform
// does and keeps the health in its place. It is idempotent: an object it
// already transformed passes unchanged.
func HealthTransform(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u == nil {
		return obj, nil
	}
	if _, done := healthRecord(u); done {
		rec := u.Object["status"]
		if _, err := StripTransform(u); err != nil {
			return nil, err
		}
		u.Object["status"] = rec
		return u, nil
	}
	r := health.Of(u)
	if _, err := StripTransform(u); err != nil {
		return nil, err
	}
	if r.Status != health.Current || r.Message != "" {
		rec := map[string]any{healthKey: string(r.Status)}
		if r.Message != "" {
			rec[healthMessageKey] = r.Message
		}
		u.Object["status"] = rec
	}
	return u, nil
}

// healthRecord reads the health HealthTransform left in a cached object;
// recorded is false when the object carries no record.
func healthRecord(u *unstructured.Unstructured) (r health.Result, recorded bool) {
	st, ok := u.Object["status"].(map[string]any)
	if !ok {
		return health.Result{Status: health.Current}, false
	}
	s, ok := st[healthKey].(string)
	if !ok {
		return health.Result{Status: health.Current}, false
	}
	msg, _ := st[healthMessageKey].(string)
	return health.Result{Status: health.Status(s), Message: msg}, true
}

// Health returns the health of a managed object from gvr's cache. observed
// is false when no informer runs for gvr or it has not synced yet; an object
// missing from a synced cache is Unknown, "not found".
func (m *Manager) Health(gvr schema.GroupVersionResource, namespace, name string) (r health.Result, observed bool) {
	mon := m.monitor(gvr)
	if mon == nil || !mon.informer.HasSynced() {
		return health.Result{Status: health.Unknown, Message: "not observed yet"}, false
	}
	item, exists, err := mon.informer.GetIndexer().GetByKey(cache.NewObjectName(namespace, name).String())
	if err != nil || !exists {
		return health.Result{Status: health.Unknown, Message: "not found"}, true
	}
	c, ok := item.(*cachedObject)
	if !ok {
		return health.Result{Status: health.Unknown, Message: "not observed yet"}, false
	}
	return c.healthOf(), true
}

// reportHealth tells Options.OnHealthChange about an object whose health
// may have changed: old is nil for an addition, cur nil for a deletion.
// Unlike drift, a health change is reported for Vidra's own writes too, and
// for the initial list, since the owners may have judged the object before
// their cache held it.
func (mon *monitor) reportHealth(old, cur *cachedObject) {
	if mon.onHealth == nil || mon.stopped.Load() {
		return
	}
	if old != nil && cur != nil && old.healthOf() == cur.healthOf() {
		return
	}
	obj := cur
	if obj == nil {
		obj = old
	}
	owners := ownersOf(old, cur)
	if len(owners) == 0 {
		return
	}
	mon.onHealth(owners, mon.gvr, obj.Namespace, obj.Name)
}
