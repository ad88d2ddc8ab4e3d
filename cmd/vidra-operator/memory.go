package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow 50% over live data between collections instead of
// 100%. Most of the operator's resident memory is that headroom (measured
// at 4,000 watched objects: about 38 MiB live, 120 MiB resident while
// converging), and collecting a heap of this size is cheap.
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent unless GOGC says otherwise. GOMEMLIMIT,
// which the chart sets from the container's memory limit, still applies.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
