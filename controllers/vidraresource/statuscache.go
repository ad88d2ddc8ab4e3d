package vidraresource

import (
	"strconv"
	"sync"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// writtenStatus remembers the last status this controller wrote to each
// VidraResource until its informer shows it. A pass that starts right
// after the previous one (a finalizer added, an object changing) would
// otherwise start from the status before it: its inventory missing what
// was just recorded, the objects taken for new and created again (refused
// by the server, then read), the status written again.
type writtenStatus struct {
	mu sync.Mutex
	by map[string]written
}

type written struct {
	resourceVersion string
	generation      int64
	status          v1alpha1.VidraResourceStatus
}

func (w *writtenStatus) record(vr *v1alpha1.VidraResource) {
	if vr == nil || vr.Name == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.by == nil {
		w.by = map[string]written{}
	}
	w.by[vr.Name] = written{resourceVersion: vr.ResourceVersion, generation: vr.Generation, status: *vr.Status.DeepCopy()}
}

// latest returns vr with the status last written when the informer's copy
// is older than that write and of the same generation; vr otherwise.
func (w *writtenStatus) latest(vr *v1alpha1.VidraResource) *v1alpha1.VidraResource {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.by[vr.Name]
	if !ok {
		return vr
	}
	seen, err1 := strconv.ParseUint(vr.ResourceVersion, 10, 64)
	wrote, err2 := strconv.ParseUint(last.resourceVersion, 10, 64)
	if err1 != nil || err2 != nil || seen >= wrote {
		// Caught up (or versions that do not compare): the informer's
		// copy is the one to trust from now on.
		delete(w.by, vr.Name)
		return vr
	}
	if vr.Generation != last.generation {
		return vr
	}
	out := vr.DeepCopy()
	out.Status = *last.status.DeepCopy()
	return out
}

// statusVersion is the resourceVersion a status write on vr is
// conditional on: that of the status last written when vr's status is
// that one (see latest), else vr's own. A status write needs no newer
// metadata than the status it replaces.
func (w *writtenStatus) statusVersion(vr *v1alpha1.VidraResource) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, ok := w.by[vr.Name]; ok && last.generation == vr.Generation {
		seen, err1 := strconv.ParseUint(vr.ResourceVersion, 10, 64)
		wrote, err2 := strconv.ParseUint(last.resourceVersion, 10, 64)
		if err1 == nil && err2 == nil && seen < wrote {
			return last.resourceVersion
		}
	}
	return vr.ResourceVersion
}

// observe drops the status last written once the informer shows it, so
// nothing is kept for VidraResources at rest.
func (w *writtenStatus) observe(vr *v1alpha1.VidraResource) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.by[vr.Name]
	if !ok {
		return
	}
	seen, err1 := strconv.ParseUint(vr.ResourceVersion, 10, 64)
	wrote, err2 := strconv.ParseUint(last.resourceVersion, 10, 64)
	if err1 != nil || err2 != nil || seen >= wrote {
		delete(w.by, vr.Name)
	}
}

func (w *writtenStatus) forget(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.by, name)
}
