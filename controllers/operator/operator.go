// Package operator assembles Vidra's controllers, informers, cluster
// clients and Infrahub clients into one runnable unit. The operator binary
// and the integration tests both run exactly this.
package operator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/gitsync"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/controllers/watch"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	vidrascheme "github.com/vidra-operator/vidra/generated/clientset/versioned/scheme"
	"github.com/vidra-operator/vidra/generated/informers/externalversions"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub"
)

// Default worker counts, shared by the operator's flags, the Helm chart's
// values and the benchmarks.
const (
	DefaultSyncWorkers     = 4
	DefaultResourceWorkers = 8
)

// Config is everything the operator needs; zero values get defaults.
type Config struct {
	// RESTConfig reaches the cluster the operator runs in.
	RESTConfig *rest.Config
	// Namespace is the operator's own: the only one Secrets are read from.
	Namespace string

	SyncWorkers       int
	ResourceWorkers   int
	SyncInterval      time.Duration
	ResourceInterval  time.Duration
	ReconcileOnEvents bool
	// QueryName is the default stored query for listing artifacts; empty
	// uses Vidra's GraphQL query.
	QueryName string
	// CABundle is trusted for every Infrahub besides the system roots.
	CABundle []byte
	// InfrahubTimeout bounds each Infrahub request.
	InfrahubTimeout time.Duration
	// InfrahubConcurrency bounds the requests in flight to one Infrahub
	// (default 8).
	InfrahubConcurrency int
	// SyncRetryBase and SyncRetryMax bound an InfrahubSync's error
	// backoff (defaults 1s and 5m; never beyond the sync's interval).
	SyncRetryBase, SyncRetryMax time.Duration
	// CacheBytes bounds the artifact content cache.
	CacheBytes int64
	// MaxManifestBytes is the largest artifact written to a VidraResource
	// and read from one; 0 means manifeststore.DefaultMaxBytes.
	MaxManifestBytes int64
	// MaxResourceBytes is the largest a VidraResource may grow with its
	// inventory before its objects are refused rather than applied
	// untracked; 0 means vidraresource.DefaultMaxResourceBytes.
	MaxResourceBytes int64
	// RemoteTimeout bounds each request to a remote cluster; drift
	// watches are not bounded.
	RemoteTimeout time.Duration
	// ClusterIdleGrace is how long the clients and informers of a remote
	// cluster no VidraResource uses any more are kept.
	ClusterIdleGrace time.Duration

	// DefaultServiceAccount makes impersonation mandatory: destinations
	// that name no service account act as this one.
	DefaultServiceAccount *v1alpha1.ServiceAccountReference
	// Policy limits the kinds and namespaces any VidraResource may write.
	Policy vidraresource.Policy

	// Shard restricts the operator to the syncs (and their VidraResources)
	// its label selector matches; nil handles all of them.
	Shard *shard.Selector

	Metrics         metrics.Observer
	RequestObserver infrahub.RequestObserver
	// Sources replaces the Infrahub client pool (tests).
	Sources infrahubsync.Sources

	// GitInterval is the default polling interval of a GitSync; zero
	// uses SyncInterval.
	GitInterval time.Duration
	// GitLimits bound each Git fetch: size received and time taken.
	GitLimits gitrepo.Limits
	// GitRemote replaces the Git client (tests).
	GitRemote gitsync.Remote
}

// Operator is a ready-to-run Vidra.
type Operator struct {
	Syncs     *infrahubsync.Controller
	GitSyncs  *gitsync.Controller
	Resources *vidraresource.Controller
	Clusters  *cluster.Manager
	Cache     *infrahub.Cache

	kube          kubernetes.Interface
	vidraInformer externalversions.SharedInformerFactory
	secretFactory kubeinformers.SharedInformerFactory
	broadcaster   events.EventBroadcaster
	synced        atomic.Bool
}

// New builds the operator without starting anything.
func New(cfg Config) (*Operator, error) {
	if cfg.RESTConfig == nil {
		return nil, errors.New("no REST config")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("no operator namespace")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.Nop{}
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 256 << 20
	}
	kube, err := kubernetes.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	vidra, err := versioned.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("vidra client: %w", err)
	}
	o := &Operator{kube: kube}
	// managedFields are never read from the caches; at a thousand
	// VidraResources they are megabytes.
	// A shard sees only its syncs and their VidraResources: what leaves the
	// selector leaves the caches, as a Delete event that only forgets.
	o.vidraInformer = externalversions.NewSharedInformerFactoryWithOptions(vidra, 0, externalversions.WithTransform(dropManagedFields),
		externalversions.WithTweakListOptions(cfg.Shard.TweakListOptions))
	// Secrets only from the operator's namespace: no cluster-wide Secret cache.
	o.secretFactory = kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTransform(dropManagedFields))
	o.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	recorder := o.broadcaster.NewRecorder(vidrascheme.Scheme, "vidra-operator")

	secrets := o.secretFactory.Core().V1().Secrets()
	// The drift watches and the cluster manager report to the
	// VidraResource controller, which is built after the cluster manager;
	// the indirection breaks the cycle.
	var resources atomic.Pointer[vidraresource.Controller]
	o.Clusters, err = cluster.NewManager(cluster.Options{
		Local:     cfg.RESTConfig,
		Secrets:   secrets.Lister().Secrets(cfg.Namespace),
		Namespace: cfg.Namespace,
		Watch: watch.Options{
			// The default transform keeps the cache small and drops what
			// is not drift (see watch.StripTransform).
			OnChange: func(owners []string, _ schema.GroupVersionResource, _, _ string) {
				if r := resources.Load(); r != nil {
					r.OnManagedObjectChange(owners)
				}
			},
			// A watch that fails or works again changes its owners'
			// conditions, whatever their event mode.
			OnWatchHealthChange: func(owners []string) {
				if r := resources.Load(); r != nil {
					for _, name := range owners {
						r.Enqueue(name)
					}
				}
			},
			// Health changes update the owners' status even when they
			// do not reconcile on events.
			OnHealthChange: func(owners []string, _ schema.GroupVersionResource, _, _ string) {
				if r := resources.Load(); r != nil {
					r.OnManagedObjectHealthChange(owners)
				}
			},
		},
		RemoteTimeout: cfg.RemoteTimeout,
		IdleGrace:     cfg.ClusterIdleGrace,
		// A rotated or recovered cluster: every VidraResource on it gets
		// new clients and its drift watches back now, not at its next
		// interval.
		OnReplaced: func(server string) {
			if r := resources.Load(); r != nil {
				for _, name := range resourcesOn(o.vidraInformer.Infrahub().V1alpha1().VidraResources().Lister(), server) {
					r.Enqueue(name)
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// A kubeconfig Secret that changes takes effect at once.
	if _, err := secrets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { o.Clusters.Refresh() },
		UpdateFunc: func(any, any) { o.Clusters.Refresh() },
		DeleteFunc: func(any) { o.Clusters.Refresh() },
	}); err != nil {
		return nil, fmt.Errorf("add Secret event handler: %w", err)
	}
	if m, ok := cfg.Metrics.(*metrics.Metrics); ok {
		m.WatchClusters(o.clusterStats)
	}

	o.Resources, err = vidraresource.NewController(vidra, o.vidraInformer.Infrahub().V1alpha1().VidraResources(),
		o.Clusters, recorder, cfg.Metrics, vidraresource.Options{
			Workers:               cfg.ResourceWorkers,
			Interval:              cfg.ResourceInterval,
			ReconcileOnEvents:     cfg.ReconcileOnEvents,
			DefaultServiceAccount: cfg.DefaultServiceAccount,
			Policy:                cfg.Policy,
			Manifests:             manifeststore.ClientStore{Client: kube},
			MaxManifestBytes:      cfg.MaxManifestBytes,
			MaxResourceBytes:      cfg.MaxResourceBytes,
		})
	if err != nil {
		return nil, err
	}
	resources.Store(o.Resources)

	sources := cfg.Sources
	if sources == nil {
		o.Cache = infrahub.NewCache(cfg.CacheBytes)
		sources = &infrahubsync.PoolSources{Pool: infrahub.NewPool(), Fetcher: infrahub.NewFetcher(o.Cache)}
	}
	o.Syncs, err = infrahubsync.NewController(vidra,
		o.vidraInformer.Infrahub().V1alpha1().InfrahubSyncs(),
		o.vidraInformer.Infrahub().V1alpha1().VidraResources(),
		secrets, sources, recorder, cfg.Metrics, infrahubsync.Options{
			Namespace:           cfg.Namespace,
			Workers:             cfg.SyncWorkers,
			Interval:            cfg.SyncInterval,
			QueryName:           cfg.QueryName,
			CABundle:            cfg.CABundle,
			Timeout:             cfg.InfrahubTimeout,
			RequestObserver:     cfg.RequestObserver,
			Manifests:           manifeststore.ClientStore{Client: kube},
			MaxManifestBytes:    cfg.MaxManifestBytes,
			Shard:               cfg.Shard,
			RetryBase:           cfg.SyncRetryBase,
			RetryMax:            cfg.SyncRetryMax,
			EndpointConcurrency: cfg.InfrahubConcurrency,
		})
	if err != nil {
		return nil, err
	}

	remote := cfg.GitRemote
	if remote == nil {
		remote = gitrepo.New(cfg.GitLimits)
	}
	gitInterval := cfg.GitInterval
	if gitInterval <= 0 {
		gitInterval = cfg.SyncInterval
	}
	o.GitSyncs, err = gitsync.NewController(vidra,
		o.vidraInformer.Infrahub().V1alpha1().GitSyncs(),
		o.vidraInformer.Infrahub().V1alpha1().VidraResources(),
		secrets, remote, recorder, cfg.Metrics, gitsync.Options{
			Namespace:        cfg.Namespace,
			Workers:          cfg.SyncWorkers,
			Interval:         gitInterval,
			Manifests:        manifeststore.ClientStore{Client: kube},
			MaxManifestBytes: cfg.MaxManifestBytes,
		})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// SyncLister reads InfrahubSyncs from the operator's cache.
func (o *Operator) SyncLister() listers.InfrahubSyncLister {
	return o.vidraInformer.Infrahub().V1alpha1().InfrahubSyncs().Lister()
}

// ResourceLister reads VidraResources from the operator's cache.
func (o *Operator) ResourceLister() listers.VidraResourceLister {
	return o.vidraInformer.Infrahub().V1alpha1().VidraResources().Lister()
}

// HasSynced reports whether the informer caches have synced: the operator
// is ready to work.
func (o *Operator) HasSynced() bool { return o.synced.Load() }

// Run starts informers and controllers and blocks until ctx is done. On
// return, in-flight work has finished and every watch is stopped.
func (o *Operator) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if err := o.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("start event recording: %w", err)
	}
	defer o.broadcaster.Shutdown()

	o.vidraInformer.Start(ctx.Done())
	o.secretFactory.Start(ctx.Done())
	defer o.vidraInformer.Shutdown()
	defer o.secretFactory.Shutdown()
	defer o.Clusters.Stop()

	for typ, ok := range o.vidraInformer.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	for typ, ok := range o.secretFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	o.synced.Store(true)
	logger.Info("Caches synced; starting controllers")

	var wg sync.WaitGroup
	wg.Go(func() { o.Clusters.Run(ctx) })
	errs := make(chan error, 3)
	for _, run := range []func(context.Context) error{o.Syncs.Run, o.GitSyncs.Run, o.Resources.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// resourcesOn names the VidraResources whose destination, or any object of
// whose inventory, is on server.
func resourcesOn(lister listers.VidraResourceLister, server string) []string {
	vrs, err := lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	var names []string
	for _, vr := range vrs {
		on := cluster.NormalizeServer(vr.Spec.Destination.Server) == server
		if d := vr.Status.AppliedDestination; d != nil && cluster.NormalizeServer(d.Server) == server {
			on = true
		}
		for _, r := range vr.Status.ManagedResources {
			if on {
				break
			}
			on = cluster.NormalizeServer(r.Server) == server
		}
		if on {
			names = append(names, vr.Name)
		}
	}
	sort.Strings(names)
	return names
}

// clusterStats describes the clusters with live clients, for the metrics.
func (o *Operator) clusterStats() []metrics.ClusterStats {
	var out []metrics.ClusterStats
	for _, c := range o.Clusters.Clusters() {
		cs := metrics.ClusterStats{Name: c.Name(), Remote: c.Server != ""}
		for _, r := range c.Watches.Stats().Resources {
			cs.Watches = append(cs.Watches, metrics.WatchStats{Resource: r.Resource.GroupVersion().String() + "/" + r.Resource.Resource, Healthy: r.Healthy, Synced: r.Synced})
		}
		out = append(out, cs)
	}
	return out
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// dropManagedFields is an informer transform: it removes
// metadata.managedFields, in place as transforms may.
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
