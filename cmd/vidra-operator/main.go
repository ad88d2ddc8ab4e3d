// Command vidra-operator runs Vidra: it keeps Kubernetes clusters in sync with
// the artifacts Infrahub renders.
//
// It serves /healthz and /readyz (-health-probe-bind-address), /metrics in
// the Prometheus text format (-metrics-bind-address), optionally elects a
// leader through a Lease (-leader-elect), and shuts down gracefully on
// SIGTERM: it stops taking work, lets in-flight reconciles finish, then
// releases the lease. Run with -help for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/infrahub"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const componentName = "vidra-operator"

func main() {
	os.Exit(run(os.Args[1:]))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

var errLostLease = errors.New("lost the leader lease")

func run(args []string) int {
	var o options
	fs := newFlagSet(&o)
	if err := o.parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(os.Stderr, "vidra-operator: %v\n", err)
		return exitUsage
	}
	if o.showVersion {
		fmt.Printf("vidra-operator %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	setupLogging(o.logFormat)
	defer klog.Flush()
	tuneGC()
	logger := klog.Background()
	if o.shard.Sharded() {
		// Every line says which shard's instance wrote it.
		logger = logger.WithValues("shard", o.shard.String())
	}

	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	defer cancel()
	h := &health{electing: o.leaderElect}
	shutdownStarted := make(chan struct{})
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)
	go func() {
		s, ok := <-signals
		if !ok {
			return
		}
		logger.Info("Shutting down: no new work, finishing what is in flight", "signal", s.String(), "timeout", o.shutdownTimeout.String())
		h.shuttingDown.Store(true)
		close(shutdownStarted)
		cancel()
		if s, ok = <-signals; ok {
			logger.Info("Second signal: exiting now", "signal", s.String())
			klog.Flush()
			os.Exit(exitError)
		}
	}()

	if err := start(ctx, logger, &o, h, shutdownStarted); err != nil {
		if errors.Is(err, errLostLease) {
			logger.Error(err, "Exiting so that a fresh process can stand by")
			return exitError
		}
		if ctx.Err() != nil {
			// Errors caused by the shutdown itself (e.g. caches that could
			// not sync any more) are not failures.
			logger.Info("Stopped during start-up or shutdown", "err", err.Error())
			return exitOK
		}
		logger.Error(err, "Exiting")
		return exitError
	}
	logger.Info("Stopped cleanly")
	return exitOK
}

func setupLogging(format string) {
	if format == "json" {
		klog.SetLoggerWithOptions(
			newJSONLogger(os.Stderr, func(level int) bool { return klog.V(klog.Level(level)).Enabled() }),
			klog.ContextualLogger(true),
		)
	}
}

func start(ctx context.Context, logger klog.Logger, o *options, h *health, shutdownStarted <-chan struct{}) error {
	logger.Info("Starting", "version", version, "go", runtime.Version())

	// Metrics first: the workqueue provider must be in place before the
	// controllers create their queues, the REST client metrics before the
	// first request.
	reg := metrics.NewRegistry()
	workqueue.SetProvider(metrics.NewWorkqueueProvider(reg))
	metrics.NewRESTClientMetrics(reg).Install()

	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.QPS = float32(o.qps)
	cfg.Burst = o.burst
	cfg.UserAgent = componentName + "/" + version
	namespace := resolveNamespace(o.namespace)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := preflight(ctx, logger, kube.Discovery(), cfg.Host, preflightTimeout); err != nil {
		return err
	}

	if o.configMap != "" {
		cm, err := readConfigMap(ctx, logger, kube, namespace, o.configMap)
		if err != nil {
			return err
		}
		if cm != nil {
			problems := applyConfigMap(logger, cm, o)
			reportConfigProblems(ctx, logger, kube, cm, problems, componentName, instanceName())
		}
	}
	var caBundle []byte
	if o.infrahubCAFile != "" {
		if caBundle, err = os.ReadFile(o.infrahubCAFile); err != nil {
			return fmt.Errorf("-infrahub-ca-file: %w", err)
		}
	}
	logger.Info("Settings",
		"namespace", namespace, "apiServer", cfg.Host, "qps", o.qps, "burst", o.burst,
		"syncWorkers", o.syncWorkers, "resourceWorkers", o.resourceWorkers,
		"syncInterval", o.syncInterval.String(), "resourceInterval", o.resourceInterval.String(),
		"reconcileOnEvents", o.reconcileOnEvents, "queryName", o.queryName,
		"leaderElect", o.leaderElect, "lease", o.leaseName, "extraCAs", len(caBundle) > 0)

	metrics.RegisterProcessCollector(reg)
	m := metrics.New(reg, version)
	metrics.RegisterShard(reg, o.shard.String())

	defaultSA, err := o.serviceAccount()
	if err != nil {
		return err
	}
	op, err := operator.New(operator.Config{
		DefaultServiceAccount: defaultSA,
		Policy:                o.policy(),
		RESTConfig:            cfg,
		Namespace:             namespace,
		SyncWorkers:           o.syncWorkers,
		ResourceWorkers:       o.resourceWorkers,
		SyncInterval:          o.syncInterval,
		ResourceInterval:      o.resourceInterval,
		ReconcileOnEvents:     o.reconcileOnEvents,
		QueryName:             o.queryName,
		CABundle:              caBundle,
		InfrahubTimeout:       o.infrahubTimeout,
		InfrahubConcurrency:   o.infrahubRequests,
		CacheBytes:            int64(o.cacheBytes),
		MaxManifestBytes:      int64(o.maxManifestBytes),
		MaxResourceBytes:      int64(o.maxResourceBytes),
		GitInterval:           o.gitInterval,
		GitLimits:             gitrepo.Limits{MaxBytes: int64(o.gitMaxBytes), Timeout: o.gitTimeout},
		RemoteTimeout:         o.remoteTimeout,
		ClusterIdleGrace:      o.clusterIdleGrace,
		Metrics:               m,
		RequestObserver:       m,
		Shard:                 o.shard,
	})
	if err != nil {
		return err
	}
	m.WatchCache(func() (infrahub.CacheStats, bool) {
		if op.Cache == nil {
			return infrahub.CacheStats{}, false
		}
		return op.Cache.Stats(), true
	})
	h.synced = op.HasSynced

	var adaptor *leaderelection.HealthzAdaptor
	if o.leaderElect {
		// A leader that has not renewed for 20 s past its lease's expiry
		// fails liveness.
		adaptor = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
		h.leaseCheck = adaptor.Check
	}

	servers, err := startServers(ctx, logger, o, h, reg, WebhookDeps{
		Operator: op, Kube: kube, Namespace: namespace, IsLeader: h.isLeader, Registry: reg,
		Logger: logger.WithName("webhook"), Secret: o.webhookSecret, GitSecret: o.gitWebhookSecret,
		GitPush: op.GitSyncs,
	})
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range servers {
			s.shutdown(5 * time.Second)
		}
	}()

	// Bound the shutdown: in-flight work that takes too long must not keep
	// the pod past its grace period without a word.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
			return
		case <-shutdownStarted:
		}
		select {
		case <-finished:
		case <-time.After(o.shutdownTimeout):
			logger.Error(nil, "In-flight work did not finish within the shutdown timeout; exiting", "timeout", o.shutdownTimeout.String())
			klog.Flush()
			os.Exit(exitError)
		}
	}()

	if !o.leaderElect {
		m.SetLeader(true)
		return op.Run(ctx)
	}
	leaseNamespace := o.leaseNamespace
	if leaseNamespace == "" {
		leaseNamespace = namespace
	}
	return runElected(ctx, logger, o, cfg, leaseNamespace, op, h, m, adaptor)
}

// startServers binds the probe, metrics and webhook addresses and serves
// them in the background. The probes and metrics share one server when
// their addresses are equal.
func startServers(ctx context.Context, logger klog.Logger, o *options, h *health, reg *metrics.Registry, deps WebhookDeps) ([]*server, error) {
	type want struct {
		name, addr string
		mux        *http.ServeMux
	}
	var wants []*want
	byAddr := map[string]*want{}
	add := func(name, addr string) *http.ServeMux {
		if w, ok := byAddr[addr]; ok {
			w.name += "+" + name
			return w.mux
		}
		w := &want{name: name, addr: addr, mux: http.NewServeMux()}
		byAddr[addr] = w
		wants = append(wants, w)
		return w.mux
	}
	if !disabled(o.healthAddr) {
		h.register(add("health", o.healthAddr))
	}
	if !disabled(o.metricsAddr) {
		add("metrics", o.metricsAddr).Handle("/metrics", reg.Handler())
	}
	if !disabled(o.pprofAddr) {
		mux := add("pprof", o.pprofAddr)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if !disabled(o.webhookAddr) {
		if NewWebhookHandler == nil {
			logger.Info("-webhook-bind-address is set but this build has no webhook receiver; not listening", "address", o.webhookAddr)
		} else {
			handler, err := NewWebhookHandler(ctx, deps)
			if err != nil {
				return nil, fmt.Errorf("webhook receiver: %w", err)
			}
			add("webhook", o.webhookAddr).Handle("/", handler)
		}
	}
	var servers []*server
	for _, w := range wants {
		s, err := listen(w.name, w.addr, w.mux)
		if err != nil {
			for _, s := range servers {
				s.shutdown(time.Second)
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		go s.serve(logger)
	}
	return servers, nil
}

// runElected takes part in leader election and runs the operator while it
// leads. On shutdown the leader first stops its controllers and lets
// in-flight work finish, and only then releases the lease, so the next
// leader never overlaps with unfinished work.
func runElected(ctx context.Context, logger klog.Logger, o *options, cfg *rest.Config, leaseNamespace string,
	op *operator.Operator, h *health, m *metrics.Metrics, adaptor *leaderelection.HealthzAdaptor) error {
	// Lease renewals get their own client and rate limiter, so a busy
	// operator can never starve them.
	leCfg := rest.CopyConfig(cfg)
	leCfg.QPS, leCfg.Burst = 20, 40
	leCfg.Timeout = o.renewDeadline
	leKube, err := kubernetes.NewForConfig(leCfg)
	if err != nil {
		return err
	}
	identity := instanceName() + "_" + string(uuid.NewUUID())
	logger = logger.WithValues("lease", leaseNamespace+"/"+o.leaseName, "identity", identity)

	// The election runs until told to stop, not until the signal: a leader
	// keeps renewing while it drains.
	electionCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var (
		mu      sync.Mutex
		started bool
		runDone = make(chan error, 1)
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: leaseNamespace, Name: o.leaseName},
			Client:     leKube.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration:   o.leaseDuration,
		RenewDeadline:   o.renewDeadline,
		RetryPeriod:     o.retryPeriod,
		ReleaseOnCancel: true,
		Name:            o.leaseName,
		WatchDog:        adaptor,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				mu.Lock()
				if ctx.Err() != nil {
					mu.Unlock()
					stopElection()
					return
				}
				started = true
				mu.Unlock()
				h.leading.Store(true)
				m.SetLeader(true)
				logger.Info("Became the leader; starting controllers")
				runCtx, cancelRun := context.WithCancel(leadCtx)
				stop := context.AfterFunc(ctx, cancelRun)
				err := op.Run(runCtx)
				stop()
				cancelRun()
				runDone <- err
				// In-flight work is done: now the lease may go.
				stopElection()
			},
			OnStoppedLeading: func() {
				if h.leading.Swap(false) {
					logger.Info("No longer the leader")
				}
				m.SetLeader(false)
			},
			OnNewLeader: func(id string) {
				if id != identity {
					logger.Info("Standing by", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	adaptor.SetLeaderElection(le)
	m.SetLeader(false)
	go func() {
		<-ctx.Done()
		mu.Lock()
		defer mu.Unlock()
		if !started {
			stopElection()
		}
	}()

	logger.Info("Waiting for the leader lease")
	h.standingBy.Store(true)
	le.Run(electionCtx)
	h.standingBy.Store(false)

	mu.Lock()
	led := started
	mu.Unlock()
	if !led {
		return nil
	}
	if ctx.Err() == nil {
		// The lease was lost: the controllers are stopping (their context
		// is the lease's). Give in-flight work the shutdown timeout.
		select {
		case runErr := <-runDone:
			return errors.Join(errLostLease, runErr)
		case <-time.After(o.shutdownTimeout):
			return fmt.Errorf("%w; in-flight work did not finish within %v", errLostLease, o.shutdownTimeout)
		}
	}
	runErr := <-runDone
	logger.Info("Released the leader lease")
	return runErr
}

// restConfig loads the kubeconfig given, else the in-cluster configuration,
// else $KUBECONFIG or ~/.kube/config.
func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// instanceName is the pod's name when the Downward API gives it, else the
// host name.
func instanceName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		return name
	}
	return componentName
}
