// Package watch keeps informers on the objects Vidra manages in one
// destination cluster, so that drift (an edit or a deletion by someone else)
// triggers a reconcile of the VidraResources that declare the object, and so
// that reconciles can read live objects from a cache instead of the API
// server.
//
// A Manager runs one informer per resource type (GVR), each with its own
// context, like the garbage collector's graph builder. An informer starts
// when the first VidraResource declaring that type appears and stops when the
// last one goes, so watches do not outlive their use (the earlier operator's
// informers never stopped). Each informer records whether its latest list or
// watch request worked (OwnerWatchHealth), and its owners are told when that
// changes.
//
// Only objects with the managed-by=vidra label are listed and watched.
// Events are filtered so that they cannot feed a reconcile loop: the initial
// list is silent, and updates count only when something other than status,
// managedFields, resourceVersion or generation changed.
//
// Vidra's own writes are not reported when the writer announced them with
// BeginOwnWrite: the event carrying the resourceVersion the write returned
// is the state just applied. An unannounced own write costs one follow-up
// reconcile, which must find nothing to write, or it would loop. The cache
// drops status, managedFields and annotations that are never drift (see
// StripTransform), so a change to those alone is not seen either; the
// default HealthTransform keeps a compact health record in place of status,
// whose changes are reported apart from drift, to OnHealthChange.
package watch

import (
	"cmp"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// DefaultLabelSelector selects the objects Vidra manages.
const DefaultLabelSelector = v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByVidra

// errorLogInterval is how often a failing informer may log. A resource type
// whose CRD was deleted fails every relist (up to every 30s, after backoff)
// until its last owner lets go of it.
const errorLogInterval = time.Minute

// Options configure a Manager.
type Options struct {
	// LabelSelector restricts the watched objects; DefaultLabelSelector when
	// empty.
	LabelSelector string
	// Transform is applied to each object before it is cached;
	// HealthTransform when nil. A custom one should usually call
	// HealthTransform too, or Health and OnHealthChange see no health.
	// What it returns is kept encoded (see cachedObject) and decoded by
	// Get.
	Transform cache.TransformFunc
	// OnChange is called when a managed object is created after its
	// informer synced, deleted (including objects that lost the label), or
	// changed in content. owners is the union of the owner names in the old
	// and new objects' owned-by annotation, sorted; it is empty for an object
	// without one, so the caller may fall back on its own inventory.
	// namespace is empty for cluster-scoped objects.
	//
	// It is called from informer goroutines, possibly concurrently for
	// different resource types, and must not block: enqueue and return.
	// Stop waits for running calls to return.
	OnChange func(owners []string, gvr schema.GroupVersionResource, namespace, name string)
	// OnWatchHealthChange is called with the owners of a resource type whose
	// list or watch starts failing or works again (see OwnerWatchHealth). Like
	// OnChange it must not block.
	OnWatchHealthChange func(owners []string)
	// OnHealthChange is called, like OnChange, when the health of a managed
	// object with owners may have changed (see HealthTransform): added
	// (also in the initial list), deleted, or updated with another health.
	// Vidra's own writes are reported too.
	OnHealthChange func(owners []string, gvr schema.GroupVersionResource, namespace, name string)
	// Logger receives informer errors; klog.Background() when unset.
	Logger klog.Logger
}

// Manager runs the informers of one destination cluster and identity. Its
// methods are safe for concurrent use.
type Manager struct {
	client        dynamic.Interface
	selector      string
	transform     cache.TransformFunc
	onChange      func([]string, schema.GroupVersionResource, string, string)
	onWatchHealth func([]string)
	onHealth      func([]string, schema.GroupVersionResource, string, string)
	logger        klog.Logger

	mu       sync.Mutex
	stopped  bool
	owners   map[string]map[schema.GroupVersionResource]struct{}
	monitors map[schema.GroupVersionResource]*monitor
	// stopping counts informers being shut down in the background, so Stop
	// can wait for them without SetOwnerResources ever blocking.
	stopping sync.WaitGroup
}

// NewManager returns a Manager that watches through client. It starts
// nothing until SetOwnerResources is called. It panics on an invalid
// LabelSelector, which is a programming error.
func NewManager(client dynamic.Interface, opts Options) *Manager {
	sel := opts.LabelSelector
	if sel == "" {
		sel = DefaultLabelSelector
	}
	if _, err := labels.Parse(sel); err != nil {
		panic("watch: invalid label selector " + sel + ": " + err.Error())
	}
	transform := opts.Transform
	if transform == nil {
		transform = HealthTransform
	}
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = klog.Background()
	}
	return &Manager{
		client:        client,
		selector:      sel,
		transform:     transform,
		onChange:      opts.OnChange,
		onHealth:      opts.OnHealthChange,
		onWatchHealth: opts.OnWatchHealthChange,
		logger:        logger.WithName("watch"),
		owners:        map[string]map[schema.GroupVersionResource]struct{}{},
		monitors:      map[schema.GroupVersionResource]*monitor{},
	}
}

// SetOwnerResources declares the complete set of resource types owner
// manages, replacing what it declared before. Informers for types gaining
// their first owner are started, and those losing their last owner are
// stopped. It never waits for an informer to sync or stop. An empty gvrs is
// RemoveOwner. After Stop it does nothing.
func (m *Manager) SetOwnerResources(owner string, gvrs []schema.GroupVersionResource) {
	want := make(map[schema.GroupVersionResource]struct{}, len(gvrs))
	for _, gvr := range gvrs {
		if gvr.Version == "" || gvr.Resource == "" {
			m.logger.Error(nil, "Ignoring incomplete resource type", "owner", owner, "resource", gvr.String())
			continue
		}
		want[gvr] = struct{}{}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	had := m.owners[owner]
	for gvr := range had {
		if _, keep := want[gvr]; !keep {
			m.release(owner, gvr)
		}
	}
	for gvr := range want {
		if _, ok := had[gvr]; !ok {
			m.acquire(owner, gvr)
		}
	}
	if len(want) == 0 {
		delete(m.owners, owner)
	} else {
		m.owners[owner] = want
	}
}

// RemoveOwner forgets owner, stopping the informers only it needed.
func (m *Manager) RemoveOwner(owner string) {
	m.SetOwnerResources(owner, nil)
}

// acquire adds owner to gvr's monitor, starting one if needed. m.mu is held.
func (m *Manager) acquire(owner string, gvr schema.GroupVersionResource) {
	mon := m.monitors[gvr]
	if mon == nil {
		var err error
		mon, err = m.startMonitor(gvr)
		if err != nil {
			// Not reachable with a fresh informer; logged rather than
			// returned because the owner's other types are still useful.
			m.logger.Error(err, "Starting informer failed", "resource", gvr.String())
			return
		}
		m.monitors[gvr] = mon
	}
	mon.owners[owner] = struct{}{}
}

// release removes owner from gvr's monitor and stops it when it was the last
// one. m.mu is held.
func (m *Manager) release(owner string, gvr schema.GroupVersionResource) {
	mon := m.monitors[gvr]
	if mon == nil {
		return
	}
	delete(mon.owners, owner)
	if len(mon.owners) == 0 {
		delete(m.monitors, gvr)
		mon.stop(&m.stopping)
	}
}

// Get returns the object from gvr's informer cache. synced is false when no
// informer runs for gvr or it has not finished its initial list; the caller
// should then read from the API server. With synced true a nil object means
// no object with the manager's label exists under that name: an unlabelled
// object of that name may still exist. The cache lags writes slightly, and
// lacks what the Transform strips (by default managedFields and the kubectl
// last-applied annotation).
//
// The returned object is decoded for the caller, who may modify it.
func (m *Manager) Get(gvr schema.GroupVersionResource, namespace, name string) (obj *unstructured.Unstructured, synced bool) {
	mon := m.monitor(gvr)
	if mon == nil || !mon.informer.HasSynced() {
		return nil, false
	}
	item, exists, err := mon.informer.GetIndexer().GetByKey(cache.NewObjectName(namespace, name).String())
	if err != nil || !exists {
		// The indexer never returns an error for GetByKey; treat one as a
		// cache miss so the caller reads live.
		return nil, err == nil
	}
	c, ok := item.(*cachedObject)
	if !ok {
		return nil, false
	}
	u, err := c.object()
	if err != nil {
		// Cannot happen for what compact encoded; read live instead.
		m.logger.Error(err, "Reading from the API server instead")
		return nil, false
	}
	return u, true
}

// cacheTransform runs the Options.Transform, then keeps the result in the
// compact form Get decodes. Tombstones and objects already compacted pass
// through.
func (m *Manager) cacheTransform(obj any) (any, error) {
	if c, ok := obj.(*cachedObject); ok {
		return c, nil
	}
	out, err := m.transform(obj)
	if err != nil {
		return nil, err
	}
	u, ok := out.(*unstructured.Unstructured)
	if !ok || u == nil {
		return out, nil
	}
	return compact(u)
}

// BeginOwnWrite announces that Vidra is about to write an object; call the
// returned function with the resourceVersion the write produced, or "" when
// it failed or changed nothing. The watch event of that write is then not
// reported as a change, even when it arrives before the write returns.
// Events of other writers meanwhile are reported once the write returns.
// Writes of types that are not watched need no announcement.
func (m *Manager) BeginOwnWrite(gvr schema.GroupVersionResource, namespace, name string) (done func(resourceVersion string)) {
	mon := m.monitor(gvr)
	if mon == nil {
		return func(string) {}
	}
	key := objectKey(namespace, name)
	mon.own.begin(key)
	return func(resourceVersion string) {
		for _, report := range mon.own.end(key, resourceVersion) {
			report()
		}
	}
}

// watchHealthChanged tells the owners of gvr that its watch's health changed.
func (m *Manager) watchHealthChanged(gvr schema.GroupVersionResource) {
	if m.onWatchHealth == nil {
		return
	}
	m.mu.Lock()
	mon := m.monitors[gvr]
	var owners []string
	if mon != nil {
		owners = make([]string, 0, len(mon.owners))
		for o := range mon.owners {
			owners = append(owners, o)
		}
	}
	m.mu.Unlock()
	if len(owners) > 0 {
		slices.Sort(owners)
		m.onWatchHealth(owners)
	}
}

// WatchHealth is the state of the watches one owner needs.
type WatchHealth struct {
	// Resources is the number of resource types watched for the owner.
	Resources int
	// Failing maps each resource type whose latest list or watch failed to
	// that failure.
	Failing map[schema.GroupVersionResource]error
}

// OwnerWatchHealth reports whether the watches owner declared work: a type is
// failing from a failed list or watch request until one succeeds again.
func (m *Manager) OwnerWatchHealth(owner string) WatchHealth {
	m.mu.Lock()
	mons := make([]*monitor, 0, len(m.owners[owner]))
	for gvr := range m.owners[owner] {
		if mon := m.monitors[gvr]; mon != nil {
			mons = append(mons, mon)
		}
	}
	m.mu.Unlock()
	h := WatchHealth{Resources: len(mons)}
	for _, mon := range mons {
		if err := mon.health(); err != nil {
			if h.Failing == nil {
				h.Failing = map[schema.GroupVersionResource]error{}
			}
			h.Failing[mon.gvr] = err
		}
	}
	return h
}

// Owners returns the number of owners declaring resource types here.
func (m *Manager) Owners() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owners)
}

// HasSynced reports whether gvr's informer runs and has finished its
// initial list.
func (m *Manager) HasSynced(gvr schema.GroupVersionResource) bool {
	mon := m.monitor(gvr)
	return mon != nil && mon.informer.HasSynced()
}

// Resources returns the watched resource types, sorted.
func (m *Manager) Resources() []schema.GroupVersionResource {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]schema.GroupVersionResource, 0, len(m.monitors))
	for gvr := range m.monitors {
		out = append(out, gvr)
	}
	slices.SortFunc(out, compareGVR)
	return out
}

// Stats describes the running informers.
type Stats struct {
	// Informers is the number of running informers.
	Informers int
	// Objects is the number of cached objects over all informers.
	Objects int
	// Resources has one entry per informer, sorted by resource type.
	Resources []ResourceStats
}

// ResourceStats describes one informer.
type ResourceStats struct {
	Resource schema.GroupVersionResource
	// Owners is the number of owners declaring this type.
	Owners int
	Synced bool
	// Healthy is false while the latest list or watch request failed.
	Healthy bool
	// Objects is the number of cached objects.
	Objects int
	// LastError is the informer's latest list or watch failure, if any;
	// it is not cleared when the informer recovers, LastErrorTime tells.
	LastError     string
	LastErrorTime time.Time
}

// Stats returns a snapshot of the informers.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	var st Stats
	mons := make([]*monitor, 0, len(m.monitors))
	owners := make([]int, 0, len(m.monitors))
	for _, mon := range m.monitors {
		mons = append(mons, mon)
		owners = append(owners, len(mon.owners))
	}
	m.mu.Unlock()

	// Counting under the indexer's own lock, not m.mu, keeps reconciles
	// from waiting on a metrics scrape.
	for i, mon := range mons {
		rs := ResourceStats{
			Resource: mon.gvr,
			Owners:   owners[i],
			Synced:   mon.informer.HasSynced(),
			Healthy:  mon.health() == nil,
			Objects:  len(mon.informer.GetIndexer().ListKeys()),
		}
		if err, at := mon.lastError(); err != nil {
			rs.LastError, rs.LastErrorTime = err.Error(), at
		}
		st.Objects += rs.Objects
		st.Resources = append(st.Resources, rs)
	}
	st.Informers = len(st.Resources)
	slices.SortFunc(st.Resources, func(a, b ResourceStats) int { return compareGVR(a.Resource, b.Resource) })
	return st
}

// Stop stops every informer and waits until their goroutines have exited,
// including informers stopped earlier in the background. Later calls to
// SetOwnerResources do nothing. It is idempotent and safe to call
// concurrently.
func (m *Manager) Stop() {
	m.mu.Lock()
	if !m.stopped {
		m.stopped = true
		for gvr, mon := range m.monitors {
			mon.stop(&m.stopping)
			delete(m.monitors, gvr)
		}
		clear(m.owners)
	}
	m.mu.Unlock()
	m.stopping.Wait()
}

func (m *Manager) monitor(gvr schema.GroupVersionResource) *monitor {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.monitors[gvr]
}

// tweak restricts lists and watches to the managed objects.
func (m *Manager) tweak(o *metav1.ListOptions) {
	o.LabelSelector = m.selector
}

func compareGVR(a, b schema.GroupVersionResource) int {
	return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Resource, b.Resource))
}
