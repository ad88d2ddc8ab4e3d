package watch

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestOwnWrites(t *testing.T) {
	var reported []string
	report := func(rv string) func() { return func() { reported = append(reported, rv) } }
	w := newOwnWrites()
	const key = "ns/cm"

	// The event arrives after the write returned.
	w.begin(key)
	assert.Equal(t, len(w.end(key, "10")), 0)
	assert.Assert(t, !w.observe(key, "10", report("10")), "own write reported")
	assert.Assert(t, w.observe(key, "11", report("11")), "foreign write not reported")
	assert.Equal(t, len(w.byKey), 0, "nothing left to remember")

	// Two owners write at once; a foreign write lands between them. Held
	// events are released when the last write returns, minus both writes.
	w.begin(key)
	w.begin(key)
	assert.Assert(t, !w.observe(key, "20", report("20")))
	assert.Assert(t, !w.observe(key, "21", report("21")))
	assert.Assert(t, !w.observe(key, "22", report("22")))
	assert.Equal(t, len(w.end(key, "22")), 0, "reports wait for the other write")
	for _, r := range w.end(key, "20") {
		r()
	}
	assert.DeepEqual(t, reported, []string{"21"})
	assert.Equal(t, len(w.byKey), 0)

	// A write that changed nothing leaves nothing behind; a failed one
	// releases what it held.
	reported = nil
	w.begin(key)
	assert.Assert(t, !w.observe(key, "30", report("30")))
	for _, r := range w.end(key, "") {
		r()
	}
	assert.DeepEqual(t, reported, []string{"30"})
	assert.Equal(t, len(w.byKey), 0)

	// Versions whose events never come are bounded, and a deletion clears
	// them.
	for i := range 10 {
		w.begin(key)
		w.end(key, string(rune('a'+i)))
	}
	assert.Equal(t, len(w.byKey[key].expected), maxExpected)
	w.deleted(key)
	assert.Equal(t, len(w.byKey), 0)
}
