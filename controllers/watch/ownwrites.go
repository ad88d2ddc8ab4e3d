package watch

import "sync"

// maxExpected bounds the versions remembered per object. A write that
// changed nothing returns a version whose event was delivered long ago, so
// its entry never matches; the bound keeps such entries from piling up.
const maxExpected = 4

// ownWrites tells the watch events of Vidra's own writes from everyone
// else's, so that an apply does not bring its VidraResource straight back.
// A write is announced before it is sent (begin) and its resulting
// resourceVersion recorded when it returns (end). Events for the object
// that arrive in between are held, because the watch can deliver a write
// before its response; at end, the held event carrying the written version
// is dropped and the others are reported.
type ownWrites struct {
	mu    sync.Mutex
	byKey map[string]*objectWrites
}

type objectWrites struct {
	inFlight int
	// held are the reports of events that arrived while writes were in
	// flight, with the versions they carry.
	held []heldEvent
	// expected are versions written whose event has not arrived yet.
	expected []string
}

type heldEvent struct {
	resourceVersion string
	report          func()
}

func newOwnWrites() *ownWrites {
	return &ownWrites{byKey: map[string]*objectWrites{}}
}

func objectKey(namespace, name string) string { return namespace + "/" + name }

// begin announces a write of the object.
func (w *ownWrites) begin(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.byKey[key]
	if o == nil {
		o = &objectWrites{}
		w.byKey[key] = o
	}
	o.inFlight++
}

// end records the version a write produced ("" when it failed or changed
// nothing) and returns the held reports that are now due.
func (w *ownWrites) end(key, resourceVersion string) []func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.byKey[key]
	if o == nil || o.inFlight == 0 {
		return nil
	}
	o.inFlight--
	matched := resourceVersion == ""
	kept := o.held[:0]
	for _, h := range o.held {
		if !matched && h.resourceVersion == resourceVersion {
			matched = true
			continue
		}
		kept = append(kept, h)
	}
	o.held = kept
	if !matched {
		o.expected = append(o.expected, resourceVersion)
		if len(o.expected) > maxExpected {
			o.expected = o.expected[len(o.expected)-maxExpected:]
		}
	}
	if o.inFlight > 0 {
		// The rest may be another write's; they wait for it.
		return nil
	}
	due := make([]func(), 0, len(o.held))
	for _, h := range o.held {
		due = append(due, h.report)
	}
	o.held = nil
	if len(o.expected) == 0 {
		delete(w.byKey, key)
	}
	return due
}

// observe decides about an add or update event carrying resourceVersion. It
// returns true when the caller must report it now; false when it was an own
// write, or when it is held and report will be called later.
func (w *ownWrites) observe(key, resourceVersion string, report func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.byKey[key]
	if o == nil {
		return true
	}
	for i, rv := range o.expected {
		if rv == resourceVersion {
			// Events arrive in order: the writes before it are past too.
			o.expected = append([]string(nil), o.expected[i+1:]...)
			if len(o.expected) == 0 && o.inFlight == 0 {
				delete(w.byKey, key)
			}
			return false
		}
	}
	if o.inFlight > 0 {
		o.held = append(o.held, heldEvent{resourceVersion, report})
		return false
	}
	return true
}

// deleted forgets the versions expected for an object that is gone. Writes
// in flight keep their entry.
func (w *ownWrites) deleted(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if o := w.byKey[key]; o != nil {
		o.expected = nil
		if o.inFlight == 0 {
			delete(w.byKey, key)
		}
	}
}
