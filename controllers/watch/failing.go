package watch

import (
	"sort"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Failing returns the types among gvrs whose informer has not completed its
// initial list, with the error its last list or watch failed with: typically
// Forbidden when Vidra may not list or watch a kind it manages. Drift on those
// types is repaired only at the owners' interval.
func (m *Manager) Failing(gvrs []schema.GroupVersionResource) map[schema.GroupVersionResource]error {
	var out map[schema.GroupVersionResource]error
	for _, gvr := range gvrs {
		mon := m.monitor(gvr)
		if mon == nil || mon.informer.HasSynced() {
			continue
		}
		if err, _ := mon.lastError(); err != nil {
			if out == nil {
				out = map[schema.GroupVersionResource]error{}
			}
			out[gvr] = err
		}
	}
	return out
}

// notifyOwners reports gvr's first failure to every owner, so the owners
// can say in their status that the watch does not run.
func (m *Manager) notifyOwners(gvr schema.GroupVersionResource) {
	if m.onChange == nil {
		return
	}
	m.mu.Lock()
	mon := m.monitors[gvr]
	var owners []string
	if mon != nil {
		for o := range mon.owners {
			owners = append(owners, o)
		}
	}
	m.mu.Unlock()
	if len(owners) == 0 {
		return
	}
	sort.Strings(owners)
	m.onChange(owners, gvr, "", "")
}
