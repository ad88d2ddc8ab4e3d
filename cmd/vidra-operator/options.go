package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
)

// options are the command line's settings.
type options struct {
	kubeconfig string
	namespace  string
	configMap  string

	syncWorkers       int
	resourceWorkers   int
	qps               float64
	burst             int
	syncInterval      time.Duration
	resourceInterval  time.Duration
	reconcileOnEvents bool
	queryName         string
	infrahubTimeout   time.Duration
	infrahubRequests  int
	remoteTimeout     time.Duration
	clusterIdleGrace  time.Duration
	infrahubCAFile    string
	cacheBytes        byteSize
	maxManifestBytes  byteSize
	maxResourceBytes  byteSize
	gitInterval       time.Duration
	gitTimeout        time.Duration
	gitMaxBytes       byteSize

	metricsAddr   string
	pprofAddr     string
	healthAddr    string
	webhookAddr   string
	webhookSecret string
	// gitWebhookSecret is "name/key" of the Git push webhooks' secret.
	gitWebhookSecret string

	defaultServiceAccount string
	deniedKinds           string
	allowedNamespaces     string

	// watchSelector is -watch-label-selector; shard is it parsed.
	watchSelector string
	shard         *shard.Selector

	leaderElect    bool
	leaseName      string
	leaseNamespace string
	leaseDuration  time.Duration
	renewDeadline  time.Duration
	retryPeriod    time.Duration

	logFormat       string
	shutdownTimeout time.Duration
	showVersion     bool

	// explicit holds the flags given on the command line; they win over
	// the ConfigMap.
	explicit map[string]bool
}

// Flag names the ConfigMap keys map to.
const (
	flagSyncInterval      = "sync-interval"
	flagResourceInterval  = "resource-interval"
	flagQueryName         = "query-name"
	flagReconcileOnEvents = "reconcile-on-events"
	flagWatchSelector     = "watch-label-selector"
	flagLeaseName         = "leader-election-id"
)

// Defaults. QPS and burst are sized for the benchmark goal (1000 artifacts of
// 4 objects converging in under 40 s on 2 cores): client-go's 5/10 would make
// the client's rate limiter the bottleneck.
const (
	defaultQPS              = 200
	defaultBurst            = 400
	defaultSyncWorkers      = operator.DefaultSyncWorkers
	defaultResourceWorkers  = operator.DefaultResourceWorkers
	defaultSyncInterval     = time.Minute
	defaultResourceInterval = 10 * time.Minute
	defaultConfigMap        = "vidra-config"
	defaultLeaseName        = "vidra-operator"
)

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("vidra-operator", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vidra-operator [flags]\n\nVidra keeps Kubernetes clusters in sync with Infrahub artifacts.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	o.cacheBytes = 256 << 20
	o.maxManifestBytes = manifeststore.DefaultMaxBytes
	o.maxResourceBytes = vidraresource.DefaultMaxResourceBytes

	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty: in-cluster config, else $KUBECONFIG or ~/.kube/config")
	fs.StringVar(&o.namespace, "namespace", "", "the operator's namespace: credentials Secrets, the ConfigMap and the Lease live there (default: $POD_NAMESPACE, else the service account's namespace, else vidra-system)")
	fs.StringVar(&o.configMap, "config-map", defaultConfigMap, "ConfigMap in the operator's namespace read at start-up for the earlier operator's keys (requeueSyncAfter, requeueResourcesAfter, queryName, eventBasedReconcile); empty: none. Flags given on the command line win over it")

	fs.IntVar(&o.syncWorkers, "sync-workers", defaultSyncWorkers, "InfrahubSyncs reconciled in parallel")
	fs.IntVar(&o.resourceWorkers, "resource-workers", defaultResourceWorkers, "VidraResources reconciled in parallel")
	fs.Float64Var(&o.qps, "kube-api-qps", defaultQPS, "queries per second to the Kubernetes API (client-side rate limit)")
	fs.IntVar(&o.burst, "kube-api-burst", defaultBurst, "burst of queries to the Kubernetes API above -kube-api-qps")
	fs.DurationVar(&o.syncInterval, flagSyncInterval, defaultSyncInterval, "default polling interval of an InfrahubSync (its spec.interval wins); ConfigMap key requeueSyncAfter")
	fs.DurationVar(&o.resourceInterval, flagResourceInterval, defaultResourceInterval, "default drift-repair interval of a VidraResource; ConfigMap key requeueResourcesAfter")
	fs.BoolVar(&o.reconcileOnEvents, flagReconcileOnEvents, false, "repair drift of every VidraResource as soon as a managed object changes, whatever its destination says; ConfigMap key eventBasedReconcile")
	fs.StringVar(&o.queryName, flagQueryName, "", "default stored query for listing artifacts (the earlier operator used ArtifactIDs); empty: Vidra's GraphQL query; ConfigMap key queryName")
	fs.DurationVar(&o.infrahubTimeout, "infrahub-timeout", 30*time.Second, "bound on each Infrahub request, body included")
	fs.IntVar(&o.infrahubRequests, "infrahub-concurrency", 8, "Infrahub requests in flight to one Infrahub (listings and downloads run off the sync workers, so a slow Infrahub delays no other)")
	fs.DurationVar(&o.remoteTimeout, "remote-timeout", 30*time.Second, "bound on each request to a remote cluster (drift watches are not bounded)")
	fs.DurationVar(&o.clusterIdleGrace, "cluster-idle-grace", 5*time.Minute, "how long the clients and watches of a remote cluster no VidraResource uses any more are kept")
	fs.StringVar(&o.infrahubCAFile, "infrahub-ca-file", "", "PEM file of CA certificates trusted for every Infrahub, besides the system roots")
	fs.Var(&o.cacheBytes, "artifact-cache-size", "memory bound of the artifact content cache (e.g. 256Mi)")
	fs.Var(&o.maxManifestBytes, "max-manifest-bytes", "largest artifact written to a VidraResource (e.g. 16Mi); a larger one is reported on its InfrahubSync and nothing applied from it before is touched")
	fs.Var(&o.maxResourceBytes, "max-resource-bytes", "largest a VidraResource may grow with the inventory of its objects (e.g. 1472Ki, below etcd's --max-request-bytes); a manifest needing more is refused with an InventoryTooLarge condition and nothing is applied")
	fs.DurationVar(&o.gitInterval, "git-interval", 0, "default interval at which a GitSync asks its repository where its ref points (its spec.interval wins); 0: the sync interval")
	fs.DurationVar(&o.gitTimeout, "git-timeout", 2*time.Minute, "bound on each Git ref listing and fetch")
	o.gitMaxBytes = 64 << 20
	fs.Var(&o.gitMaxBytes, "git-max-size", "bound on the data one Git fetch receives (e.g. 64Mi); a larger repository is reported, not read")

	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address serving /metrics (Prometheus text format); \"0\" turns it off")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address serving Go's /debug/pprof/ profiles (heap, CPU) for diagnosing memory and CPU use; \"0\" (the default) turns it off")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", ":8081", "address serving /healthz and /readyz; \"0\" turns it off")
	fs.StringVar(&o.webhookAddr, "webhook-bind-address", "0", "address of the Infrahub webhook receiver; \"0\" turns it off")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "vidra-webhook/secret", "Secret (name/key) in the operator's namespace holding the key Infrahub signs webhook deliveries with; read per delivery, so rotation needs no restart")
	fs.StringVar(&o.gitWebhookSecret, "git-webhook-secret", "vidra-webhook/git", "Secret (name/key) in the operator's namespace holding the secret of Git push webhooks (GitHub and Gitea/Forgejo sign with it, GitLab sends it as token), served on the webhook address under /git; read per delivery")

	fs.StringVar(&o.watchSelector, flagWatchSelector, "", "label selector on InfrahubSyncs: this instance handles only the syncs it matches and their VidraResources (sharding; e.g. \""+shard.Label+" in (shard1)\" for a shard, \"!"+shard.Label+"\" for the main instance); empty: all. The Lease name gets a hash of the selector unless -leader-election-id is given")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader through a coordination.k8s.io Lease, so several replicas can run with one active")
	fs.StringVar(&o.leaseName, flagLeaseName, defaultLeaseName, "name of the Lease (with -watch-label-selector and no -leader-election-id: vidra-operator-<hash of the selector>, one lease per shard)")
	fs.StringVar(&o.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the operator's namespace)")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a standby waits before taking over a lease that is not renewed")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before giving up leadership")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "pause between attempts to acquire or renew the lease")

	fs.StringVar(&o.defaultServiceAccount, "default-service-account", "", "namespace/name of a ServiceAccount every destination that names none impersonates: makes impersonation mandatory, so RBAC decides what any sync may touch")
	fs.StringVar(&o.deniedKinds, "denied-kinds", "", "comma-separated kinds never written (\"Kind\" or \"group/Kind\", e.g. rbac.authorization.k8s.io/ClusterRoleBinding)")
	fs.StringVar(&o.allowedNamespaces, "allowed-namespaces", "", "comma-separated namespaces namespaced objects may be written to; empty: any")

	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text (klog) or json (one JSON object per line)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 25*time.Second, "on SIGTERM, how long in-flight work may take before the process exits anyway (keep below the pod's terminationGracePeriodSeconds)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")

	// klog's own flags: -v, -vmodule, -logtostderr, ...
	klog.InitFlags(fs)
	return fs
}

// parse parses args and checks the values.
func (o *options) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.explicit = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.explicit[f.Name] = true })
	return o.validate()
}

func (o *options) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, got %v", name, d))
		}
	}
	if o.syncWorkers < 1 || o.resourceWorkers < 1 {
		errs = append(errs, errors.New("-sync-workers and -resource-workers must be at least 1"))
	}
	if o.qps <= 0 || o.burst < 1 {
		errs = append(errs, errors.New("-kube-api-qps must be positive and -kube-api-burst at least 1"))
	}
	positive(flagSyncInterval, o.syncInterval)
	positive(flagResourceInterval, o.resourceInterval)
	positive("infrahub-timeout", o.infrahubTimeout)
	positive("remote-timeout", o.remoteTimeout)
	positive("cluster-idle-grace", o.clusterIdleGrace)
	positive("git-timeout", o.gitTimeout)
	positive("shutdown-timeout", o.shutdownTimeout)
	if o.cacheBytes <= 0 {
		errs = append(errs, errors.New("-artifact-cache-size must be positive"))
	}
	if o.maxManifestBytes <= 0 {
		errs = append(errs, errors.New("-max-manifest-bytes must be positive"))
	}
	if o.maxResourceBytes <= 0 {
		errs = append(errs, errors.New("-max-resource-bytes must be positive"))
	}
	if err := checkQueryName(o.queryName); o.queryName != "" && err != nil {
		errs = append(errs, fmt.Errorf("-%s: %w", flagQueryName, err))
	}
	sel, err := shard.Parse(o.watchSelector)
	if err != nil {
		errs = append(errs, fmt.Errorf("-%s: %w", flagWatchSelector, err))
	}
	o.shard = sel
	if o.shard.Sharded() && !o.explicit[flagLeaseName] {
		o.leaseName = o.shard.LeaseName(defaultLeaseName)
	}
	if o.leaderElect {
		positive("leader-election-lease-duration", o.leaseDuration)
		positive("leader-election-renew-deadline", o.renewDeadline)
		positive("leader-election-retry-period", o.retryPeriod)
		if o.leaseDuration <= o.renewDeadline {
			errs = append(errs, errors.New("-leader-election-lease-duration must be longer than -leader-election-renew-deadline"))
		}
		if o.renewDeadline <= o.retryPeriod {
			errs = append(errs, errors.New("-leader-election-renew-deadline must be longer than -leader-election-retry-period"))
		}
		if o.leaseName == "" {
			errs = append(errs, errors.New("-leader-election-id must not be empty"))
		}
	}
	switch o.logFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("-log-format must be text or json, got %q", o.logFormat))
	}
	return errors.Join(errs...)
}

// checkQueryName accepts a stored query's name: it becomes a URL path
// segment, so no slashes, spaces or control characters.
func checkQueryName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, c := range s {
		if c <= ' ' || c == '/' || c == '?' || c == '#' || c == '%' || c == 0x7f {
			return fmt.Errorf("%q is not a stored query name (no spaces, slashes, ?, # or %%)", s)
		}
	}
	return nil
}

// resolveNamespace picks the operator's namespace: the flag, $POD_NAMESPACE,
// the service account's namespace, or vidra-system.
func resolveNamespace(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if ns := strings.TrimSpace(os.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "vidra-system"
}

// byteSize is a flag taking a Kubernetes quantity such as 256Mi.
type byteSize int64

func (b *byteSize) String() string {
	return resource.NewQuantity(int64(*b), resource.BinarySI).String()
}

func (b *byteSize) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a size such as 256Mi: %w", err)
	}
	*b = byteSize(q.Value())
	return nil
}

// disabled reports whether an address flag turns its server off.
func disabled(addr string) bool { return addr == "" || addr == "0" }

// serviceAccount parses -default-service-account.
func (o *options) serviceAccount() (*v1alpha1.ServiceAccountReference, error) {
	if o.defaultServiceAccount == "" {
		return nil, nil
	}
	ns, name, ok := strings.Cut(o.defaultServiceAccount, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("-default-service-account %q: want namespace/name", o.defaultServiceAccount)
	}
	return &v1alpha1.ServiceAccountReference{Namespace: ns, Name: name}, nil
}

// policy builds the write policy from -denied-kinds and -allowed-namespaces.
func (o *options) policy() vidraresource.Policy {
	return vidraresource.Policy{DeniedKinds: splitList(o.deniedKinds), AllowedNamespaces: splitList(o.allowedNamespaces)}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
