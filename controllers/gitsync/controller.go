// Package gitsync reads the repositories GitSyncs name and keeps one
// VidraResource per directory or file, through the same unit pipeline as
// InfrahubSync.
package gitsync

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/webhook"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	informers "github.com/vidra-operator/vidra/generated/informers/externalversions/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// ControllerName names the queue, the event source and the metrics.
const ControllerName = "gitsync"

// Remote is what the controller needs from a Git remote; *gitrepo.Client
// is the real one. Resolve asks where a ref points without fetching;
// Fetch reads one commit's files under paths.
type Remote interface {
	Resolve(ctx context.Context, url string, auth gitrepo.Auth, ref gitrepo.Ref) (gitrepo.Resolved, error)
	Fetch(ctx context.Context, url string, auth gitrepo.Auth, resolved gitrepo.Resolved, paths []string) (*gitrepo.Snapshot, error)
}

// Options tune the controller.
type Options struct {
	// Namespace is the operator's namespace: the only one credentials are
	// read from.
	Namespace string
	// Workers is the number of GitSyncs reconciled in parallel.
	Workers int
	// Interval is the default polling interval.
	Interval time.Duration
	// RetryBase and RetryMax bound the per-sync error backoff.
	RetryBase, RetryMax time.Duration
	// Manifests stores manifests too large for a VidraResource in
	// ConfigMaps of Namespace.
	Manifests infrahubsync.ManifestChunkStore
	// MaxManifestBytes is the largest unit written; 0 means
	// manifeststore.DefaultMaxBytes.
	MaxManifestBytes int64
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

// Controller reconciles GitSyncs.
type Controller struct {
	client   versioned.Interface
	syncs    listers.GitSyncLister
	vrs      listers.VidraResourceLister
	vrIndex  cache.Indexer
	secrets  corelisters.SecretNamespaceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	remote   Remote
	recorder events.EventRecorder
	metrics  metrics.Observer
	clock    clock.PassiveClock
	opts     Options

	mu    sync.Mutex
	polls map[string]*pollState
	// triggers counts the Trigger calls per sync.
	triggers map[string]uint64

	written *infrahubsync.WrittenResources
}

// NewController wires the controller to its informers. secrets must only
// cover the operator's namespace; nil reads no Secrets.
func NewController(
	client versioned.Interface,
	syncInformer informers.GitSyncInformer,
	vrInformer informers.VidraResourceInformer,
	secretInformer coreinformers.SecretInformer,
	remote Remote,
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
		queue:    workloop.NewQueue(ControllerName, opts.RetryBase, opts.RetryMax),
		remote:   remote,
		recorder: recorder,
		metrics:  observer,
		clock:    clock.RealClock{},
		opts:     opts,
		polls:    map[string]*pollState{},
		triggers: map[string]uint64{},
		written:  infrahubsync.NewWrittenResources(),
	}
	if _, err := syncInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*v1alpha1.GitSync), cur.(*v1alpha1.GitSync)
			if o.Generation != n.Generation || infrahubsync.DeletionMoved(o, n) ||
				o.Annotations[v1alpha1.AnnotationReconcileRequestedAt] != n.Annotations[v1alpha1.AnnotationReconcileRequestedAt] {
				c.enqueue(cur)
			}
		},
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("add GitSync event handler: %w", err)
	}
	if _, ok := vrInformer.Informer().GetIndexer().GetIndexers()[indexByController]; !ok {
		if err := vrInformer.Informer().AddIndexers(cache.Indexers{indexByController: controllerUID}); err != nil {
			return nil, fmt.Errorf("add VidraResource index: %w", err)
		}
	}
	// A VidraResource that became (un)ready, was deleted by hand or had its
	// spec edited brings its sync back, without asking the remote again.
	if _, err := vrInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, n := old.(*v1alpha1.VidraResource), cur.(*v1alpha1.VidraResource)
			if o.Generation != n.Generation || readyOf(o) != readyOf(n) || healthOf(o) != healthOf(n) {
				c.enqueueOwner(n)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if vr, ok := obj.(*v1alpha1.VidraResource); ok {
				c.written.Drop(vr.Name, vr.UID)
				c.enqueueOwner(vr)
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

// resourceSettle gathers the VidraResource changes of one sync into one pass.
const resourceSettle = time.Second

func readyOf(vr *v1alpha1.VidraResource) string {
	if cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
		return string(cond.Status) + "/" + cond.Reason
	}
	return ""
}

func healthOf(vr *v1alpha1.VidraResource) v1alpha1.HealthSummary {
	if vr.Status.Health == nil {
		return v1alpha1.HealthSummary{}
	}
	return *vr.Status.Health
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

func (c *Controller) enqueueOwner(vr *v1alpha1.VidraResource) {
	if ref := metav1.GetControllerOf(vr); ref != nil && ref.Kind == kind {
		c.queue.AddAfter(ref.Name, resourceSettle)
	}
}

// kind is the owner kind on the VidraResources this controller writes.
const kind = "GitSync"

// indexByController indexes VidraResources by the UID of the GitSync that
// controls them.
const indexByController = "gitsync-uid"

func controllerUID(obj any) ([]string, error) {
	vr, ok := obj.(*v1alpha1.VidraResource)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(vr); ref != nil && ref.Kind == kind {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// ownedResources lists the VidraResources this very sync controls, with
// the ones it just wrote as written.
func (c *Controller) ownedResources(gs *v1alpha1.GitSync) ([]*v1alpha1.VidraResource, error) {
	objs, err := c.vrIndex.ByIndex(indexByController, string(gs.UID))
	if err != nil {
		return nil, fmt.Errorf("list VidraResources: %w", err)
	}
	out := make([]*v1alpha1.VidraResource, 0, len(objs))
	for _, obj := range objs {
		if vr, ok := obj.(*v1alpha1.VidraResource); ok {
			out = append(out, vr)
		}
	}
	return c.written.Overlay(gs.UID, out, c.clock.Now()), nil
}

// secretChanged brings back the syncs whose credentials may have changed,
// and has them ask the remote again.
func (c *Controller) secretChanged(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok || s.Namespace != c.opts.Namespace {
		return
	}
	syncs, err := c.syncs.List(labels.Everything())
	if err != nil {
		return
	}
	for _, gs := range syncs {
		if gs.Spec.SecretRef != nil && gs.Spec.SecretRef.Name == s.Name {
			c.Trigger(gs.Name)
		}
	}
}

// Trigger makes the named sync ask the remote now, whatever its interval.
func (c *Controller) Trigger(name string) {
	c.mu.Lock()
	c.triggers[name]++
	c.mu.Unlock()
	c.queue.Add(name)
}

// TriggerGitPush triggers the GitSyncs that read the pushed repository and
// ref: a branch sync for its branch, a tag or semver sync for any tag. A
// sync pinned to a commit is not affected by pushes. It returns how many
// syncs it triggered.
func (c *Controller) TriggerGitPush(push webhook.GitPush) int {
	syncs, err := c.syncs.List(labels.Everything())
	if err != nil {
		return 0
	}
	n := 0
	for _, gs := range syncs {
		if !pushConcerns(gs, push) {
			continue
		}
		c.Trigger(gs.Name)
		n++
	}
	return n
}

func pushConcerns(gs *v1alpha1.GitSync, push webhook.GitPush) bool {
	same := false
	for _, u := range push.RepoURLs {
		if gitrepo.SameRepository(u, gs.Spec.URL) {
			same = true
			break
		}
	}
	if !same {
		return false
	}
	ref := gs.Spec.Ref
	switch {
	case ref.Branch != "":
		return push.Ref == "refs/heads/"+strings.TrimPrefix(ref.Branch, "refs/heads/")
	case ref.Tag != "":
		return push.Ref == "refs/tags/"+strings.TrimPrefix(ref.Tag, "refs/tags/")
	case ref.SemVer != "":
		return strings.HasPrefix(push.Ref, "refs/tags/")
	}
	return false
}

// Run starts the workers and blocks until ctx is done.
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

// writer is the unit writer of this controller's VidraResources.
func (c *Controller) writer() infrahubsync.Writer {
	return infrahubsync.Writer{Client: c.client, Resources: c.vrs, Manifests: c.opts.Manifests,
		Namespace: c.opts.Namespace, MaxManifestBytes: c.opts.MaxManifestBytes}
}

// syncHandler reconciles one GitSync and records how it went.
func (c *Controller) syncHandler(ctx context.Context, key string) (requeueAfter time.Duration, err error) {
	start := c.clock.Now()
	logger := klog.FromContext(ctx).WithValues("gitsync", key)
	ctx = klog.NewContext(ctx, logger)
	defer workloop.Recover(ctx, key, &err)
	defer func() { c.metrics.ObserveReconcile(ControllerName, c.clock.Since(start), err) }()

	gs, err := c.syncs.Get(key)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.polls, key)
		delete(c.triggers, key)
		c.mu.Unlock()
		// Its VidraResources go with it, without waiting for the garbage
		// collector.
		removed, err := c.writer().RemoveOwnedByGone(ctx, kind, key, infrahubsync.LookupBy(c.client.InfrahubV1alpha1().GitSyncs().Get))
		if removed > 0 {
			logger.V(1).Info("Deleted the VidraResources of a deleted sync", "count", removed)
		}
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("get GitSync %s: %w", key, err)
	}
	return c.sync(ctx, gs.DeepCopy())
}
