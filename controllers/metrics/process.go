package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// RegisterProcessCollector adds Go runtime and process figures that are
// cheap to read: no stop-the-world (runtime/metrics, not ReadMemStats), and
// /proc/self on Linux (left out elsewhere).
func RegisterProcessCollector(r *Registry) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/gomaxprocs:threads"},
	}
	pageSize := float64(os.Getpagesize())
	bootTime := readBootTime()
	r.Collect(func(e *Emitter) {
		e.Family("go_goroutines", "Number of goroutines that currently exist.", TypeGauge).Sample(float64(runtime.NumGoroutine()))
		threads, _ := runtime.ThreadCreateProfile(nil)
		e.Family("go_threads", "Number of OS threads created.", TypeGauge).Sample(float64(threads))
		e.Family("go_info", "Information about the Go environment.", TypeGauge, "version").Sample(1, runtime.Version())

		metrics.Read(samples)
		value := func(i int) (float64, bool) {
			switch samples[i].Value.Kind() {
			case metrics.KindUint64:
				return float64(samples[i].Value.Uint64()), true
			case metrics.KindFloat64:
				return samples[i].Value.Float64(), true
			}
			return 0, false
		}
		if v, ok := value(0); ok {
			e.Family("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", TypeGauge).Sample(v)
		}
		if v, ok := value(1); ok {
			e.Family("go_memstats_sys_bytes", "Bytes of memory obtained from the OS by the Go runtime.", TypeGauge).Sample(v)
		}
		if v, ok := value(2); ok {
			e.Family("go_gc_cycles_total", "Completed GC cycles.", TypeCounter).Sample(v)
		}
		if v, ok := value(3); ok {
			e.Family("go_sched_gomaxprocs_threads", "GOMAXPROCS: threads that may run Go code at once.", TypeGauge).Sample(v)
		}

		if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
			if f := strings.Fields(string(statm)); len(f) >= 2 {
				if size, err := strconv.ParseFloat(f[0], 64); err == nil {
					e.Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", TypeGauge).Sample(size * pageSize)
				}
				if rss, err := strconv.ParseFloat(f[1], 64); err == nil {
					e.Family("process_resident_memory_bytes", "Resident memory size in bytes.", TypeGauge).Sample(rss * pageSize)
				}
			}
		}
		if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
			// Fields after the command name, which is in parentheses and
			// may itself hold spaces: state is field 3, utime 14, stime 15,
			// starttime 22 (1-based in proc(5)).
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
				f := strings.Fields(string(stat[i+1:]))
				const ticks = 100 // USER_HZ, fixed at 100 for /proc on Linux
				if len(f) > 19 {
					utime, err1 := strconv.ParseFloat(f[11], 64)
					stime, err2 := strconv.ParseFloat(f[12], 64)
					if err1 == nil && err2 == nil {
						e.Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", TypeCounter).Sample((utime + stime) / ticks)
					}
					if start, err := strconv.ParseFloat(f[19], 64); err == nil && bootTime > 0 {
						e.Family("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.", TypeGauge).Sample(bootTime + start/ticks)
					}
				}
			}
		}
		if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
			e.Family("process_open_fds", "Number of open file descriptors.", TypeGauge).Sample(float64(len(fds)))
		}
		if limits, err := os.ReadFile("/proc/self/limits"); err == nil {
			for _, line := range strings.Split(string(limits), "\n") {
				if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
					if f := strings.Fields(rest); len(f) > 0 {
						if n, err := strconv.ParseFloat(f[0], 64); err == nil {
							e.Family("process_max_fds", "Maximum number of open file descriptors.", TypeGauge).Sample(n)
						}
					}
				}
			}
		}
	})
}

func readBootTime() float64 {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(stat), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}
