package main

import (
	"runtime/debug"
	"testing"

	"gotest.tools/v3/assert"
)

func TestGCPercentDefaultsUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	tuneGC()
	assert.Equal(t, debug.SetGCPercent(100), defaultGCPercent)

	t.Setenv("GOGC", "200")
	tuneGC()
	assert.Equal(t, debug.SetGCPercent(100), 100, "GOGC set by the user wins")
}
