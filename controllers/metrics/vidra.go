package metrics

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vidra-operator/vidra/infrahub"
)

// Vidra's metric names.
const (
	ReconcileTotal          = "vidra_reconcile_total"
	ReconcileErrors         = "vidra_reconcile_errors_total"
	ReconcileDuration       = "vidra_reconcile_duration_seconds"
	InfrahubRequests        = "vidra_infrahub_requests_total"
	InfrahubRequestDuration = "vidra_infrahub_request_duration_seconds"
	ApplyOperations         = "vidra_apply_operations_total"
	ManagedObjects          = "vidra_managed_objects"
	ArtifactCacheHits       = "vidra_artifact_cache_hits_total"
	ArtifactCacheMisses     = "vidra_artifact_cache_misses_total"
	ArtifactCacheEvictions  = "vidra_artifact_cache_evictions_total"
	ArtifactCacheBytes      = "vidra_artifact_cache_bytes"
	ArtifactCacheEntries    = "vidra_artifact_cache_entries"
	RemoteClusters          = "vidra_remote_clusters"
	DriftWatchHealthy       = "vidra_drift_watch_healthy"
	Leader                  = "vidra_leader"
	BuildInfo               = "vidra_build_info"
)

// Metrics is the operator's Observer and infrahub.RequestObserver: it turns
// what the controllers and the Infrahub clients report into metric families
// of a Registry.
type Metrics struct {
	reconciles, reconcileErrors *CounterVec
	reconcileDuration           *HistogramVec
	requests                    *CounterVec
	requestDuration             *HistogramVec
	applies                     *CounterVec
	leader                      *Gauge

	mu       sync.Mutex
	managed  map[string]managedEntry
	cache    func() (infrahub.CacheStats, bool)
	clusters func() []ClusterStats
}

// ClusterStats describes a destination cluster whose clients are live.
type ClusterStats struct {
	// Name is "local" or the server URL.
	Name   string
	Remote bool
	// Watches has one entry per drift watch (resource type).
	Watches []WatchStats
}

// WatchStats describes one drift watch.
type WatchStats struct {
	Resource string
	// Healthy is false while the watch's latest list or watch failed.
	Healthy bool
	Synced  bool
}

type managedEntry struct {
	cluster string
	byKind  map[string]int
}

var (
	_ Observer                 = (*Metrics)(nil)
	_ infrahub.RequestObserver = (*Metrics)(nil)
)

// New registers Vidra's families in r. version is reported by
// vidra_build_info.
func New(r *Registry, version string) *Metrics {
	m := &Metrics{
		reconciles: r.NewCounterVec(ReconcileTotal,
			"Reconcile passes per controller.", "controller"),
		reconcileErrors: r.NewCounterVec(ReconcileErrors,
			"Reconcile passes per controller that returned an error (and were requeued with backoff).", "controller"),
		reconcileDuration: r.NewHistogramVec(ReconcileDuration,
			"Duration of reconcile passes per controller.",
			[]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}, "controller"),
		requests: r.NewCounterVec(InfrahubRequests,
			"HTTP requests to Infrahub by endpoint (login, refresh, graphql, query, artifact, storage) and status code (\"error\" when no response arrived).",
			"endpoint", "code"),
		requestDuration: r.NewHistogramVec(InfrahubRequestDuration,
			"Latency of HTTP requests to Infrahub by endpoint.",
			[]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, "endpoint"),
		applies: r.NewCounterVec(ApplyOperations,
			"Operations on managed objects by cluster and result: created, configured, unchanged, failed, conflict, refused, pruned or released.",
			"cluster", "result"),
		leader: r.NewGaugeVec(Leader,
			"1 while this process holds the leader lease (or runs without leader election), else 0.").With(),
		managed: map[string]managedEntry{},
	}
	r.NewGaugeVec(BuildInfo, "Build information; the value is always 1.", "version").With(version).Set(1)
	r.Collect(m.collect)
	return m
}

// ObserveReconcile implements Observer.
func (m *Metrics) ObserveReconcile(controller string, d time.Duration, err error) {
	m.reconciles.With(controller).Inc()
	if err != nil {
		m.reconcileErrors.With(controller).Inc()
	} else {
		// Make the error series exist at zero, so rates work from the start.
		m.reconcileErrors.With(controller).Add(0)
	}
	m.reconcileDuration.With(controller).Observe(d.Seconds())
}

// ObserveApply implements Observer.
func (m *Metrics) ObserveApply(cluster, result string) {
	m.applies.With(cluster, result).Inc()
}

// SetManagedObjects implements Observer.
func (m *Metrics) SetManagedObjects(owner, cluster string, byKind map[string]int) {
	copied := make(map[string]int, len(byKind))
	for k, v := range byKind {
		copied[k] = v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.managed[owner] = managedEntry{cluster: cluster, byKind: copied}
}

// DeleteManagedObjects implements Observer.
func (m *Metrics) DeleteManagedObjects(owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.managed, owner)
}

// ObserveRequest implements infrahub.RequestObserver.
func (m *Metrics) ObserveRequest(endpoint string, code int, d time.Duration) {
	c := "error"
	if code > 0 {
		c = strconv.Itoa(code)
	}
	m.requests.With(endpoint, c).Inc()
	m.requestDuration.With(endpoint).Observe(d.Seconds())
}

// SetLeader records whether this process leads.
func (m *Metrics) SetLeader(leading bool) {
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// WatchCache reports the artifact cache's statistics at every scrape. stats
// returns false while there is no cache.
func (m *Metrics) WatchCache(stats func() (infrahub.CacheStats, bool)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cache = stats
}

// WatchClusters reports the live clusters and their drift watches at every
// scrape.
func (m *Metrics) WatchClusters(stats func() []ClusterStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clusters = stats
}

func (m *Metrics) collectClusters(e *Emitter, stats func() []ClusterStats) {
	if stats == nil {
		return
	}
	clusters := stats()
	remote := 0
	for _, c := range clusters {
		if c.Remote {
			remote++
		}
	}
	e.Family(RemoteClusters, "Remote clusters whose clients and informers are live; unused ones are released after a grace period.", TypeGauge).Sample(float64(remote))
	f := e.Family(DriftWatchHealthy, "1 while a drift watch's latest list or watch request worked, 0 while it fails, by cluster and resource.", TypeGauge, "cluster", "resource")
	for _, c := range clusters {
		for _, w := range c.Watches {
			v := 0.0
			if w.Healthy {
				v = 1
			}
			f.Sample(v, c.Name, w.Resource)
		}
	}
}

func (m *Metrics) collect(e *Emitter) {
	m.mu.Lock()
	type key struct{ cluster, kind string }
	totals := map[key]int{}
	for _, entry := range m.managed {
		for kind, n := range entry.byKind {
			totals[key{entry.cluster, kind}] += n
		}
	}
	cache := m.cache
	clusters := m.clusters
	m.mu.Unlock()
	m.collectClusters(e, clusters)

	keys := make([]key, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].cluster != keys[j].cluster {
			return keys[i].cluster < keys[j].cluster
		}
		return keys[i].kind < keys[j].kind
	})
	f := e.Family(ManagedObjects, "Objects Vidra manages, by cluster and kind (an object shared by several owners counts once per owner).", TypeGauge, "cluster", "kind")
	for _, k := range keys {
		f.Sample(float64(totals[k]), k.cluster, k.kind)
	}

	if cache == nil {
		return
	}
	st, ok := cache()
	if !ok {
		return
	}
	e.Family(ArtifactCacheHits, "Artifact content served from the in-memory cache.", TypeCounter).Sample(float64(st.Hits))
	e.Family(ArtifactCacheMisses, "Artifact content not in the cache (downloaded from Infrahub).", TypeCounter).Sample(float64(st.Misses))
	e.Family(ArtifactCacheEvictions, "Artifact content evicted from the cache to stay within its size bound.", TypeCounter).Sample(float64(st.Evictions))
	e.Family(ArtifactCacheBytes, "Bytes of artifact content held in the cache.", TypeGauge).Sample(float64(st.Bytes))
	e.Family(ArtifactCacheEntries, "Artifacts held in the cache.", TypeGauge).Sample(float64(st.Entries))
}
