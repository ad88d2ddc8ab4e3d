package vidraresource

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/vidra-operator/vidra/controllers/manifest"
)

// countingChunks counts the chunk reads.
type countingChunks struct {
	chunkMap
	reads atomic.Int64
}

func (c *countingChunks) Get(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	c.reads.Add(1)
	return c.chunkMap.Get(ctx, ns, name)
}

// A large manifest is read and parsed once: later passes over the same
// checksum read no chunk, and apply what the first pass applied; a new
// manifest is read again, and so is one whose VidraResource was forgotten.
func TestLargeManifestIsParsedOnce(t *testing.T) {
	ctx := context.Background()
	vr, chunks := chunkedResource(t, 2000)
	f := newFixture(t, vr)
	counting := &countingChunks{chunkMap: chunks}
	f.c.opts.Manifests = counting
	parts := int64(len(vr.Spec.ManifestChunks.Names))

	_, err := f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, counting.reads.Load(), parts)
	vr.Status = f.lastStatus()
	assert.Equal(t, vr.Status.ObjectCount, int32(2000))
	first := map[string]string{}
	for k, u := range f.store {
		first[k] = u.GetResourceVersion()
	}
	f.destinationActions()

	// Drift: one object gone. The next pass reads no chunk and recreates it
	// from the kept documents, which that pass did not change.
	delete(f.store, "apps/cm-7")
	_, err = f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, counting.reads.Load(), parts, "no chunk read again")
	assert.Assert(t, f.store["apps/cm-7"] != nil, "the deleted object was applied again")
	assert.Equal(t, len(f.store), 2000)
	kept, ok := f.c.parsed.get(vr.Name, manifestChecksum(vr))
	assert.Assert(t, ok)
	for _, d := range kept {
		assert.Equal(t, d.Object.GetNamespace(), "apps")
		assert.Equal(t, len(d.Object.GetLabels()), 0, "the kept document %s carries no marker", d.Object.GetName())
	}

	// A new manifest: read and parsed again.
	next, nextChunks := chunkedResource(t, 2001)
	for k, v := range nextChunks {
		counting.chunkMap[k] = v
	}
	vr.Spec = next.Spec
	vr.Generation = 2
	_, err = f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, counting.reads.Load(), parts+int64(len(next.Spec.ManifestChunks.Names)))
	assert.Equal(t, len(f.store), 2001)

	// Forgotten (the VidraResource was deleted): nothing is kept.
	f.c.forget(vr.Name)
	_, ok = f.c.parsed.get(vr.Name, manifestChecksum(vr))
	assert.Assert(t, !ok)
}

// An inline manifest is parsed every pass and never kept: thousands of
// small VidraResources would cost more memory than their parsing costs.
func TestInlineManifestIsNotKept(t *testing.T) {
	vr := resource("a", manifestCM)
	f := newFixture(t, vr)
	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	_, ok := f.c.parsed.get(vr.Name, manifestChecksum(vr))
	assert.Assert(t, !ok)
}

func parsedDocs(t *testing.T, names ...string) []manifest.Document {
	var text string
	for _, n := range names {
		text += fmt.Sprintf("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%s}\n", n)
	}
	docs, err := manifest.Parse([]byte(text))
	assert.NilError(t, err)
	return docs
}

// The cache holds at most parsedCacheBytes of manifest text, dropping the
// least recently used; a checksum other than the one kept misses; what
// get returns can be reordered without changing what is kept.
func TestParsedCacheBudget(t *testing.T) {
	var p parsedCache
	third := int64(parsedCacheBytes / 3)
	p.put("a", "sum-a", third, parsedDocs(t, "a"))
	p.put("b", "sum-b", third, parsedDocs(t, "b"))
	p.put("c", "sum-c", third, parsedDocs(t, "c"))
	_, ok := p.get("a", "sum-a") // a is now the most recently used
	assert.Assert(t, ok)
	p.put("d", "sum-d", third, parsedDocs(t, "d"))
	_, ok = p.get("b", "sum-b")
	assert.Assert(t, !ok, "the least recently used is dropped")
	for _, name := range []string{"a", "c", "d"} {
		_, ok = p.get(name, "sum-"+name)
		assert.Assert(t, ok, name)
	}
	_, ok = p.get("a", "other")
	assert.Assert(t, !ok, "another checksum misses")
	assert.Equal(t, p.used, 3*third)

	// Replacing an entry frees its share.
	p.put("a", "sum-a2", 1, parsedDocs(t, "y", "x"))
	assert.Equal(t, p.used, 2*third+1)
	got, ok := p.get("a", "sum-a2")
	assert.Assert(t, ok)
	manifest.Sort(got)
	again, _ := p.get("a", "sum-a2")
	assert.Equal(t, again[0].Object.GetName(), "cm-y", "the kept order is unchanged")

	// A manifest above the whole budget is not kept.
	p.put("huge", "sum", parsedCacheBytes+1, parsedDocs(t, "h"))
	_, ok = p.get("huge", "sum")
	assert.Assert(t, !ok)
}

// BenchmarkLargeManifestPass is a pass over an unchanged manifest of
// 10,000 ConfigMaps stored in chunks, against the fixture's fake
// destination, with the manifest read and parsed every pass and kept.
//
//	go test -run '^$' -bench LargeManifestPass -benchmem ./controllers/vidraresource/
func BenchmarkLargeManifestPass(b *testing.B) {
	for _, keep := range []bool{false, true} {
		b.Run(fmt.Sprintf("kept=%t", keep), func(b *testing.B) {
			t := &testing.T{}
			vr, chunks := chunkedResource(t, 10000)
			f := newFixture(t, vr)
			f.c.opts.Manifests = chunks
			ctx := context.Background()
			if _, err := f.c.sync(ctx, vr.DeepCopy()); err != nil {
				b.Fatal(err)
			}
			vr.Status = f.lastStatus()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !keep {
					f.c.parsed.forget(vr.Name)
				}
				f.client.ClearActions()
				f.dyn.ClearActions()
				if _, err := f.c.sync(ctx, vr.DeepCopy()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
