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
	"io"
	"net"
	"net/http"
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
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
	// kubeconfig changed or that became reachable again, so its users get
	// new clients and their drift watches back at once. It must not block.
	OnReplaced func(server string)
	// IdleGrace is how long a remote cluster no VidraResource watches
	// anything on, and none asked for, keeps its clients and informers.
	IdleGrace time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger klog.Logger
}

// Manager keeps one Cluster per destination and rebuilds it when its
// kubeconfig changes.
type Manager struct {
	opts  Options
	local *Cluster

	mu       sync.Mutex
	clusters map[string]*Cluster // by server and kubeconfig source
	// stopping counts clusters being stopped in the background: stopping
	// waits for informer goroutines, which must not hold mu.
	stopping sync.WaitGroup
	// stopCluster stops a cluster's watches and closes its connections;
	// replaced in tests.
	stopCluster func(*Cluster)
}

// NewManager returns a Manager; the local cluster is built right away.
func NewManager(opts Options) (*Manager, error) {
	if opts.RemoteTimeout == 0 {
		opts.RemoteTimeout = 15 * time.Second
	}
	if opts.UnreachableBackoff == 0 {
		opts.UnreachableBackoff = 5 * time.Second
	}
	if opts.IdleGrace == 0 {
		opts.IdleGrace = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = klog.Background()
	}
	m := &Manager{opts: opts, clusters: map[string]*Cluster{}, stopCluster: (*Cluster).stop}
	local, err := m.newCluster("", opts.Local, "")
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	m.local = local
	return m, nil
}

// Local returns the operator's own cluster.
func (m *Manager) Local() *Cluster { return m.local }

// Stop stops the watches of every cluster and waits for them.
func (m *Manager) Stop() {
	m.mu.Lock()
	clusters := []*Cluster{m.local}
	for k, c := range m.clusters {
		clusters = append(clusters, c)
		delete(m.clusters, k)
	}
	m.mu.Unlock()
	for _, c := range clusters {
		m.stopCluster(c)
	}
	m.stopping.Wait()
}

// retire stops clusters in the background, so neither the manager's lock
// nor the caller waits for informers to wind down.
func (m *Manager) retire(clusters ...*Cluster) {
	for _, c := range clusters {
		m.stopping.Go(func() { m.stopCluster(c) })
	}
}

func (m *Manager) replaced(servers []string) {
	if m.opts.OnReplaced == nil {
		return
	}
	for _, s := range servers {
		m.opts.OnReplaced(s)
	}
}

// Run releases idle remote clusters until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	every := max(m.opts.IdleGrace/4, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.ReleaseIdle()
		}
	}
}

// ReleaseIdle stops the clients and informers of remote clusters that no
// VidraResource watches anything on and none asked for within the grace
// period. It returns the servers released.
func (m *Manager) ReleaseIdle() []string {
	now := m.opts.Now()
	var idle []*Cluster
	var servers []string
	m.mu.Lock()
	for k, c := range m.clusters {
		if c.Watches.Owners() == 0 && now.Sub(c.lastUsed) >= m.opts.IdleGrace {
			idle = append(idle, c)
			servers = append(servers, c.Server)
			delete(m.clusters, k)
		}
	}
	m.mu.Unlock()
	for _, c := range idle {
		m.opts.Logger.Info("Releasing the clients of an unused cluster", "server", c.Server, "idleFor", now.Sub(c.lastUsed).Round(time.Second).String())
	}
	m.retire(idle...)
	sort.Strings(servers)
	return servers
}

// Refresh re-reads the kubeconfig of every remote cluster in use and drops
// those whose kubeconfig changed or went away; their users are told through
// OnReplaced. Call it when a Secret in the operator's namespace changes, so
// a rotation takes effect without waiting for a reconcile.
func (m *Manager) Refresh() {
	var stale []*Cluster
	var servers []string
	m.mu.Lock()
	for k, c := range m.clusters {
		data, source, err := m.kubeconfig(c.dest)
		if err == nil && source == c.source && fingerprint(data) == c.fingerprint {
			continue
		}
		stale = append(stale, c)
		servers = append(servers, c.Server)
		delete(m.clusters, k)
	}
	m.mu.Unlock()
	for _, c := range stale {
		m.opts.Logger.Info("Kubeconfig changed, rebuilding cluster clients", "server", c.Server, "source", c.source)
	}
	m.retire(stale...)
	sort.Strings(servers)
	m.replaced(servers)
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

func (m *Manager) cluster(_ context.Context, dest v1alpha1.Destination) (*Cluster, error) {
	if IsLocal(dest.Server) && dest.KubeConfigSecretRef == nil {
		return m.local, nil
	}
	server := NormalizeServer(dest.Server)
	dest = v1alpha1.Destination{Server: dest.Server, KubeConfigSecretRef: dest.KubeConfigSecretRef}
	kubeconfig, source, err := m.kubeconfig(dest)
	if err != nil {
		return nil, err
	}
	fingerprint := fingerprint(kubeconfig)
	key := server + "|" + source

	// Building a cluster makes no request, so the lock is held only for
	// moments; stopping a replaced one happens after it is released.
	m.mu.Lock()
	old, ok := m.clusters[key]
	if ok && old.fingerprint == fingerprint {
		old.lastUsed = m.opts.Now()
		m.mu.Unlock()
		return old, nil
	}
	c, err := m.remote(dest, server, kubeconfig, source, fingerprint)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.clusters[key] = c
	m.mu.Unlock()
	if ok {
		// The kubeconfig rotated: new credentials, new clients, new watches.
		m.opts.Logger.Info("Kubeconfig changed, rebuilding cluster clients", "server", server, "source", source)
		m.retire(old)
		m.replaced([]string{server})
	}
	return c, nil
}

// remote builds a remote cluster from its kubeconfig.
func (m *Manager) remote(dest v1alpha1.Destination, server string, kubeconfig []byte, source, fp string) (*Cluster, error) {
	cfg, err := restConfigFromKubeconfig(kubeconfig, dest.Server, dest.KubeConfigSecretRef != nil)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig in %s: %w", m.describe(source), err)
	}
	// Each request is bounded through its context (see boundRequests);
	// rest.Config.Timeout would also cut the drift watches.
	cfg.Timeout = 0
	cfg.Dial = (&net.Dialer{Timeout: max(m.opts.RemoteTimeout/3, time.Second), KeepAlive: 30 * time.Second}).DialContext
	if m.opts.Local != nil {
		cfg.QPS, cfg.Burst = m.opts.Local.QPS, m.opts.Local.Burst
		cfg.UserAgent = m.opts.Local.UserAgent
	}
	c, err := m.newCluster(server, cfg, fp)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", server, err)
	}
	c.dest, c.source, c.lastUsed = dest, source, m.opts.Now()
	return c, nil
}

// describe turns a kubeconfig source into words for conditions.
func (m *Manager) describe(source string) string {
	if rest, ok := strings.CutPrefix(source, "secret:"); ok {
		name, key, _ := strings.Cut(rest, "/")
		return fmt.Sprintf("Secret %s/%s key %q", m.opts.Namespace, name, key)
	}
	name := strings.TrimPrefix(source, "label:")
	return fmt.Sprintf("Secret %s/%s key %q", m.opts.Namespace, name, DefaultKubeconfigKey)
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
	if err := selfContained(raw, contextName); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", contextName, sanitize(err))
	}
	return cfg, nil
}

// selfContained refuses a context whose credentials or CA are not in the
// kubeconfig itself. A file path would be read from the operator's own file
// system (a kubeconfig naming the service account token file would send the
// operator's token to any server), and a plugin would run a program there.
func selfContained(raw *clientcmdapi.Config, contextName string) error {
	ctx, ok := raw.Contexts[contextName]
	if !ok {
		return fmt.Errorf("context %q not found", contextName)
	}
	var refused []string
	if user, ok := raw.AuthInfos[ctx.AuthInfo]; ok {
		for _, f := range []struct {
			set   bool
			field string
		}{
			{user.TokenFile != "", "tokenFile"},
			{user.ClientCertificate != "", "client-certificate"},
			{user.ClientKey != "", "client-key"},
			{user.Exec != nil, "exec"},
			{user.AuthProvider != nil, "auth-provider"},
		} {
			if f.set {
				refused = append(refused, fmt.Sprintf("users[%q].user.%s", ctx.AuthInfo, f.field))
			}
		}
	}
	if c, ok := raw.Clusters[ctx.Cluster]; ok && c.CertificateAuthority != "" {
		refused = append(refused, fmt.Sprintf("clusters[%q].cluster.certificate-authority", ctx.Cluster))
	}
	if len(refused) > 0 {
		return fmt.Errorf("refused: %s would read a file or run a plugin on the operator's host; "+
			"a destination kubeconfig must be self-contained: token, client certificate, key and CA inline (the *-data fields)",
			strings.Join(refused, ", "))
	}
	return nil
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
	// httpClients carry this cluster's connections, closed on release.
	httpClients []*http.Client
	// onRecovered is called when the cluster answers again after a
	// connection failure.
	onRecovered func()

	// Set by the Manager for remote clusters; guarded by Manager.mu.
	dest     v1alpha1.Destination
	source   string
	lastUsed time.Time

	mu               sync.Mutex
	reader           dynamic.Interface
	impersonation    map[string][2]dynamic.Interface // writer, reader
	unreachableUntil time.Time
	unreachableErr   error
}

func (m *Manager) newCluster(server string, cfg *rest.Config, fp string) (*Cluster, error) {
	if cfg == nil {
		return nil, errors.New("no client configuration")
	}
	opts := m.opts
	// Requests and watches get separate connections: requests are bounded
	// by a deadline on their context, watches run as long as the server
	// keeps them open.
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0
	cfg = rest.CopyConfig(cfg)
	if server != "" {
		cfg.Wrap(boundRequests(opts.RemoteTimeout))
	}
	requests, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	watches, err := rest.HTTPClientFor(watchCfg)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	dc, err := dynamic.NewForConfigAndClient(cfg, requests)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	// A second client, with its own rate limiter, for reads.
	reader, err := dynamic.NewForConfigAndClient(cfg, requests)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	watcher, err := dynamic.NewForConfigAndClient(watchCfg, watches)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, requests)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	wopts := opts.Watch
	wopts.Logger = opts.Logger.WithValues("cluster", displayServer(server))
	c := &Cluster{
		Server:        server,
		Dynamic:       dc,
		Mapper:        NewMapper(disc),
		Watches:       watch.NewManager(watcher, wopts),
		config:        cfg,
		fingerprint:   fp,
		backoff:       opts.UnreachableBackoff,
		logger:        opts.Logger,
		httpClients:   []*http.Client{requests, watches},
		reader:        reader,
		impersonation: map[string][2]dynamic.Interface{},
	}
	if server != "" && opts.OnReplaced != nil {
		c.onRecovered = func() { opts.OnReplaced(server) }
	}
	return c, nil
}

// stop stops the cluster's watches, waits for them and closes its idle
// connections.
func (c *Cluster) stop() {
	c.Watches.Stop()
	for _, h := range c.httpClients {
		h.CloseIdleConnections()
	}
}

// boundRequests gives every request without a deadline one of d. The
// deadline is on the request's context, so it ends when the response body is
// closed; watches never pass through here.
func boundRequests(d time.Duration) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if _, ok := req.Context().Deadline(); ok || d <= 0 {
				return rt.RoundTrip(req)
			}
			ctx, cancel := context.WithTimeout(req.Context(), d)
			resp, err := rt.RoundTrip(req.WithContext(ctx))
			if err != nil {
				cancel()
				return nil, err
			}
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
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
	if err != nil && IsUnreachable(err) {
		c.unreachableUntil = now.Add(c.backoff)
		c.unreachableErr = &UnreachableError{Server: c.Name(), err: err}
		c.mu.Unlock()
		return
	}
	recovered := err == nil && c.unreachableErr != nil
	if err == nil {
		c.unreachableUntil = time.Time{}
		c.unreachableErr = nil
	}
	c.mu.Unlock()
	// Its other users may have given up on it meanwhile: reconcile them all
	// now rather than at their next interval.
	if recovered && c.onRecovered != nil {
		c.onRecovered()
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
