package infrahub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

func TestFetcherDownloadsOnlyChangedContent(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 3)
	c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
	cache := infrahub.NewCache(1 << 20)
	fetcher := infrahub.NewFetcher(cache)
	opts := infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName}

	sync := func() map[string]string {
		t.Helper()
		arts, err := c.ListArtifacts(ctx, opts)
		assert.NilError(t, err)
		out := map[string]string{}
		for _, a := range arts {
			data, err := fetcher.Fetch(ctx, c, a, opts)
			assert.NilError(t, err)
			out[a.TargetLabel] = string(data)
		}
		return out
	}

	first := sync()
	assert.Equal(t, len(first), 3)
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"graphql": 1, "storage": 3})
	assert.DeepEqual(t, cache.Stats(), infrahub.CacheStats{Misses: 3, Bytes: cacheBytes(first), Entries: 3})

	// Nothing changed: one list request, no download.
	f.srv.ResetCounts()
	assert.DeepEqual(t, sync(), first)
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"graphql": 1})
	assert.Equal(t, cache.Stats().Hits, int64(3))

	// Re-rendering identical content changes nothing either.
	info := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web-001", Content: []byte(first["web-001"])})
	assert.Assert(t, !info.Changed)
	f.srv.ResetCounts()
	sync()
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"graphql": 1})

	// One artifact changes: exactly one download.
	f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web-001", Content: []byte("changed: true\n")})
	f.srv.ResetCounts()
	got := sync()
	assert.Equal(t, got["web-001"], "changed: true\n")
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"graphql": 1, "storage": 1})
	assert.DeepEqual(t, fetcher.Stats(), infrahub.FetcherStats{Downloads: 4})
}

func cacheBytes(m map[string]string) int64 {
	var n int64
	for _, v := range m {
		n += int64(len(v))
	}
	return n
}

func TestFetcherCoalescesConcurrentFetches(t *testing.T) {
	f := newFixture(t)
	info := f.seed(t, "main", 1)[0]
	c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
	f.srv.InjectFault(infrahubtest.EndpointStorage, infrahubtest.Fault{Latency: 50 * time.Millisecond, Times: 1})
	fetcher := infrahub.NewFetcher(infrahub.NewCache(1 << 20))
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := fetcher.Fetch(ctx, c, wantArtifact(info), infrahub.ListOptions{})
			assert.NilError(t, err)
			assert.Equal(t, infrahub.Checksum(data), info.Checksum)
		}()
	}
	wg.Wait()
	assert.Equal(t, f.srv.Count(infrahubtest.EndpointStorage), 1)
	st := fetcher.Stats()
	assert.Equal(t, st.Downloads, int64(1))
}

func TestFetcherFollowerOutlivesCancelledLeader(t *testing.T) {
	f := newFixture(t)
	info := f.seed(t, "main", 1)[0]
	c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken; c.Retries = 1 })
	f.srv.InjectFault(infrahubtest.EndpointStorage, infrahubtest.Fault{Latency: 200 * time.Millisecond, Times: 1})
	fetcher := infrahub.NewFetcher(nil)

	leaderCtx, cancel := context.WithCancel(ctx)
	leaderDone := make(chan error)
	go func() {
		_, err := fetcher.Fetch(leaderCtx, c, wantArtifact(info), infrahub.ListOptions{})
		leaderDone <- err
	}()
	// Wait until the leader's request is in flight, then join and cancel it.
	for f.srv.Count(infrahubtest.EndpointStorage) == 0 {
		time.Sleep(time.Millisecond)
	}
	followerDone := make(chan error)
	go func() {
		data, err := fetcher.Fetch(ctx, c, wantArtifact(info), infrahub.ListOptions{})
		if err == nil && infrahub.Checksum(data) != info.Checksum {
			t.Error("wrong content")
		}
		followerDone <- err
	}()
	for fetcher.Stats().Coalesced == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	assert.Assert(t, <-leaderDone != nil)
	assert.NilError(t, <-followerDone)
	assert.Equal(t, fetcher.Stats().Downloads, int64(2))
}

func TestFetcherErrorsAreNotCached(t *testing.T) {
	f := newFixture(t)
	info := f.seed(t, "main", 1)[0]
	c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
	cache := infrahub.NewCache(1 << 20)
	fetcher := infrahub.NewFetcher(cache)
	f.srv.InjectFault(infrahubtest.EndpointStorage, infrahubtest.Fault{Status: 403, Times: 1})
	_, err := fetcher.Fetch(ctx, c, wantArtifact(info), infrahub.ListOptions{})
	assert.Assert(t, infrahub.IsPermission(err))
	_, err = fetcher.Fetch(ctx, c, wantArtifact(info), infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cache.Stats().Entries, 1)

	// Not generated yet: reported, nothing fetched.
	_, err = fetcher.Fetch(ctx, c, infrahub.Artifact{ID: "x", Status: infrahub.StatusPending}, infrahub.ListOptions{})
	assert.Assert(t, infrahub.IsNotFound(err))
}

func TestCacheLRU(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
	var arts []infrahub.Artifact
	for i, content := range []string{"aaaa", "bbbb", "cccc", "dddddddddddd"} {
		info := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: string(rune('a' + i)), Content: []byte(content)})
		arts = append(arts, wantArtifact(info))
	}
	cache := infrahub.NewCache(10)
	fetcher := infrahub.NewFetcher(cache)
	fetch := func(a infrahub.Artifact) {
		t.Helper()
		_, err := fetcher.Fetch(ctx, c, a, infrahub.ListOptions{})
		assert.NilError(t, err)
	}
	fetch(arts[0]) // a
	fetch(arts[1]) // a b
	fetch(arts[0]) // b a (a used last)
	fetch(arts[2]) // a c: b evicted
	assert.DeepEqual(t, cache.Stats(), infrahub.CacheStats{Hits: 1, Misses: 3, Evictions: 1, Bytes: 8, Entries: 2})
	_, hit := cache.Lookup(arts[1])
	assert.Assert(t, !hit)
	_, hit = cache.Lookup(arts[0])
	assert.Assert(t, hit)
	fetch(arts[3]) // 12 bytes: larger than the cache, never kept
	assert.Equal(t, cache.Stats().Entries, 2)
	cache.Purge()
	assert.Equal(t, cache.Stats().Bytes, int64(0))

	// Keys include the checksum: same storage id, other checksum is a miss.
	other := arts[0]
	other.Checksum = infrahub.Checksum([]byte("zz"))
	_, hit = cache.Lookup(other)
	assert.Assert(t, !hit)
}

func TestPool(t *testing.T) {
	p := infrahub.NewPool()
	base := infrahub.Config{BaseURL: "http://infrahub:8000", Username: "admin", Password: "one"}
	c1, err := p.Get(base)
	assert.NilError(t, err)
	c2, err := p.Get(infrahub.Config{BaseURL: "http://infrahub:8000/", Username: "admin", Password: "one"})
	assert.NilError(t, err)
	assert.Assert(t, c1 == c2, "same settings share a client (and its login)")

	rotated := base
	rotated.Password = "two"
	c3, err := p.Get(rotated)
	assert.NilError(t, err)
	assert.Assert(t, c3 != c1)
	assert.Equal(t, p.Len(), 1, "the old password's client is dropped")

	tok := infrahub.Config{BaseURL: base.BaseURL, APIToken: "t1"}
	tok2 := infrahub.Config{BaseURL: base.BaseURL, APIToken: "t2"}
	ct1, _ := p.Get(tok)
	ct2, _ := p.Get(tok2)
	assert.Assert(t, ct1 != ct2)
	stored := base
	stored.Password, stored.QueryName = "two", "ArtifactIDs"
	cs, _ := p.Get(stored)
	assert.Assert(t, cs != c3)
	tlsOther := rotated
	tlsOther.InsecureSkipVerify = true
	ci, _ := p.Get(tlsOther)
	assert.Assert(t, ci != c3)
	assert.Equal(t, p.Len(), 5)
	again, _ := p.Get(rotated)
	assert.Assert(t, again == c3)

	_, err = p.Get(infrahub.Config{BaseURL: "http://u:p@host"})
	assert.ErrorContains(t, err, "credentials")
}

func TestPoolSharesLoginAcrossSyncs(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 1)
	p := infrahub.NewPool()
	for range 5 {
		c, err := p.Get(infrahub.Config{BaseURL: f.srv.URL, Username: user, Password: password})
		assert.NilError(t, err)
		_, err = c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
	}
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 1, "graphql": 5})
}
