// Package vidraresource applies the objects of each VidraResource's manifest
// to its destination, keeps their inventory, prunes what left the manifest,
// shares objects safely between owners and repairs drift.
package vidraresource

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	informers "github.com/vidra-operator/vidra/generated/informers/externalversions/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// ControllerName names the queue, the event source and the metrics.
const ControllerName = "vidraresource"

// Clusters hands out destination clusters; *cluster.Manager implements it.
type Clusters interface {
	Target(ctx context.Context, dest v1alpha1.Destination) (*cluster.Target, error)
	Clusters() []*cluster.Cluster
}

// Options tune the controller.
type Options struct {
	// Workers is the number of VidraResources reconciled in parallel.
	Workers int
	// Interval is the default drift-repair interval.
	Interval time.Duration
	// ReconcileOnEvents turns on event-driven drift repair for every
	// VidraResource, whatever its destination says.
	ReconcileOnEvents bool
	// RetryBase and RetryMax bound the per-object error backoff.
	RetryBase, RetryMax time.Duration
	// CRDWait is how soon a manifest waiting for its CRD is looked at again.
	CRDWait time.Duration
	// ConflictRecheck is how soon an object that another owner declares
	// differently is looked at again.
	ConflictRecheck time.Duration
	// DefaultServiceAccount, when set, is impersonated by every destination
	// that names none: impersonation becomes mandatory.
	DefaultServiceAccount *v1alpha1.ServiceAccountReference
	// Policy limits what any VidraResource may write.
	Policy Policy
	// Manifests reads the ConfigMaps of manifests stored in chunks.
	Manifests manifeststore.Getter
	// MaxManifestBytes is the largest manifest read; 0 means
	// manifeststore.DefaultMaxBytes.
	MaxManifestBytes int64
	// MaxResourceBytes is the largest a VidraResource may grow with its
	// inventory; 0 means DefaultMaxResourceBytes.
	MaxResourceBytes int64
}

// DefaultMaxResourceBytes keeps a VidraResource below the 1.5 MiB etcd
// accepts in one request by default (--max-request-bytes), with 64 KiB
// left for its managed fields and the health messages a pass adds.
const DefaultMaxResourceBytes = 1536<<10 - 64<<10

// Policy is checked before any write; a refused object is reported and the
// others are applied.
type Policy = apply.Policy

// destination is where a VidraResource's objects go, with the operator's
// default service account when impersonation is mandatory.
func (c *Controller) destination(vr *v1alpha1.VidraResource) v1alpha1.Destination {
	dest := vr.Spec.Destination
	if dest.ServiceAccount == nil && c.opts.DefaultServiceAccount != nil {
		dest.ServiceAccount = c.opts.DefaultServiceAccount
	}
	return dest
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.CRDWait <= 0 {
		o.CRDWait = 500 * time.Millisecond
	}
	if o.ConflictRecheck <= 0 {
		o.ConflictRecheck = time.Minute
	}
}

// Controller reconciles VidraResources.
type Controller struct {
	client   versioned.Interface
	lister   listers.VidraResourceLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	clusters Clusters
	recorder events.EventRecorder
	metrics  metrics.Observer
	clock    clock.PassiveClock
	opts     Options
	health   *healthState

	// searched names the VidraResources (by UID) whose untracked objects
	// findOwned already looked for.
	searchedMu sync.Mutex
	searched   map[string]types.UID
	// written bridges the informer's lag behind this controller's own
	// status writes.
	written writtenStatus
	// parsed keeps the documents of large manifests between passes.
	parsed parsedCache
}

// NewController wires the controller to its informer. Managed-object events
// reach it through OnManagedObjectChange, which the cluster manager's
// watches call.
func NewController(
	client versioned.Interface,
	informer informers.VidraResourceInformer,
	clusters Clusters,
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
		lister:   informer.Lister(),
		synced:   informer.Informer().HasSynced,
		queue:    workloop.NewQueue(ControllerName, opts.RetryBase, opts.RetryMax),
		clusters: clusters,
		recorder: recorder,
		metrics:  observer,
		clock:    clock.RealClock{},
		opts:     opts,
		health:   newHealthState(),
	}
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*v1alpha1.VidraResource), cur.(*v1alpha1.VidraResource)
			c.written.observe(n)
			// Status writes are our own; only spec, deletion and the
			// reconcile-now annotation need a pass.
			if o.Generation != n.Generation || !n.DeletionTimestamp.Equal(o.DeletionTimestamp) ||
				o.Annotations[v1alpha1.AnnotationReconcileRequestedAt] != n.Annotations[v1alpha1.AnnotationReconcileRequestedAt] ||
				o.Annotations[v1alpha1.AnnotationDeletionPolicy] != n.Annotations[v1alpha1.AnnotationDeletionPolicy] ||
				len(o.Finalizers) != len(n.Finalizers) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("add VidraResource event handler: %w", err)
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// Enqueue asks for a pass over the named VidraResource.
func (c *Controller) Enqueue(name string) { c.queue.Add(name) }

// OnManagedObjectChange is called by the drift watches when a managed object
// changed, was created or was deleted. Owners in event mode are reconciled
// right away; the others wait for their interval.
func (c *Controller) OnManagedObjectChange(owners []string) {
	for _, name := range owners {
		vr, err := c.lister.Get(name)
		if err != nil {
			continue
		}
		if c.opts.ReconcileOnEvents || vr.Spec.Destination.ReconcileOnEvents {
			c.wantFull(name)
			c.queue.Add(name)
		}
	}
}

// Run starts the workers and blocks until ctx is done; in-flight items finish
// before it returns.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Run(ctx, ControllerName, c.opts.Workers, c.queue, []cache.InformerSynced{c.synced}, c.runWorker)
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	return workloop.ProcessNextWorkItem(ctx, c.queue, c.syncHandler)
}

// syncHandler reconciles one VidraResource and records how it went.
func (c *Controller) syncHandler(ctx context.Context, key string) (requeueAfter time.Duration, err error) {
	start := c.clock.Now()
	logger := klog.FromContext(ctx).WithValues("vidraresource", key)
	ctx = klog.NewContext(ctx, logger)
	defer workloop.Recover(ctx, key, &err)
	defer func() { c.metrics.ObserveReconcile(ControllerName, c.clock.Since(start), err) }()

	vr, err := c.lister.Get(key)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get VidraResource %s: %w", key, err)
	}
	vr = c.written.latest(vr)
	if c.healthOnly(vr) {
		return c.syncHealth(ctx, vr.DeepCopy())
	}
	requeueAfter, err = c.sync(ctx, vr.DeepCopy())
	return c.afterFull(key, requeueAfter, err), err
}

// forget drops what the controller kept for a VidraResource that is gone.
func (c *Controller) forget(name string) {
	for _, cl := range c.clusters.Clusters() {
		cl.Watches.RemoveOwner(name)
	}
	c.metrics.DeleteManagedObjects(name)
	c.health.forget(name)
	c.forgetSearched(name)
	c.written.forget(name)
	c.parsed.forget(name)
}
