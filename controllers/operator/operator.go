// Package operator assembles Vidra's controllers, informers, cluster
// clients and Infrahub clients into one runnable unit. The operator binary
// and the integration tests both run exactly this.
package operator

import (
	"context"
	"errors"
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/metrics"
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
	// CacheBytes bounds the artifact content cache.
	CacheBytes int64
	// RemoteTimeout bounds each request to a remote cluster.
	RemoteTimeout time.Duration

	// DefaultServiceAccount makes impersonation mandatory: destinations
	// that name no service account act as this one.
	DefaultServiceAccount *v1alpha1.ServiceAccountReference
	// Policy limits the kinds and namespaces any VidraResource may write.
	Policy vidraresource.Policy

	Metrics         metrics.Observer
	RequestObserver infrahub.RequestObserver
	// Sources replaces the Infrahub client pool (tests).
	Sources infrahubsync.Sources
}

// Operator is a ready-to-run Vidra.
type Operator struct {
	Syncs     *infrahubsync.Controller
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
	o.vidraInformer = externalversions.NewSharedInformerFactoryWithOptions(vidra, 0, externalversions.WithTransform(dropManagedFields))
	// Secrets only from the operator's namespace: no cluster-wide Secret cache.
	o.secretFactory = kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTransform(dropManagedFields))
	o.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	recorder := o.broadcaster.NewRecorder(vidrascheme.Scheme, "vidra-operator")

	secrets := o.secretFactory.Core().V1().Secrets()
	// The drift watches report to the VidraResource controller, which is
	// built after the cluster manager; the indirection breaks the cycle.
	var onChange, onHealthChange atomic.Pointer[func([]string)]
	o.Clusters, err = cluster.NewManager(cluster.Options{
		Local:     cfg.RESTConfig,
		Secrets:   secrets.Lister().Secrets(cfg.Namespace),
		Namespace: cfg.Namespace,
		Watch: watch.Options{
			// The default transform keeps the cache small and drops what
			// is not drift (see watch.StripTransform).
			OnChange: func(owners []string, _ schema.GroupVersionResource, _, _ string) {
				if f := onChange.Load(); f != nil {
					(*f)(owners)
				}
			},
			// Health changes update the owners' status even when they
			// do not reconcile on events.
			OnHealthChange: func(owners []string, _ schema.GroupVersionResource, _, _ string) {
				if f := onHealthChange.Load(); f != nil {
					(*f)(owners)
				}
			},
		},
		RemoteTimeout: cfg.RemoteTimeout,
	})
	if err != nil {
		return nil, err
	}

	o.Resources, err = vidraresource.NewController(vidra, o.vidraInformer.Infrahub().V1alpha1().VidraResources(),
		o.Clusters, recorder, cfg.Metrics, vidraresource.Options{
			Workers:               cfg.ResourceWorkers,
			Interval:              cfg.ResourceInterval,
			ReconcileOnEvents:     cfg.ReconcileOnEvents,
			DefaultServiceAccount: cfg.DefaultServiceAccount,
			Policy:                cfg.Policy,
		})
	if err != nil {
		return nil, err
	}
	notify := o.Resources.OnManagedObjectChange
	onChange.Store(&notify)
	notifyHealth := o.Resources.OnManagedObjectHealthChange
	onHealthChange.Store(&notifyHealth)

	sources := cfg.Sources
	if sources == nil {
		o.Cache = infrahub.NewCache(cfg.CacheBytes)
		sources = &infrahubsync.PoolSources{Pool: infrahub.NewPool(), Fetcher: infrahub.NewFetcher(o.Cache)}
	}
	o.Syncs, err = infrahubsync.NewController(vidra,
		o.vidraInformer.Infrahub().V1alpha1().InfrahubSyncs(),
		o.vidraInformer.Infrahub().V1alpha1().VidraResources(),
		secrets, sources, recorder, cfg.Metrics, infrahubsync.Options{
			Namespace:       cfg.Namespace,
			Workers:         cfg.SyncWorkers,
			Interval:        cfg.SyncInterval,
			QueryName:       cfg.QueryName,
			CABundle:        cfg.CABundle,
			Timeout:         cfg.InfrahubTimeout,
			RequestObserver: cfg.RequestObserver,
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
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{o.Syncs.Run, o.Resources.Run} {
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
