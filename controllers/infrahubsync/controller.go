// Package infrahubsync reads the artifacts an InfrahubSync names from
// Infrahub and keeps one VidraResource per artifact.
package infrahubsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/endpointjobs"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	informers "github.com/vidra-operator/vidra/generated/informers/externalversions/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub"
)

// ControllerName names the queue, the event source and the metrics.
const ControllerName = "infrahubsync"

// Source is what the controller needs from Infrahub.
type Source interface {
	ListArtifacts(ctx context.Context, opts infrahub.ListOptions) ([]infrahub.Artifact, error)
	FetchContent(ctx context.Context, a infrahub.Artifact, opts infrahub.ListOptions) ([]byte, error)
	// ResolveBranch names the branch a targetBranch designates: "" and
	// the API's default "main" mean Infrahub's default branch, by the name
	// Infrahub gives it.
	ResolveBranch(ctx context.Context, name string) (string, error)
}

// Sources hands out a Source for a connection configuration, sharing one
// login per credential.
type Sources interface {
	Source(cfg infrahub.Config) (Source, error)
}

// Options tune the controller.
type Options struct {
	// Namespace is the operator's namespace: the only one credentials and
	// CA bundles are read from.
	Namespace string
	// Workers is the number of InfrahubSyncs reconciled in parallel.
	Workers int
	// Interval is the default polling interval.
	Interval time.Duration
	// QueryName is the default stored query; empty uses GraphQL.
	QueryName string
	// CABundle is trusted for every Infrahub besides the system roots.
	CABundle []byte
	// Timeout bounds each Infrahub request.
	Timeout time.Duration
	// RetryBase and RetryMax bound the per-sync error backoff.
	RetryBase, RetryMax time.Duration
	// Observer receives Infrahub request metrics.
	RequestObserver infrahub.RequestObserver
	// Shard is the label selector of this instance's syncs; nil: all.
	Shard *shard.Selector
	// Manifests writes the ConfigMaps holding manifests too large for a
	// VidraResource; without it such artifacts fail to write.
	Manifests ManifestChunkStore
	// MaxManifestBytes is the largest artifact written to a
	// VidraResource; 0 means manifeststore.DefaultMaxBytes.
	MaxManifestBytes int64
	// EndpointConcurrency bounds the requests in flight to one Infrahub;
	// 0 means 8.
	EndpointConcurrency int
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
}

// Controller reconciles InfrahubSyncs.
type Controller struct {
	client versioned.Interface
	syncs  listers.InfrahubSyncLister
	vrs    listers.VidraResourceLister
	// vrIndex finds a sync's VidraResources without scanning them all.
	vrIndex  cache.Indexer
	secrets  corelisters.SecretNamespaceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	sources  Sources
	recorder events.EventRecorder
	metrics  metrics.Observer
	clock    clock.PassiveClock
	opts     Options

	mu    sync.Mutex
	polls map[string]*pollState
	// triggers counts the Trigger calls per sync.
	triggers map[string]uint64
	// branches is the Infrahub branch each sync read last, by name.
	branches map[string]string
	// adopted records, by name, the syncs whose VidraResources this
	// sharded instance has looked for outside its caches (see takeOver).
	adopted map[string]types.UID

	written *writtenResources
	// jobs run the Infrahub requests off the worker pool.
	jobs *endpointjobs.Runner
}

// pollState remembers the last listing of a sync, so passes caused by its
// VidraResources changing do not ask Infrahub again before the interval.
type pollState struct {
	uid        string
	generation int64
	requested  string
	configHash string
	at         time.Time
	artifacts  []infrahub.Artifact
	// triggers is the trigger count when the listing started: a trigger
	// that arrives while a listing is under way asks for another one.
	triggers uint64
	// opts are the options it listed with, the branch resolved.
	opts infrahub.ListOptions
}

// NewController wires the controller to its informers. secrets must only
// cover the operator's namespace.
func NewController(
	client versioned.Interface,
	syncInformer informers.InfrahubSyncInformer,
	vrInformer informers.VidraResourceInformer,
	secretInformer coreinformers.SecretInformer,
	sources Sources,
	recorder events.EventRecorder,
	observer metrics.Observer,
	opts Options,
) (*Controller, error) {
	opts.defaults()
	if observer == nil {
		observer = metrics.Nop{}
	}
	c := &Controller{
		client:   client,
		syncs:    syncInformer.Lister(),
		vrs:      vrInformer.Lister(),
		vrIndex:  vrInformer.Informer().GetIndexer(),
		synced:   []cache.InformerSynced{syncInformer.Informer().HasSynced, vrInformer.Informer().HasSynced},
		sources:  sources,
		recorder: recorder,
		metrics:  observer,
		clock:    clock.RealClock{},
		opts:     opts,
		polls:    map[string]*pollState{},
		triggers: map[string]uint64{},
		branches: map[string]string{},
		adopted:  map[string]types.UID{},
		written:  newWrittenResources(),
	}
	c.queue = workloop.NewQueueWithLimiter(ControllerName,
		workloop.CapBackoff(workloop.RateLimiter(opts.RetryBase, opts.RetryMax), c.backoffCap))
	c.jobs = c.newJobs()
	if _, err := syncInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*v1alpha1.InfrahubSync), cur.(*v1alpha1.InfrahubSync)
			if o.Generation != n.Generation || DeletionMoved(o, n) ||
				o.Annotations[v1alpha1.AnnotationReconcileRequestedAt] != n.Annotations[v1alpha1.AnnotationReconcileRequestedAt] {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj any) {
			c.enqueue(obj)
		},
	}); err != nil {
		return nil, fmt.Errorf("add InfrahubSync event handler: %w", err)
	}
	if _, ok := vrInformer.Informer().GetIndexer().GetIndexers()[indexByController]; !ok {
		if err := vrInformer.Informer().AddIndexers(cache.Indexers{indexByController: controllerUID}); err != nil {
			return nil, fmt.Errorf("add VidraResource index: %w", err)
		}
	}
	// A VidraResource that became (un)ready, was deleted by hand or had its
	// spec edited brings its sync back, without a new Infrahub request.
	if _, err := vrInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, n := old.(*v1alpha1.VidraResource), cur.(*v1alpha1.VidraResource)
			switch {
			case o.Generation != n.Generation:
				c.enqueueOwner(n, resourceSettle)
			case readyOf(o) != readyOf(n):
				c.enqueueOwner(n, c.readinessDelay(o, n))
			case healthOf(o) != healthOf(n):
				// Only the sync's health summary changes.
				c.enqueueOwner(n, progressInterval)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if vr, ok := obj.(*v1alpha1.VidraResource); ok {
				c.written.drop(vr.Name, vr.UID)
				c.enqueueOwner(vr, resourceSettle)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("add VidraResource event handler: %w", err)
	}
	if secretInformer != nil {
		c.secrets = secretInformer.Lister().Secrets(opts.Namespace)
		c.synced = append(c.synced, secretInformer.Informer().HasSynced)
		if _, err := secretInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.secretChanged,
			UpdateFunc: func(_, cur any) { c.secretChanged(cur) },
			DeleteFunc: c.secretChanged,
		}); err != nil {
			return nil, fmt.Errorf("add Secret event handler: %w", err)
		}
	}
	return c, nil
}

func readyOf(vr *v1alpha1.VidraResource) string {
	for _, c := range vr.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// enqueueOwner brings back the sync of a VidraResource that changed, after
// delay; changes within the delay are folded into one pass.
func (c *Controller) enqueueOwner(vr *v1alpha1.VidraResource, delay time.Duration) {
	if ref := metav1.GetControllerOf(vr); ref != nil && ref.Kind == "InfrahubSync" {
		c.queue.AddAfter(ref.Name, delay)
	}
}

const (
	// resourceSettle is how long VidraResource changes are gathered before
	// the sync's readiness is computed again.
	resourceSettle = time.Second
	// progressInterval spaces the status writes that only report progress
	// while many VidraResources converge: each rewrites the sync's whole
	// artifacts table, which at a thousand artifacts costs the API server
	// more than the VidraResources' own writes.
	progressInterval = 10 * time.Second
)

// readinessDelay is how soon the sync of a VidraResource whose readiness
// changed must look again: soon when the sync's own readiness may flip
// (a resource lost Ready, or the last one became Ready), else at the
// progress interval.
func (c *Controller) readinessDelay(old, cur *v1alpha1.VidraResource) time.Duration {
	if isReady(old) && !isReady(cur) {
		return resourceSettle
	}
	ref := metav1.GetControllerOf(cur)
	if ref == nil {
		return resourceSettle
	}
	siblings, err := c.resourcesOf(ref.UID)
	if err != nil {
		return resourceSettle
	}
	for _, vr := range siblings {
		if vr.Name == cur.Name {
			vr = cur // the lister may not hold this update yet
		}
		if !isReady(vr) {
			return progressInterval
		}
	}
	return resourceSettle
}

// indexByController indexes VidraResources by the UID of the InfrahubSync
// that controls them.
const indexByController = "infrahubsync-uid"

func controllerUID(obj any) ([]string, error) {
	vr, ok := obj.(*v1alpha1.VidraResource)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(vr); ref != nil && ref.Kind == "InfrahubSync" {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// resourcesOf returns the cached VidraResources a sync controls.
func (c *Controller) resourcesOf(uid types.UID) ([]*v1alpha1.VidraResource, error) {
	objs, err := c.vrIndex.ByIndex(indexByController, string(uid))
	if err != nil {
		return nil, fmt.Errorf("list VidraResources: %w", err)
	}
	out := make([]*v1alpha1.VidraResource, 0, len(objs))
	for _, obj := range objs {
		if vr, ok := obj.(*v1alpha1.VidraResource); ok {
			out = append(out, vr)
		}
	}
	return out, nil
}

// isReady reports whether a VidraResource is Ready for its current spec.
func isReady(vr *v1alpha1.VidraResource) bool {
	cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == vr.Generation
}

// secretChanged brings back the syncs whose credentials or CA may have
// changed, and has them poll Infrahub again.
func (c *Controller) secretChanged(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok || s.Namespace != c.opts.Namespace {
		return
	}
	syncs, err := c.syncs.List(everything)
	if err != nil {
		return
	}
	_, legacy := s.Labels[LegacyCredentialsLabel]
	for _, sync := range syncs {
		src := sync.Spec.Source
		if legacy ||
			(src.CredentialsSecretRef != nil && src.CredentialsSecretRef.Name == s.Name) ||
			(src.CABundleSecretRef != nil && src.CABundleSecretRef.Name == s.Name) {
			c.Trigger(sync.Name)
		}
	}
}

// Trigger makes the named sync poll Infrahub now, whatever its interval.
// The webhook receiver calls it.
func (c *Controller) Trigger(name string) {
	c.mu.Lock()
	c.triggers[name]++
	c.mu.Unlock()
	c.queue.Add(name)
}

// Run starts the workers and blocks until ctx is done; in-flight items finish
// before it returns.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Run(ctx, ControllerName, c.opts.Workers, c.queue, c.synced, c.runWorker)
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	return workloop.ProcessNextWorkItem(ctx, c.queue, c.syncHandler)
}

// syncHandler reconciles one InfrahubSync and records how it went.
func (c *Controller) syncHandler(ctx context.Context, key string) (requeueAfter time.Duration, err error) {
	start := c.clock.Now()
	logger := klog.FromContext(ctx).WithValues("infrahubsync", key)
	ctx = klog.NewContext(ctx, logger)
	defer workloop.Recover(ctx, key, &err)
	defer func() {
		observed := err
		if errors.Is(err, workloop.ErrWaiting) {
			observed = nil // the pass goes on when Infrahub answers
		}
		c.metrics.ObserveReconcile(ControllerName, c.clock.Since(start), observed)
	}()

	sync, err := c.syncs.Get(key)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.polls, key)
		delete(c.triggers, key)
		delete(c.branches, key)
		delete(c.adopted, key)
		c.mu.Unlock()
		c.jobs.Forget(key)
		// Its VidraResources go with it; deleting them here rather than
		// leaving them to the garbage collector is what makes a large
		// sync go in seconds.
		removed, err := c.writer().RemoveOwnedByGone(ctx, syncKind, key, LookupBy(c.client.InfrahubV1alpha1().InfrahubSyncs().Get))
		if removed > 0 {
			logger.V(1).Info("Deleted the VidraResources of a deleted sync", "count", removed)
		}
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("get InfrahubSync %s: %w", key, err)
	}
	return c.sync(ctx, sync.DeepCopy())
}
