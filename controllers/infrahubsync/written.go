package infrahubsync

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// writtenTTL bounds how long a written VidraResource is preferred over the
// informer's copy; the informer normally catches up within milliseconds.
const writtenTTL = time.Minute

// writtenResources remembers the VidraResources a pass wrote until the
// informer has seen the write. A pass that runs right after (the writes
// themselves enqueue the sync) must not take the stale cache for the
// truth: it would download and write the same content again, and it would
// call the sync Ready on VidraResources that were never reconciled.
type writtenResources struct {
	mu     sync.Mutex
	byName map[string]writtenResource
}

type writtenResource struct {
	vr *v1alpha1.VidraResource
	at time.Time
}

func newWrittenResources() *writtenResources {
	return &writtenResources{byName: map[string]writtenResource{}}
}

// record keeps the object the API server returned for a write.
func (w *writtenResources) record(vr *v1alpha1.VidraResource, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byName[vr.Name] = writtenResource{vr: vr, at: now}
}

// overlay returns the sync's VidraResources as the informer lists them,
// with every copy older than this controller's own write replaced by what
// was written, and written ones the informer does not list yet added.
// Entries the informer caught up with, or that expired, are forgotten.
func (w *writtenResources) overlay(owner types.UID, cached []*v1alpha1.VidraResource, now time.Time) []*v1alpha1.VidraResource {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*v1alpha1.VidraResource, 0, len(cached))
	seen := make(map[string]bool, len(cached))
	for _, vr := range cached {
		seen[vr.Name] = true
		wr, ok := w.byName[vr.Name]
		switch {
		case !ok:
			out = append(out, vr)
		case wr.vr.UID != vr.UID || vr.Generation >= wr.vr.Generation || now.Sub(wr.at) > writtenTTL:
			// The informer has this write (or a newer object) by now.
			delete(w.byName, vr.Name)
			out = append(out, vr)
		default:
			out = append(out, wr.vr)
		}
	}
	for name, wr := range w.byName {
		if seen[name] {
			continue
		}
		if now.Sub(wr.at) > writtenTTL {
			delete(w.byName, name)
			continue
		}
		if ownedBy(wr.vr, owner) {
			out = append(out, wr.vr)
		}
	}
	return out
}

// forget drops what was written for a sync that is gone.
func (w *writtenResources) forget(owner types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, wr := range w.byName {
		if ownedBy(wr.vr, owner) {
			delete(w.byName, name)
		}
	}
}

func ownedBy(vr *v1alpha1.VidraResource, owner types.UID) bool {
	for _, ref := range vr.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.UID == owner {
			return true
		}
	}
	return false
}

// drop forgets a VidraResource that was deleted; a newer object of the
// same name, written since, is kept.
func (w *writtenResources) drop(name string, uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wr, ok := w.byName[name]; ok && wr.vr.UID == uid {
		delete(w.byName, name)
	}
}
