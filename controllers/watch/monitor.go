package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// monitor is one resource type's informer and the owners that need it.
type monitor struct {
	gvr      schema.GroupVersionResource
	owners   map[string]struct{} // guarded by Manager.mu
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	done     chan struct{} // closed when the informer's Run returned
	// stopped silences the handlers as soon as the monitor is dropped, so
	// an informer still winding down reports nothing more.
	stopped  atomic.Bool
	onChange func([]string, schema.GroupVersionResource, string, string)
	// onWatchHealth is told when the watch starts or stops failing.
	onWatchHealth func(gvr schema.GroupVersionResource)
	onHealth      func([]string, schema.GroupVersionResource, string, string)
	logger        klog.Logger

	// own tells the events of Vidra's writes from everyone else's.
	own *ownWrites

	errMu      sync.Mutex
	lastErr    error
	lastErrAt  time.Time
	lastLogged time.Time
	suppressed int
	// failing is the error of the latest list or watch request, nil once
	// one succeeds again.
	failing error
}

// startMonitor creates gvr's informer and starts it without waiting for it
// to sync. m.mu is held.
func (m *Manager) startMonitor(gvr schema.GroupVersionResource) (*monitor, error) {
	mon := &monitor{
		gvr:           gvr,
		owners:        map[string]struct{}{},
		done:          make(chan struct{}),
		onChange:      m.onChange,
		onWatchHealth: m.watchHealthChanged,
		onHealth:      m.onHealth,
		own:           newOwnWrites(),
		logger:        m.logger.WithValues("resource", gvr.String()),
	}
	// The list and watch go through the monitor, which records whether
	// the latest request worked: the watch's health.
	resource := m.client.Resource(gvr)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			m.tweak(&o)
			list, err := resource.List(ctx, o)
			mon.observe(ctx, err)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
			m.tweak(&o)
			w, err := resource.Watch(ctx, o)
			mon.observe(ctx, err)
			return w, err
		},
	}
	mon.informer = cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, m.client),
		&unstructured.Unstructured{}, cache.SharedIndexInformerOptions{
			Indexers:          cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
			ObjectDescription: gvr.String(),
		})
	if err := mon.informer.SetTransform(m.cacheTransform); err != nil {
		return nil, fmt.Errorf("set transform for %s: %w", gvr, err)
	}
	if err := mon.informer.SetWatchErrorHandlerWithContext(mon.watchError); err != nil {
		return nil, fmt.Errorf("set watch error handler for %s: %w", gvr, err)
	}
	if _, err := mon.informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    mon.onAdd,
		UpdateFunc: mon.onUpdate,
		DeleteFunc: mon.onDelete,
	}); err != nil {
		return nil, fmt.Errorf("add event handler for %s: %w", gvr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mon.cancel = cancel
	go func() {
		defer close(mon.done)
		mon.informer.RunWithContext(ctx)
	}()
	return mon, nil
}

// stop cancels the informer and waits for it in the background, counted in
// wg. The informer's Run waits for the event handlers, so waiting inline
// could block a reconcile behind a slow OnChange.
func (mon *monitor) stop(wg *sync.WaitGroup) {
	if mon.stopped.Swap(true) {
		return
	}
	mon.cancel()
	wg.Go(func() { <-mon.done })
}

// observe records the outcome of a list or watch request. An expired
// resourceVersion is routine (the reflector lists again) and says nothing
// about health, and neither does the cancellation that stops the informer.
func (mon *monitor) observe(_ context.Context, err error) {
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return
	}
	mon.setHealth(err)
}

// setHealth records whether the watch works and tells the owners when that
// changes.
func (mon *monitor) setHealth(err error) {
	if mon.stopped.Load() {
		return
	}
	mon.errMu.Lock()
	changed := (mon.failing == nil) != (err == nil)
	mon.failing = err
	if err != nil {
		mon.lastErr, mon.lastErrAt = err, time.Now()
	}
	mon.errMu.Unlock()
	if changed && mon.onWatchHealth != nil && !mon.stopped.Load() {
		mon.onWatchHealth(mon.gvr)
	}
}

// health returns the error of the latest list or watch request, nil when
// it worked.
func (mon *monitor) health() error {
	mon.errMu.Lock()
	defer mon.errMu.Unlock()
	return mon.failing
}

func (mon *monitor) onAdd(obj any, isInInitialList bool) {
	c, ok := obj.(*cachedObject)
	if !ok {
		return
	}
	mon.reportHealth(nil, c)
	// The initial list is what the owners just applied or will reconcile
	// anyway; reporting it would stampede every owner at once.
	if isInInitialList {
		return
	}
	mon.notifyUnlessOwn(ownersOf(c), c)
}

func (mon *monitor) onUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(*cachedObject)
	n, ok2 := newObj.(*cachedObject)
	if !ok1 || !ok2 {
		return
	}
	mon.reportHealth(o, n)
	if !contentChanged(o, n) {
		return
	}
	mon.notifyUnlessOwn(ownersOf(o, n), n)
}

func (mon *monitor) onDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		// The deletion was missed during a watch gap; Obj is the last state
		// the cache knew, and the key names it even if Obj is unusable.
		if c, ok := tomb.Obj.(*cachedObject); ok && c != nil {
			mon.reportHealth(c, nil)
			mon.notify(ownersOf(c), c.Namespace, c.Name)
			return
		}
		ns, name, err := cache.SplitMetaNamespaceKey(tomb.Key)
		if err != nil {
			mon.logger.Error(err, "Dropping deletion with an unparsable key", "key", tomb.Key)
			return
		}
		mon.notify(nil, ns, name)
		return
	}
	if c, ok := obj.(*cachedObject); ok {
		mon.own.deleted(objectKey(c.Namespace, c.Name))
		mon.reportHealth(c, nil)
		mon.notify(ownersOf(c), c.Namespace, c.Name)
	}
}

// notifyUnlessOwn reports an added or changed object, unless the event is
// the result of Vidra's own write; while such a write is in flight the
// report waits until its result is known.
func (mon *monitor) notifyUnlessOwn(owners []string, obj *cachedObject) {
	ns, name := obj.Namespace, obj.Name
	report := func() { mon.notify(owners, ns, name) }
	if mon.own.observe(objectKey(ns, name), obj.ResourceVersion, report) {
		report()
	}
}

func (mon *monitor) notify(owners []string, namespace, name string) {
	if mon.onChange == nil || mon.stopped.Load() {
		return
	}
	mon.onChange(owners, mon.gvr, namespace, name)
}

// watchError replaces client-go's default handler, which logs every failed
// relist. A resource type whose CRD was deleted fails until its owners drop
// it; logging that at most once a minute keeps the log readable while the
// reflector keeps retrying with backoff.
func (mon *monitor) watchError(_ context.Context, _ *cache.Reflector, err error) {
	switch {
	case errors.Is(err, io.EOF), apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		// Routine: the watch ended or its resourceVersion expired; the
		// reflector relists.
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
		mon.logger.V(1).Info("Watch closed with unexpected EOF", "err", err)
		return
	}

	// A watch cut by an error, not only a failed request, means drift may
	// go unseen until the reflector gets through again.
	mon.setHealth(err)
	now := time.Now()
	mon.errMu.Lock()
	if !mon.lastLogged.IsZero() && now.Sub(mon.lastLogged) < errorLogInterval {
		mon.suppressed++
		mon.errMu.Unlock()
		return
	}
	suppressed := mon.suppressed
	mon.lastLogged, mon.suppressed = now, 0
	mon.errMu.Unlock()

	msg := "Listing or watching managed objects failed"
	switch {
	case apierrors.IsNotFound(err):
		msg = "Listing or watching managed objects failed; the resource type is not served, was its CRD deleted?"
	case apierrors.IsForbidden(err):
		msg = "Listing or watching managed objects is forbidden; drift on this kind is repaired only at the interval until Vidra may list and watch it"
	}
	mon.logger.Error(err, msg, "suppressedSinceLastLog", suppressed)
}

func (mon *monitor) lastError() (error, time.Time) {
	mon.errMu.Lock()
	defer mon.errMu.Unlock()
	return mon.lastErr, mon.lastErrAt
}
