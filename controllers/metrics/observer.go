// Package metrics defines what the controllers report and exposes it in the
// Prometheus text format without a metrics library.
package metrics

import "time"

// Observer receives what the controllers do. Implementations must be safe
// for concurrent use.
type Observer interface {
	// ObserveReconcile records one pass of a controller's sync.
	ObserveReconcile(controller string, d time.Duration, err error)
	// ObserveApply records what happened to one managed object: created,
	// configured, unchanged, failed, conflict, refused, pruned or released.
	ObserveApply(cluster, result string)
	// SetManagedObjects records how many objects of each kind an owner
	// manages on a cluster; DeleteManagedObjects forgets the owner.
	SetManagedObjects(owner, cluster string, byKind map[string]int)
	DeleteManagedObjects(owner string)
}

// Nop discards everything.
type Nop struct{}

func (Nop) ObserveReconcile(string, time.Duration, error)    {}
func (Nop) ObserveApply(string, string)                      {}
func (Nop) SetManagedObjects(string, string, map[string]int) {}
func (Nop) DeleteManagedObjects(string)                      {}
