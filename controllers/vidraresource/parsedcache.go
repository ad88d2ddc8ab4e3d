package vidraresource

import (
	"container/list"
	"sync"

	"github.com/vidra-operator/vidra/controllers/manifest"
)

// parsedCacheBytes bounds, by the size of their text, the manifests whose
// parsed documents are kept: one artifact of the default maximum size.
// Parsed, a manifest of ConfigMaps holding data takes about twice its
// text (25 MB for the 12.9 MB of 10,000 of them).
const parsedCacheBytes = 16 << 20

// parsedCache keeps the parsed documents of the manifests stored
// compressed or in chunks, by VidraResource, with the checksum they were
// read with. A pass over an unchanged large manifest then reads no chunk
// and parses nothing: for 10,000 objects that is 0.8 s of CPU and 270 MB
// of garbage a pass. Small manifests are parsed every pass: kept for
// thousands of VidraResources, they would cost more memory than the
// parsing costs time. The zero value is ready to use.
type parsedCache struct {
	mu     sync.Mutex
	used   int64
	order  list.List // of *parsedEntry, most recently used first
	byName map[string]*list.Element
}

type parsedEntry struct {
	name, checksum string
	size           int64
	docs           []manifest.Document
}

// get returns the documents kept for name if they were read with checksum.
// The slice is the caller's; the objects are shared and must not be
// changed.
func (p *parsedCache) get(name, checksum string) ([]manifest.Document, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	el, ok := p.byName[name]
	if !ok {
		return nil, false
	}
	e := el.Value.(*parsedEntry)
	if e.checksum != checksum {
		return nil, false
	}
	p.order.MoveToFront(el)
	return append([]manifest.Document(nil), e.docs...), true
}

// put keeps docs, parsed from size bytes read with checksum, in place of
// whatever name had, and drops the least recently used beyond the budget.
func (p *parsedCache) put(name, checksum string, size int64, docs []manifest.Document) {
	if size > parsedCacheBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(name)
	if p.byName == nil {
		p.byName = map[string]*list.Element{}
	}
	p.byName[name] = p.order.PushFront(&parsedEntry{name: name, checksum: checksum, size: size, docs: append([]manifest.Document(nil), docs...)})
	p.used += size
	for p.used > parsedCacheBytes {
		p.removeLocked(p.order.Back().Value.(*parsedEntry).name)
	}
}

// forget drops what is kept for name.
func (p *parsedCache) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(name)
}

func (p *parsedCache) removeLocked(name string) {
	el, ok := p.byName[name]
	if !ok {
		return
	}
	p.used -= el.Value.(*parsedEntry).size
	p.order.Remove(el)
	delete(p.byName, name)
}
