package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Metric types of the Prometheus text format.
const (
	TypeCounter   = "counter"
	TypeGauge     = "gauge"
	TypeHistogram = "histogram"
)

// ContentType is what Handler answers with: the Prometheus text format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families and writes them in the Prometheus text
// format. It is safe for concurrent use. Families are either stored (vectors
// of counters, gauges and histograms updated as things happen) or collected
// at scrape time by a function.
type Registry struct {
	mu         sync.Mutex
	families   map[string]*family
	collectors []func(*Emitter)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]*family{}}
}

type family struct {
	name, help, typ string
	labels          []string
	buckets         []float64 // histograms only

	mu     sync.Mutex
	series map[string]*series
}

type series struct {
	values []string
	// value holds a counter's or gauge's float64 bits.
	value atomic.Uint64
	hist  *Histogram
}

// register adds a family or panics on a clash: metric names are fixed at
// start, so a clash is a programming error.
func (r *Registry) register(name, help, typ string, labels []string, buckets []float64) *family {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !validLabelName(l) || l == "le" {
			panic(fmt.Sprintf("metrics: invalid label name %q for %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.families[name]; ok {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	f := &family{name: name, help: help, typ: typ, labels: slices.Clone(labels), buckets: buckets, series: map[string]*series{}}
	r.families[name] = f
	return f
}

// with returns the series for the label values, creating it.
func (f *family) with(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s has labels %v, got %d values", f.name, f.labels, len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.series[key]
	if !ok {
		s = &series{values: slices.Clone(values)}
		if f.typ == TypeHistogram {
			s.hist = newHistogram(f.buckets)
		}
		f.series[key] = s
	}
	return s
}

// CounterVec is a counter family with labels.
type CounterVec struct{ f *family }

// NewCounterVec registers a counter family. The name should end in _total.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.register(name, help, TypeCounter, labels, nil)}
}

// With returns the counter for the label values, in the order of the labels.
func (v *CounterVec) With(values ...string) *Counter { return (*Counter)(v.f.with(values)) }

// Counter only goes up.
type Counter series

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Add adds d, which must not be negative (negative values are ignored).
func (c *Counter) Add(d float64) {
	if d < 0 || math.IsNaN(d) {
		return
	}
	addFloat(&c.value, d)
}

// Value returns the current count.
func (c *Counter) Value() float64 { return math.Float64frombits(c.value.Load()) }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ f *family }

// NewGaugeVec registers a gauge family.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.register(name, help, TypeGauge, labels, nil)}
}

// With returns the gauge for the label values.
func (v *GaugeVec) With(values ...string) *Gauge { return (*Gauge)(v.f.with(values)) }

// Gauge goes up and down.
type Gauge series

// Set sets the value.
func (g *Gauge) Set(x float64) { g.value.Store(math.Float64bits(x)) }

// Inc adds one.
func (g *Gauge) Inc() { addFloat(&g.value, 1) }

// Dec subtracts one.
func (g *Gauge) Dec() { addFloat(&g.value, -1) }

// Add adds d.
func (g *Gauge) Add(d float64) { addFloat(&g.value, d) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.value.Load()) }

func addFloat(v *atomic.Uint64, d float64) {
	for {
		old := v.Load()
		if v.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ f *family }

// NewHistogramVec registers a histogram family with the given upper bucket
// bounds (sorted, +Inf implied).
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if len(buckets) == 0 || !sort.Float64sAreSorted(buckets) {
		panic(fmt.Sprintf("metrics: %s needs sorted buckets", name))
	}
	for i := 1; i < len(buckets); i++ {
		if buckets[i] == buckets[i-1] {
			panic(fmt.Sprintf("metrics: %s has a duplicate bucket", name))
		}
	}
	if math.IsInf(buckets[len(buckets)-1], 1) {
		buckets = buckets[:len(buckets)-1]
	}
	return &HistogramVec{r.register(name, help, TypeHistogram, labels, slices.Clone(buckets))}
}

// With returns the histogram for the label values.
func (v *HistogramVec) With(values ...string) *Histogram { return v.f.with(values).hist }

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *Histogram) snapshot() (cumulative []uint64, sum float64, count uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cumulative = make([]uint64, len(h.counts))
	var acc uint64
	for i, c := range h.counts {
		acc += c
		cumulative[i] = acc
	}
	return cumulative, h.sum, h.count
}

// ExponentialBuckets returns n bounds start, start*factor, ...
func ExponentialBuckets(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// Collect registers a function called at every scrape to emit families
// whose values are read then (cache statistics, process figures).
func (r *Registry) Collect(f func(*Emitter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, f)
}

// Emitter receives families from scrape-time collectors.
type Emitter struct {
	families []*emitted
}

type emitted struct {
	name, help, typ string
	labels          []string
	samples         []emittedSample
}

type emittedSample struct {
	values []string
	value  float64
}

// Family starts a counter or gauge family; add samples with Sample.
func (e *Emitter) Family(name, help, typ string, labels ...string) *EmittedFamily {
	if typ != TypeCounter && typ != TypeGauge {
		panic("metrics: collectors emit counters and gauges only")
	}
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	f := &emitted{name: name, help: help, typ: typ, labels: labels}
	e.families = append(e.families, f)
	return (*EmittedFamily)(f)
}

// EmittedFamily is a family being emitted by a collector.
type EmittedFamily emitted

// Sample adds a sample with label values in the family's label order.
func (f *EmittedFamily) Sample(value float64, labelValues ...string) *EmittedFamily {
	if len(labelValues) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s has labels %v, got %d values", f.name, f.labels, len(labelValues)))
	}
	f.samples = append(f.samples, emittedSample{values: labelValues, value: value})
	return f
}

// Write writes every family in the Prometheus text format, sorted by name.
// Families without samples are left out.
func (r *Registry) Write(w io.Writer) error {
	r.mu.Lock()
	stored := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		stored = append(stored, f)
	}
	collectors := slices.Clone(r.collectors)
	r.mu.Unlock()

	var em Emitter
	for _, c := range collectors {
		c(&em)
	}

	type writable struct {
		name  string
		write func(*bufio.Writer)
	}
	var all []writable
	seen := map[string]bool{}
	for _, f := range stored {
		seen[f.name] = true
		all = append(all, writable{f.name, f.write})
	}
	for _, f := range em.families {
		if seen[f.name] {
			continue // a name clash with a stored family: the stored one wins
		}
		seen[f.name] = true
		all = append(all, writable{f.name, f.write})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })

	bw := bufio.NewWriter(w)
	for _, f := range all {
		f.write(bw)
	}
	return bw.Flush()
}

func (f *family) write(w *bufio.Writer) {
	f.mu.Lock()
	list := make([]*series, 0, len(f.series))
	for _, s := range f.series {
		list = append(list, s)
	}
	f.mu.Unlock()
	if len(list) == 0 {
		return
	}
	sort.Slice(list, func(i, j int) bool { return slices.Compare(list[i].values, list[j].values) < 0 })
	writeHeader(w, f.name, f.help, f.typ)
	for _, s := range list {
		if f.typ != TypeHistogram {
			writeSample(w, f.name, f.labels, s.values, "", "", math.Float64frombits(s.value.Load()))
			continue
		}
		cumulative, sum, count := s.hist.snapshot()
		for i, c := range cumulative {
			le := "+Inf"
			if i < len(f.buckets) {
				le = formatFloat(f.buckets[i])
			}
			writeSample(w, f.name+"_bucket", f.labels, s.values, "le", le, float64(c))
		}
		writeSample(w, f.name+"_sum", f.labels, s.values, "", "", sum)
		writeSample(w, f.name+"_count", f.labels, s.values, "", "", float64(count))
	}
}

func (f *emitted) write(w *bufio.Writer) {
	if len(f.samples) == 0 {
		return
	}
	samples := slices.Clone(f.samples)
	sort.SliceStable(samples, func(i, j int) bool { return slices.Compare(samples[i].values, samples[j].values) < 0 })
	writeHeader(w, f.name, f.help, f.typ)
	for i, s := range samples {
		if i > 0 && slices.Equal(samples[i-1].values, s.values) {
			continue // duplicate series: keep the first
		}
		writeSample(w, f.name, f.labels, s.values, "", "", s.value)
	}
}

func writeHeader(w *bufio.Writer, name, help, typ string) {
	w.WriteString("# HELP ")
	w.WriteString(name)
	w.WriteByte(' ')
	w.WriteString(escapeHelp(help))
	w.WriteString("\n# TYPE ")
	w.WriteString(name)
	w.WriteByte(' ')
	w.WriteString(typ)
	w.WriteByte('\n')
}

func writeSample(w *bufio.Writer, name string, labels, values []string, extraLabel, extraValue string, v float64) {
	w.WriteString(name)
	if len(labels) > 0 || extraLabel != "" {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l)
			w.WriteString(`="`)
			w.WriteString(escapeLabelValue(values[i]))
			w.WriteByte('"')
		}
		if extraLabel != "" {
			if len(labels) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extraLabel)
			w.WriteString(`="`)
			w.WriteString(extraValue)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string       { return helpEscaper.Replace(s) }
func escapeLabelValue(s string) string { return labelEscaper.Replace(s) }

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Handler serves the registry at any path.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		if req.Method == http.MethodHead {
			return
		}
		_ = r.Write(w)
	})
}
