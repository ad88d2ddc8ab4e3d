package metrics_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/util/workqueue"

	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/metrics/metricstest"
	"github.com/vidra-operator/vidra/infrahub"
)

func scrape(t *testing.T, r *metrics.Registry) (metricstest.Families, string) {
	t.Helper()
	var buf bytes.Buffer
	assert.NilError(t, r.Write(&buf))
	fams, err := metricstest.Parse(bytes.NewReader(buf.Bytes()))
	assert.NilError(t, err, "exposition:\n%s", buf.String())
	return fams, buf.String()
}

func value(t *testing.T, fams metricstest.Families, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := fams.Value(name, labels)
	assert.Assert(t, ok, "no single sample %s%v", name, labels)
	return v
}

func TestRegistryWritesValidExposition(t *testing.T) {
	r := metrics.NewRegistry()
	c := r.NewCounterVec("test_things_total", "Things counted.\nSecond line with a \\ backslash.", "kind", "cluster")
	c.With("Deployment", "local").Inc()
	c.With("Deployment", "local").Add(2)
	c.With("Weird", "https://x:6443/\"quoted\"\\back\nline").Inc()
	c.With("Deployment", "local").Add(-5) // ignored: counters only go up
	g := r.NewGaugeVec("test_level", "A level.")
	g.With().Set(-1.5)
	h := r.NewHistogramVec("test_duration_seconds", "Durations.", []float64{0.1, 1, 10}, "op")
	for _, v := range []float64{0.05, 0.1, 0.5, 2, 20, 20} {
		h.With("apply").Observe(v)
	}
	h.With("empty") // a histogram with no observations is still complete
	r.Collect(func(e *metrics.Emitter) {
		e.Family("test_collected", "Collected at scrape time.", metrics.TypeGauge, "a").Sample(1, "x").Sample(2, "y")
		e.Family("test_nothing", "Emits no samples and is left out.", metrics.TypeGauge)
	})

	fams, text := scrape(t, r)
	assert.Equal(t, value(t, fams, "test_things_total", map[string]string{"kind": "Deployment", "cluster": "local"}), 3.0)
	assert.Equal(t, value(t, fams, "test_things_total", map[string]string{"kind": "Weird"}), 1.0)
	_, ok := fams.Value("test_things_total", map[string]string{"cluster": "https://x:6443/\"quoted\"\\back\nline"})
	assert.Assert(t, ok, "label value with quotes, backslash and newline round-trips:\n%s", text)
	assert.Equal(t, fams["test_things_total"].Help, "Things counted.\nSecond line with a \\ backslash.")
	assert.Equal(t, value(t, fams, "test_level", nil), -1.5)
	assert.Equal(t, value(t, fams, "test_duration_seconds_count", map[string]string{"op": "apply"}), 6.0)
	assert.Equal(t, value(t, fams, "test_duration_seconds_sum", map[string]string{"op": "apply"}), 42.65)
	// Bucket bounds are inclusive: 0.1 falls into le=0.1.
	assert.Equal(t, value(t, fams, "test_duration_seconds_bucket", map[string]string{"op": "apply", "le": "0.1"}), 2.0)
	assert.Equal(t, value(t, fams, "test_duration_seconds_bucket", map[string]string{"op": "apply", "le": "10"}), 4.0)
	assert.Equal(t, value(t, fams, "test_duration_seconds_bucket", map[string]string{"op": "apply", "le": "+Inf"}), 6.0)
	assert.Equal(t, value(t, fams, "test_duration_seconds_count", map[string]string{"op": "empty"}), 0.0)
	assert.Equal(t, value(t, fams, "test_collected", map[string]string{"a": "y"}), 2.0)
	_, present := fams["test_nothing"]
	assert.Assert(t, !present)
	assert.Equal(t, fams["test_duration_seconds"].Type, "histogram")

	// Families are sorted by name.
	var order []string
	for _, line := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			order = append(order, strings.Fields(name)[0])
		}
	}
	assert.DeepEqual(t, order, []string{"test_collected", "test_duration_seconds", "test_level", "test_things_total"})
}

func TestRegistryRejectsBadNames(t *testing.T) {
	r := metrics.NewRegistry()
	for name, f := range map[string]func(){
		"metric name": func() { r.NewGaugeVec("bad-name", "x") },
		"label name":  func() { r.NewGaugeVec("ok_name", "x", "bad-label") },
		"le label":    func() { r.NewHistogramVec("ok_hist", "x", []float64{1}, "le") },
		"unsorted":    func() { r.NewHistogramVec("ok_hist2", "x", []float64{2, 1}) },
		"twice":       func() { r.NewGaugeVec("dup", "x"); r.NewGaugeVec("dup", "x") },
		"arity":       func() { r.NewGaugeVec("arity", "x", "a").With("1", "2") },
	} {
		func() {
			defer func() { assert.Assert(t, recover() != nil, "%s: no panic", name) }()
			f()
		}()
	}
}

func TestConcurrentUpdates(t *testing.T) {
	r := metrics.NewRegistry()
	c := r.NewCounterVec("c_total", "c", "w")
	h := r.NewHistogramVec("h_seconds", "h", []float64{1})
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				c.With("x").Inc()
				h.With().Observe(0.5)
			}
		}()
	}
	for range 8 {
		<-done
	}
	fams, _ := scrape(t, r)
	assert.Equal(t, value(t, fams, "c_total", nil), 8000.0)
	assert.Equal(t, value(t, fams, "h_seconds_count", nil), 8000.0)
}

func TestWorkqueueProvider(t *testing.T) {
	r := metrics.NewRegistry()
	p := metrics.NewWorkqueueProvider(r)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Hour, time.Hour),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "test", MetricsProvider: p},
	)
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.AddRateLimited("c")
	key, _ := q.Get()
	time.Sleep(2 * time.Millisecond) // some work duration
	q.Done(key)

	fams, _ := scrape(t, r)
	name := map[string]string{"name": "test"}
	assert.Equal(t, value(t, fams, metrics.WorkqueueAdds, name), 2.0) // c is still waiting out its backoff
	assert.Equal(t, value(t, fams, metrics.WorkqueueDepth, name), 1.0)
	assert.Equal(t, value(t, fams, metrics.WorkqueueRetries, name), 1.0)
	assert.Equal(t, value(t, fams, metrics.WorkqueueWorkDuration+"_count", name), 1.0)
	assert.Assert(t, value(t, fams, metrics.WorkqueueWorkDuration+"_sum", name) >= 0.002)
	assert.Equal(t, value(t, fams, metrics.WorkqueueQueueDuration+"_count", name), 1.0)
	for _, n := range []string{metrics.WorkqueueUnfinishedWork, metrics.WorkqueueLongestRunningProcessor} {
		_, ok := fams.Value(n, name)
		assert.Assert(t, ok, n)
	}
}

func TestVidraMetrics(t *testing.T) {
	r := metrics.NewRegistry()
	m := metrics.New(r, "v1.2.3")
	var _ metrics.Observer = m
	var _ infrahub.RequestObserver = m

	m.ObserveReconcile("infrahubsync", 30*time.Millisecond, nil)
	m.ObserveReconcile("infrahubsync", 2*time.Second, errors.New("boom"))
	m.ObserveReconcile("vidraresource", time.Millisecond, nil)
	m.ObserveRequest("login", 200, 10*time.Millisecond)
	m.ObserveRequest("graphql", 200, 20*time.Millisecond)
	m.ObserveRequest("graphql", 503, 20*time.Millisecond)
	m.ObserveRequest("artifact", 0, time.Second)
	m.ObserveApply("local", "created")
	m.ObserveApply("local", "created")
	m.ObserveApply("https://remote:6443", "failed")
	m.SetManagedObjects("vr-a", "local", map[string]int{"Deployment": 1, "Service": 2})
	m.SetManagedObjects("vr-b", "local", map[string]int{"Deployment": 3})
	m.SetManagedObjects("vr-c", "https://remote:6443", map[string]int{"ConfigMap": 1})
	m.SetManagedObjects("vr-c", "https://remote:6443", map[string]int{"ConfigMap": 4}) // replaces
	m.SetLeader(true)

	fams, _ := scrape(t, r)
	assert.Equal(t, value(t, fams, metrics.ReconcileTotal, map[string]string{"controller": "infrahubsync"}), 2.0)
	assert.Equal(t, value(t, fams, metrics.ReconcileErrors, map[string]string{"controller": "infrahubsync"}), 1.0)
	assert.Equal(t, value(t, fams, metrics.ReconcileErrors, map[string]string{"controller": "vidraresource"}), 0.0)
	assert.Equal(t, value(t, fams, metrics.ReconcileDuration+"_count", map[string]string{"controller": "infrahubsync"}), 2.0)
	assert.Equal(t, value(t, fams, metrics.InfrahubRequests, map[string]string{"endpoint": "graphql", "code": "503"}), 1.0)
	assert.Equal(t, value(t, fams, metrics.InfrahubRequests, map[string]string{"endpoint": "artifact", "code": "error"}), 1.0)
	assert.Equal(t, value(t, fams, metrics.InfrahubRequestDuration+"_count", map[string]string{"endpoint": "graphql"}), 2.0)
	assert.Equal(t, value(t, fams, metrics.ApplyOperations, map[string]string{"cluster": "local", "result": "created"}), 2.0)
	assert.Equal(t, value(t, fams, metrics.ManagedObjects, map[string]string{"cluster": "local", "kind": "Deployment"}), 4.0)
	assert.Equal(t, value(t, fams, metrics.ManagedObjects, map[string]string{"cluster": "https://remote:6443", "kind": "ConfigMap"}), 4.0)
	assert.Equal(t, value(t, fams, metrics.Leader, nil), 1.0)
	assert.Equal(t, value(t, fams, metrics.BuildInfo, map[string]string{"version": "v1.2.3"}), 1.0)
	_, ok := fams[metrics.ArtifactCacheHits]
	assert.Assert(t, !ok, "no cache, no cache metrics")

	m.DeleteManagedObjects("vr-b")
	m.DeleteManagedObjects("vr-c")
	cache := infrahub.NewCache(1 << 20)
	m.WatchCache(func() (infrahub.CacheStats, bool) { return cache.Stats(), true })
	cache.Lookup(infrahub.Artifact{ID: "x", Checksum: "y"})
	fams, _ = scrape(t, r)
	assert.Equal(t, value(t, fams, metrics.ManagedObjects, map[string]string{"kind": "Deployment"}), 1.0)
	_, ok = fams.Value(metrics.ManagedObjects, map[string]string{"kind": "ConfigMap"})
	assert.Assert(t, !ok, "a forgotten owner's kinds disappear")
	assert.Equal(t, value(t, fams, metrics.ArtifactCacheMisses, nil), 1.0)
	assert.Equal(t, value(t, fams, metrics.ArtifactCacheHits, nil), 0.0)
	assert.Equal(t, value(t, fams, metrics.ArtifactCacheBytes, nil), 0.0)
}

func TestProcessCollector(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.RegisterProcessCollector(r)
	fams, _ := scrape(t, r)
	assert.Assert(t, value(t, fams, "go_goroutines", nil) >= 1)
	assert.Equal(t, value(t, fams, "go_info", map[string]string{"version": runtime.Version()}), 1.0)
	assert.Assert(t, value(t, fams, "go_memstats_heap_alloc_bytes", nil) > 0)
	if runtime.GOOS == "linux" {
		rss := value(t, fams, "process_resident_memory_bytes", nil)
		assert.Assert(t, rss > 1<<20 && rss < 1<<34, "rss %v", rss)
		assert.Assert(t, value(t, fams, "process_cpu_seconds_total", nil) >= 0)
		assert.Assert(t, value(t, fams, "process_open_fds", nil) > 0)
		start := value(t, fams, "process_start_time_seconds", nil)
		now := float64(time.Now().Unix())
		assert.Assert(t, start <= now+5 && start > now-24*3600, "start %v now %v", start, now)
	}
}

func TestHandler(t *testing.T) {
	r := metrics.NewRegistry()
	r.NewGaugeVec("up_ish", "x").With().Set(1)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, 200)
	assert.Equal(t, resp.Header.Get("Content-Type"), metrics.ContentType)
	fams, err := metricstest.Parse(resp.Body)
	assert.NilError(t, err)
	assert.Equal(t, fams["up_ish"].Samples[0].Value, 1.0)

	resp2, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	assert.NilError(t, err)
	resp2.Body.Close()
	assert.Equal(t, resp2.StatusCode, http.StatusMethodNotAllowed)
}

func TestNopImplementsObserver(t *testing.T) {
	var o metrics.Observer = metrics.Nop{}
	o.ObserveReconcile("x", 0, nil)
	o.ObserveApply("local", "created")
	o.SetManagedObjects("a", "local", nil)
	o.DeleteManagedObjects("a")
}

func TestClustersAndDriftWatches(t *testing.T) {
	r := metrics.NewRegistry()
	m := metrics.New(r, "test")
	fams, _ := scrape(t, r)
	_, ok := fams.Value(metrics.RemoteClusters, nil)
	assert.Assert(t, !ok, "no cluster metrics before the clusters are watched")

	stats := []metrics.ClusterStats{
		{Name: "local", Watches: []metrics.WatchStats{{Resource: "v1/configmaps", Healthy: true, Synced: true}}},
		{Name: "https://10.0.0.1:6443", Remote: true, Watches: []metrics.WatchStats{{Resource: "v1/configmaps", Healthy: false}}},
		{Name: "https://10.0.0.2:6443", Remote: true},
	}
	m.WatchClusters(func() []metrics.ClusterStats { return stats })
	fams, _ = scrape(t, r)
	assert.Equal(t, value(t, fams, metrics.RemoteClusters, nil), 2.0)
	assert.Equal(t, value(t, fams, metrics.DriftWatchHealthy, map[string]string{"cluster": "local", "resource": "v1/configmaps"}), 1.0)
	assert.Equal(t, value(t, fams, metrics.DriftWatchHealthy, map[string]string{"cluster": "https://10.0.0.1:6443", "resource": "v1/configmaps"}), 0.0)

	// A released cluster is gone from the next scrape.
	stats = stats[:1]
	fams, _ = scrape(t, r)
	assert.Equal(t, value(t, fams, metrics.RemoteClusters, nil), 0.0)
	_, ok = fams.Value(metrics.DriftWatchHealthy, map[string]string{"cluster": "https://10.0.0.1:6443"})
	assert.Assert(t, !ok)
}
