package infrahub

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
)

// DefaultCacheBytes is a reasonable size for the process-wide Cache.
const DefaultCacheBytes = 256 << 20

// CacheStats are the counters of a Cache.
type CacheStats struct {
	Hits      int64
	Misses    int64
	Evictions int64
	// Bytes is the content size currently held, Entries the number of items.
	Bytes   int64
	Entries int
}

// Cache keeps artifact content keyed by (storage id, checksum), or
// (artifact id, checksum) for artifacts listed without a storage id. It is
// bounded in bytes, evicts the least recently used content first, and is
// safe for concurrent use. One Cache is meant to be shared by every sync of
// the process. Returned slices are shared: callers must not modify them.
type Cache struct {
	mu        sync.Mutex
	max       int64
	bytes     int64
	ll        *list.List // front = most recently used
	items     map[cacheKey]*list.Element
	hits      int64
	misses    int64
	evictions int64
}

type cacheKey struct {
	byStorage bool // id is a storage id, else an artifact id
	id        string
	checksum  string
}

type cacheEntry struct {
	key  cacheKey
	data []byte
}

func keyOf(a Artifact) cacheKey {
	if a.StorageID != "" {
		return cacheKey{byStorage: true, id: a.StorageID, checksum: a.Checksum}
	}
	return cacheKey{id: a.ID, checksum: a.Checksum}
}

// NewCache returns a cache holding at most maxBytes of content. Content
// larger than maxBytes is never kept. maxBytes <= 0 keeps nothing.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Bytes: c.bytes, Entries: c.ll.Len()}
}

// Lookup returns cached content for a (counting a hit or a miss).
func (c *Cache) Lookup(a Artifact) ([]byte, bool) {
	return c.get(keyOf(a))
}

// Purge drops everything (counters stay).
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
	c.bytes = 0
}

func (c *Cache) get(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		c.hits++
		return el.Value.(*cacheEntry).data, true
	}
	c.misses++
	return nil, false
}

func (c *Cache) add(k cacheKey, data []byte) {
	size := int64(len(data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max {
		return
	}
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	for c.bytes+size > c.max && c.ll.Len() > 0 {
		el := c.ll.Back()
		e := el.Value.(*cacheEntry)
		c.ll.Remove(el)
		delete(c.items, e.key)
		c.bytes -= int64(len(e.data))
		c.evictions++
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, data: data})
	c.bytes += size
}

// FetcherStats count what a Fetcher did.
type FetcherStats struct {
	// Downloads is the number of FetchContent calls made.
	Downloads int64
	// Coalesced is the number of Fetch calls that waited for a download
	// another caller had started for the same content.
	Coalesced int64
}

// Fetcher gets artifact content through a Cache: content is downloaded only
// when its (storage id, checksum) was not downloaded before, and concurrent
// fetches of the same content share one download.
type Fetcher struct {
	cache     *Cache
	mu        sync.Mutex
	inflight  map[cacheKey]*flight
	downloads atomic.Int64
	coalesced atomic.Int64
}

type flight struct {
	done chan struct{}
	data []byte
	err  error
	// abandoned is set when the download failed because the context of the
	// caller that started it ended.
	abandoned bool
}

// NewFetcher returns a Fetcher over cache; a nil cache only coalesces.
func NewFetcher(cache *Cache) *Fetcher {
	return &Fetcher{cache: cache, inflight: map[cacheKey]*flight{}}
}

// Stats returns the Fetcher's counters.
func (f *Fetcher) Stats() FetcherStats {
	return FetcherStats{Downloads: f.downloads.Load(), Coalesced: f.coalesced.Load()}
}

// Fetch returns the content of a, from the cache when possible, else from
// c.FetchContent (which verifies the checksum). The returned slice is
// shared and must not be modified.
func (f *Fetcher) Fetch(ctx context.Context, c *Client, a Artifact, opts ListOptions) ([]byte, error) {
	if a.Checksum == "" {
		// Nothing to key on; FetchContent reports the artifact as not
		// generated yet.
		return c.FetchContent(ctx, a, opts)
	}
	k := keyOf(a)
	if f.cache != nil {
		if data, ok := f.cache.get(k); ok {
			return data, nil
		}
	}
	for {
		f.mu.Lock()
		if fl, ok := f.inflight[k]; ok {
			f.mu.Unlock()
			f.coalesced.Add(1)
			select {
			case <-fl.done:
			case <-ctx.Done():
				return nil, &Error{Kind: KindTransient, Message: "request cancelled", Err: ctx.Err()}
			}
			if fl.err == nil {
				return fl.data, nil
			}
			// The starter's context ended, ours has not: try again.
			if fl.abandoned && ctx.Err() == nil {
				continue
			}
			return nil, fl.err
		}
		fl := &flight{done: make(chan struct{})}
		f.inflight[k] = fl
		f.mu.Unlock()

		f.downloads.Add(1)
		fl.data, fl.err = c.FetchContent(ctx, a, opts)
		if fl.err == nil && f.cache != nil {
			f.cache.add(k, fl.data)
		}
		fl.abandoned = fl.err != nil && ctx.Err() != nil
		f.mu.Lock()
		delete(f.inflight, k)
		f.mu.Unlock()
		close(fl.done)
		return fl.data, fl.err
	}
}
