// Package cluster gives the controllers a client, a RESTMapper and drift
// watches for each destination cluster: the local one, and remote ones whose
// kubeconfig is held in a Secret in the operator's namespace.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/watch"
)

const (
	// LocalServer is what the earlier operator accepted for "this cluster".
	LocalServer = "https://kubernetes.default.svc"
	// LegacyKubeconfigLabel marks kubeconfig Secrets the earlier operator's
	// CLI created; the value is the destination's host.
	LegacyKubeconfigLabel = "cluster-kubeconfig"
	// DefaultKubeconfigKey is the Secret key read when a reference names none.
	DefaultKubeconfigKey = "kubeconfig"
)

// IsLocal reports whether a destination server means the operator's own cluster.
func IsLocal(server string) bool {
	s := strings.TrimRight(strings.TrimSpace(server), "/")
	return s == "" || s == LocalServer || s == LocalServer+":443"
}

// Options configure a Manager.
type Options struct {
	// Local is the operator's own cluster.
	Local *rest.Config
	// Secrets reads Secrets in the operator's namespace only.
	Secrets corelisters.SecretNamespaceLister
	// Namespace is the operator's namespace, for messages.
	Namespace string
	// Watch configures the drift watches of every cluster.
	Watch watch.Options
	// RemoteTimeout bounds every request to a remote cluster, so a dead
	// cluster cannot hold a worker for long.
	RemoteTimeout time.Duration
	// UnreachableBackoff is how long a cluster that refused a connection is
	// failed fast before it is tried again.
	UnreachableBackoff time.Duration
	// OnReplaced is called with the server of a remote cluster whose
	// kubeconfig changed, so its users can be reconciled with new clients.
	OnReplaced func(server string)
	Logger     klog.Logger
}

// Manager keeps one Cluster per destination and rebuilds it when its
// kubeconfig changes.
type Manager struct {
	opts  Options
	local *Cluster

	mu       sync.Mutex
	clusters map[string]*Cluster // by server and kubeconfig source
}

// NewManager returns a Manager; the local cluster is built right away.
func NewManager(opts Options) (*Manager, error) {
	if opts.RemoteTimeout == 0 {
		opts.RemoteTimeout = 15 * time.Second
	}
	if opts.UnreachableBackoff == 0 {
		opts.UnreachableBackoff = 5 * time.Second
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = klog.Background()
	}
	local, err := newCluster("", opts.Local, "", opts)
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	return &Manager{opts: opts, local: local, clusters: map[string]*Cluster{}}, nil
}

// Local returns the operator's own cluster.
func (m *Manager) Local() *Cluster { return m.local }

// Stop stops the watches of every cluster.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local.Watches.Stop()
	for k, c := range m.clusters {
		c.Watches.Stop()
		delete(m.clusters, k)
	}
}

// Clusters returns every cluster in use, the local one first.
func (m *Manager) Clusters() []*Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Cluster{m.local}
	keys := make([]string, 0, len(m.clusters))
	for k := range m.clusters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, m.clusters[k])
	}
	return out
}

// Target is a cluster as seen by one destination: its client acts as the
// destination's service account when one is set.
type Target struct {
	*Cluster
	// Client writes the destination's objects.
	Client dynamic.Interface
	// Reader reads them. It has its own client-side rate limit, so the
	// cheap reads that decide whether to write never delay the writes.
	Reader dynamic.Interface
	// Identity is the impersonated user, empty when acting as the operator.
	Identity string
}

// Impersonating reports whether the target acts as a service account.
func (t *Target) Impersonating() bool { return t.Identity != "" }

// Target returns the cluster and client for a destination.
func (m *Manager) Target(ctx context.Context, dest v1alpha1.Destination) (*Target, error) {
	c, err := m.cluster(ctx, dest)
	if err != nil {
		return nil, err
	}
	if dest.ServiceAccount == nil {
		return &Target{Cluster: c, Client: c.Dynamic, Reader: c.reader}, nil
	}
	identity := "system:serviceaccount:" + dest.ServiceAccount.Namespace + ":" + dest.ServiceAccount.Name
	clients, err := c.impersonated(identity, dest.ServiceAccount.Namespace)
	if err != nil {
		return nil, err
	}
	return &Target{Cluster: c, Client: clients[0], Reader: clients[1], Identity: identity}, nil
}

func (m *Manager) cluster(ctx context.Context, dest v1alpha1.Destination) (*Cluster, error) {
	if IsLocal(dest.Server) && dest.KubeConfigSecretRef == nil {
		return m.local, nil
	}
	server := NormalizeServer(dest.Server)
	kubeconfig, source, err := m.kubeconfig(dest)
	if err != nil {
		return nil, err
	}
	fingerprint := fingerprint(kubeconfig)
	key := server + "|" + source

	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clusters[key]; ok {
		if c.fingerprint == fingerprint {
			return c, nil
		}
		// The kubeconfig rotated: new credentials, new clients, new watches.
		c.Watches.Stop()
		delete(m.clusters, key)
		if m.opts.OnReplaced != nil {
			defer m.opts.OnReplaced(server)
		}
		m.opts.Logger.Info("Kubeconfig changed, rebuilding cluster clients", "server", server, "source", source)
	}
	cfg, err := restConfigFromKubeconfig(kubeconfig, dest.Server, dest.KubeConfigSecretRef != nil)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig from %s: %w", source, err)
	}
	cfg.Timeout = m.opts.RemoteTimeout
	cfg.Dial = (&net.Dialer{Timeout: m.opts.RemoteTimeout / 3, KeepAlive: 30 * time.Second}).DialContext
	if m.opts.Local != nil {
		cfg.QPS, cfg.Burst = m.opts.Local.QPS, m.opts.Local.Burst
		cfg.UserAgent = m.opts.Local.UserAgent
	}
	c, err := newCluster(server, cfg, fingerprint, m.opts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", server, err)
	}
	m.clusters[key] = c
	return c, nil
}

// kubeconfig finds the kubeconfig of a remote destination: the Secret key it
// names, or else the earlier operator's Secret labelled with the server's
// host. Only the operator's namespace is searched.
func (m *Manager) kubeconfig(dest v1alpha1.Destination) ([]byte, string, error) {
	if m.opts.Secrets == nil {
		return nil, "", fmt.Errorf("destination %s needs a kubeconfig Secret, but the operator reads no Secrets", dest.Server)
	}
	if ref := dest.KubeConfigSecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = DefaultKubeconfigKey
		}
		source := fmt.Sprintf("Secret %s/%s key %q", m.opts.Namespace, ref.Name, key)
		s, err := m.opts.Secrets.Get(ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, "", fmt.Errorf("kubeconfig %s not found", source)
			}
			return nil, "", fmt.Errorf("read kubeconfig %s: %w", source, err)
		}
		data := s.Data[key]
		if len(data) == 0 {
			return nil, "", fmt.Errorf("kubeconfig %s is empty or missing", source)
		}
		return data, "secret:" + ref.Name + "/" + key, nil
	}
	host := serverHost(dest.Server)
	if host == "" {
		return nil, "", fmt.Errorf("destination server %q has no host", dest.Server)
	}
	selector := labels.SelectorFromSet(labels.Set{LegacyKubeconfigLabel: LabelValueForHost(host)})
	secrets, err := m.opts.Secrets.List(selector)
	if err != nil {
		return nil, "", fmt.Errorf("list kubeconfig Secrets: %w", err)
	}
	// Newest first, as the earlier operator did, but only exact host matches
	// in the operator's own namespace qualify.
	secrets = NewestFirst(secrets)
	for _, s := range secrets {
		if data := s.Data[DefaultKubeconfigKey]; len(data) > 0 {
			return data, "label:" + s.Name, nil
		}
	}
	return nil, "", fmt.Errorf("no kubeconfig for %s: set spec.destination.kubeConfigSecretRef, or label a Secret in namespace %s with %s=%s and key %q",
		dest.Server, m.opts.Namespace, LegacyKubeconfigLabel, LabelValueForHost(host), DefaultKubeconfigKey)
}

// restConfigFromKubeconfig builds a client config. With an explicit reference
// the kubeconfig's current context is used as is; a Secret found by label
// must hold a cluster whose server is exactly the destination's.
func restConfigFromKubeconfig(data []byte, server string, explicit bool) (*rest.Config, error) {
	raw, err := clientcmd.Load(data)
	if err != nil {
		// The parse error may quote the file; never pass it on.
		return nil, errors.New("not a valid kubeconfig")
	}
	contextName := raw.CurrentContext
	if !explicit || contextName == "" {
		want := NormalizeServer(server)
		var matches []string
		for name, ctx := range raw.Contexts {
			if c, ok := raw.Clusters[ctx.Cluster]; ok && NormalizeServer(c.Server) == want {
				matches = append(matches, name)
			}
		}
		sort.Strings(matches)
		switch {
		case len(matches) == 0 && explicit && len(raw.Contexts) == 1:
			for name := range raw.Contexts {
				matches = append(matches, name)
			}
		case len(matches) == 0:
			return nil, fmt.Errorf("no context for server %s", server)
		}
		if raw.CurrentContext == "" || !contains(matches, raw.CurrentContext) {
			contextName = matches[0]
		}
	}
	if ctx, ok := raw.Contexts[contextName]; ok {
		if user, ok := raw.AuthInfos[ctx.AuthInfo]; ok && (user.Exec != nil || user.AuthProvider != nil) {
			return nil, fmt.Errorf("context %q needs an exec or auth plugin; a destination kubeconfig must be self-contained", contextName)
		}
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", contextName, sanitize(err))
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sanitize keeps the type of an error from client config loading but drops
// its text when it could quote credentials.
func sanitize(err error) error {
	msg := err.Error()
	for _, marker := range []string{"token", "password", "BEGIN", "client-key"} {
		if strings.Contains(msg, marker) {
			return errors.New("invalid client configuration")
		}
	}
	return err
}

// NormalizeServer makes server URLs comparable: lower-case scheme and host,
// default port made explicit, no trailing slash.
func NormalizeServer(server string) string {
	s := strings.TrimSpace(server)
	if IsLocal(s) {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return strings.TrimRight(s, "/")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port) + strings.TrimRight(u.EscapedPath(), "/")
}

func serverHost(server string) string {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// LabelValueForHost turns a host into a label value. Hostnames and IPv4
// addresses are kept; an IPv6 address, which a label cannot hold, has its
// colons replaced by dashes.
func LabelValueForHost(host string) string {
	if len(validation.IsValidLabelValue(host)) == 0 {
		return host
	}
	v := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, host)
	return strings.Trim(v, "-_.")
}

func fingerprint(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// Cluster is one destination API server.
type Cluster struct {
	// Server is the normalized server URL; empty for the local cluster.
	Server string
	// Dynamic acts as the operator.
	Dynamic dynamic.Interface
	// Mapper resolves kinds with this cluster's own discovery.
	Mapper *Mapper
	// Watches caches and watches the objects Vidra manages here.
	Watches *watch.Manager

	config      *rest.Config
	fingerprint string
	backoff     time.Duration
	logger      klog.Logger

	mu               sync.Mutex
	reader           dynamic.Interface
	impersonation    map[string][2]dynamic.Interface // writer, reader
	unreachableUntil time.Time
	unreachableErr   error
}

func newCluster(server string, cfg *rest.Config, fp string, opts Options) (*Cluster, error) {
	if cfg == nil {
		return nil, errors.New("no client configuration")
	}
	cfg = rest.CopyConfig(cfg)
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	// A second client, with its own rate limiter, for reads.
	reader, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	wopts := opts.Watch
	wopts.Logger = opts.Logger.WithValues("cluster", displayServer(server))
	return &Cluster{
		Server:        server,
		Dynamic:       dc,
		Mapper:        NewMapper(disc),
		Watches:       watch.NewManager(dc, wopts),
		config:        cfg,
		fingerprint:   fp,
		backoff:       opts.UnreachableBackoff,
		logger:        opts.Logger,
		reader:        reader,
		impersonation: map[string][2]dynamic.Interface{},
	}, nil
}

func displayServer(server string) string {
	if server == "" {
		return "local"
	}
	return server
}

// Name is the cluster's name for people: "local" or its server URL.
func (c *Cluster) Name() string { return displayServer(c.Server) }

func (c *Cluster) impersonated(identity, namespace string) ([2]dynamic.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if clients, ok := c.impersonation[identity]; ok {
		return clients, nil
	}
	cfg := rest.CopyConfig(c.config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: identity,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	var clients [2]dynamic.Interface
	for i := range clients {
		client, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return clients, fmt.Errorf("client impersonating %s: %w", identity, err)
		}
		clients[i] = client
	}
	c.impersonation[identity] = clients
	return clients, nil
}

// Reachable returns the last connection error while the cluster is in its
// fail-fast window, so work for a dead cluster does not hold workers.
func (c *Cluster) Reachable(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.unreachableUntil) {
		return c.unreachableErr
	}
	return nil
}

// Observe records the outcome of a request: a connection failure opens the
// fail-fast window, anything else closes it.
func (c *Cluster) Observe(now time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && IsUnreachable(err) {
		c.unreachableUntil = now.Add(c.backoff)
		c.unreachableErr = &UnreachableError{Server: c.Name(), err: err}
		return
	}
	if err == nil {
		c.unreachableUntil = time.Time{}
		c.unreachableErr = nil
	}
}

// UnreachableError says a cluster could not be reached.
type UnreachableError struct {
	Server string
	err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster %s is unreachable: %v", e.Server, e.err)
}

func (e *UnreachableError) Unwrap() error { return e.err }

// IsUnreachable reports whether err means the API server could not be reached.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// GVRs lists the distinct resources of an inventory.
func GVRs(items []v1alpha1.ManagedResource) []schema.GroupVersionResource {
	seen := map[schema.GroupVersionResource]bool{}
	var out []schema.GroupVersionResource
	for _, it := range items {
		if it.Resource == "" {
			continue
		}
		gvr := schema.GroupVersionResource{Group: it.Group, Version: it.Version, Resource: it.Resource}
		if !seen[gvr] {
			seen[gvr] = true
			out = append(out, gvr)
		}
	}
	return out
}

// SecretName describes a Secret without its contents.
func SecretName(s *corev1.Secret) string { return s.Namespace + "/" + s.Name }

// NewestFirst returns the Secrets sorted newest first, by name among equals,
// the order in which host-labelled Secrets are tried. The input, which may
// be a lister's, is not changed.
func NewestFirst(secrets []*corev1.Secret) []*corev1.Secret {
	out := append([]*corev1.Secret(nil), secrets...)
	sort.Slice(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return out[i].Name < out[j].Name
	})
	return out
}
