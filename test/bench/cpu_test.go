package bench

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// cpuUse is the CPU time each process has used so far: the control plane's
// children, and "bench" for this process (the operator, the fake Infrahub
// and the floor's apply loop all run in it).
type cpuUse map[string]time.Duration

func readCPU(b *testing.B) cpuUse {
	b.Helper()
	pids := cp.Processes()
	pids["bench"] = os.Getpid()
	out := cpuUse{}
	for name, pid := range pids {
		out[name] = cpuTime(b, pid)
	}
	return out
}

// since is the CPU each process used between before and u.
func (u cpuUse) since(before cpuUse) cpuUse {
	out := cpuUse{}
	for k, v := range u {
		out[k] = v - before[k]
	}
	return out
}

func (u cpuUse) total() time.Duration {
	var t time.Duration
	for _, v := range u {
		t += v
	}
	return t
}

func (u cpuUse) String() string {
	var names []string
	for k := range u {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names)+1)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%.1fs", k, u[k].Seconds()))
	}
	parts = append(parts, fmt.Sprintf("total=%.1fs", u.total().Seconds()))
	return strings.Join(parts, " ")
}
