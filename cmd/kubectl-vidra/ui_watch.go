package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
)

var (
	gvrInfrahubSyncs  = v1alpha1.SchemeGroupVersion.WithResource("infrahubsyncs")
	gvrVidraResources = v1alpha1.SchemeGroupVersion.WithResource("vidraresources")
	gvrEvents         = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}
)

// regardingIndex indexes events by the object they regard.
const regardingIndex = "regarding"

// watcher keeps informers on the syncs, the VidraResources, the events and
// the objects the VidraResources manage on the local cluster, and reports
// every change on changed. It only reads, with the user's credentials.
type watcher struct {
	ctx     context.Context
	dyn     dynamic.Interface
	mapper  *cluster.Mapper
	changed chan struct{}

	syncs, resources, events *watched

	mu sync.Mutex
	// objects are informers on managed objects, one per resource and
	// namespace ("" for cluster-scoped kinds), started when an inventory
	// first names them.
	objects map[objectWatchKey]*watched
	// mappings caches the resource of inventory entries that recorded none.
	mappings map[schema.GroupVersionKind]mappingResult
}

type objectWatchKey struct {
	gvr       schema.GroupVersionResource
	namespace string
}

type mappingResult struct {
	gvr schema.GroupVersionResource
	err error
	at  time.Time
}

// mappingRetry is how long a failed lookup (a CRD not installed yet) is
// remembered before discovery is asked again.
const mappingRetry = 30 * time.Second

// watched is one informer and the last error its watch reported.
type watched struct {
	what     string
	informer cache.SharedIndexInformer

	mu      sync.Mutex
	lastErr string
}

func (w *watched) problem() string {
	if w.informer.HasSynced() {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == "" {
		return ""
	}
	return fmt.Sprintf("cannot read %s: %s", w.what, w.lastErr)
}

func newWatcher(ctx context.Context, dyn dynamic.Interface, disc discovery.DiscoveryInterface) *watcher {
	w := &watcher{
		ctx:      ctx,
		dyn:      dyn,
		mapper:   cluster.NewMapper(disc),
		changed:  make(chan struct{}, 1),
		objects:  map[objectWatchKey]*watched{},
		mappings: map[schema.GroupVersionKind]mappingResult{},
	}
	w.syncs = w.start("InfrahubSyncs", gvrInfrahubSyncs, "", nil)
	w.resources = w.start("VidraResources", gvrVidraResources, "", nil)
	w.events = w.start("events", gvrEvents, "", cache.Indexers{regardingIndex: func(obj any) ([]string, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return nil, nil
		}
		ref, _ := eventFrom(u)
		return []string{refKey(ref)}, nil
	}})
	// An empty cluster sends no events: say when the first lists are in,
	// so the page stops loading.
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), w.syncs.informer.HasSynced, w.resources.informer.HasSynced) {
			w.notify()
		}
	}()
	return w
}

func refKey(r objectRef) string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// start runs an informer until the watcher's context ends.
func (w *watcher) start(what string, gvr schema.GroupVersionResource, namespace string, indexers cache.Indexers) *watched {
	if indexers == nil {
		indexers = cache.Indexers{}
	}
	indexers[cache.NamespaceIndex] = cache.MetaNamespaceIndexFunc
	inf := dynamicinformer.NewFilteredDynamicInformer(w.dyn, gvr, namespace, 0, indexers, nil).Informer()
	wd := &watched{what: what, informer: inf}
	_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		wd.mu.Lock()
		wd.lastErr = oneLine(err.Error())
		wd.mu.Unlock()
		w.notify()
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(any, any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	})
	go inf.RunWithContext(w.ctx)
	return wd
}

func (w *watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// page builds the current page from the caches.
func (w *watcher) page() pageModel {
	in := pageInputs{
		syncs:     listAll(w.syncs),
		resources: listAll(w.resources),
		live:      w.live,
		events:    w.eventsFor,
	}
	for _, wd := range []*watched{w.syncs, w.resources, w.events} {
		if p := wd.problem(); p != "" {
			in.problems = append(in.problems, p)
		}
	}
	page := buildPage(in)
	page.Loading = !w.syncs.informer.HasSynced() || !w.resources.informer.HasSynced()
	w.mu.Lock()
	for _, wd := range w.objects {
		if p := wd.problem(); p != "" {
			page.Problems = append(page.Problems, p)
		}
	}
	w.mu.Unlock()
	sort.Strings(page.Problems)
	return page
}

func listAll(wd *watched) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range wd.informer.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

func (w *watcher) eventsFor(ref objectRef) []eventView {
	objs, err := w.events.informer.GetIndexer().ByIndex(regardingIndex, refKey(ref))
	if err != nil {
		return nil
	}
	var out []eventView
	for _, obj := range objs {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			_, ev := eventFrom(u)
			out = append(out, ev)
		}
	}
	return out
}

// live returns a managed object from its informer, starting the informer
// on first use; until it has listed, the object's state is Unknown.
func (w *watcher) live(e v1alpha1.ManagedResource) liveObject {
	gvr, err := w.resourceOf(e)
	if err != nil {
		return liveObject{state: stateUnknown, message: oneLine(err.Error())}
	}
	key := objectWatchKey{gvr: gvr, namespace: e.Namespace}
	w.mu.Lock()
	wd, ok := w.objects[key]
	if !ok {
		what := gvr.Resource
		if gvr.Group != "" {
			what += "." + gvr.Group
		}
		if e.Namespace != "" {
			what += " in namespace " + e.Namespace
		}
		wd = w.start(what, gvr, e.Namespace, nil)
		w.objects[key] = wd
	}
	w.mu.Unlock()
	if !wd.informer.HasSynced() {
		msg := "not read yet"
		if p := wd.problem(); p != "" {
			msg = p
		}
		return liveObject{state: stateUnknown, message: msg}
	}
	k := e.Name
	if e.Namespace != "" {
		k = e.Namespace + "/" + e.Name
	}
	obj, exists, err := wd.informer.GetStore().GetByKey(k)
	switch {
	case err != nil:
		return liveObject{state: stateUnknown, message: oneLine(err.Error())}
	case !exists:
		return liveObject{state: stateMissing, message: "not found in the cluster"}
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return liveObject{state: stateUnknown, message: fmt.Sprintf("unexpected %T in the cache", obj)}
	}
	return liveObject{obj: u}
}

// resourceOf returns an inventory entry's resource: the one it recorded,
// else through discovery (cached; failures for mappingRetry, so a missing
// kind is not looked up on every change).
func (w *watcher) resourceOf(e v1alpha1.ManagedResource) (schema.GroupVersionResource, error) {
	gv, err := schema.ParseGroupVersion(e.APIVersion)
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("apiVersion %q: %w", e.APIVersion, err)
	}
	if gvr, ok := e.RecordedResource(); ok {
		return gvr, nil
	}
	gvk := gv.WithKind(e.Kind)
	w.mu.Lock()
	r, ok := w.mappings[gvk]
	w.mu.Unlock()
	if !ok || r.err != nil && time.Since(r.at) > mappingRetry {
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		mapping, err := w.mapper.Mapping(ctx, gvk)
		cancel()
		r = mappingResult{err: err, at: time.Now()}
		if err == nil {
			r.gvr = mapping.Resource
		}
		w.mu.Lock()
		w.mappings[gvk] = r
		w.mu.Unlock()
	}
	return r.gvr, r.err
}
