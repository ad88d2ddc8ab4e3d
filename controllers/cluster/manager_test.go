package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

const testNamespace = "vidra-system"

// secretStore is the operator's Secret cache, seeded by the test.
type secretStore struct {
	indexer cache.Indexer
}

func newSecretStore() *secretStore {
	return &secretStore{indexer: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})}
}

func (s *secretStore) lister() corelisters.SecretNamespaceLister {
	return corelisters.NewSecretLister(s.indexer).Secrets(testNamespace)
}

func (s *secretStore) put(t *testing.T, name string, kubeconfig []byte) {
	t.Helper()
	assert.NilError(t, s.indexer.Update(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
		Data: map[string][]byte{DefaultKubeconfigKey: kubeconfig}}))
}

// inlineKubeconfig is a self-contained kubeconfig for server with a token.
func inlineKubeconfig(t *testing.T, server, token string) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	data, err := clientcmd.Write(*cfg)
	assert.NilError(t, err)
	return data
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestManager(t *testing.T, secrets *secretStore, tune func(*Options)) *Manager {
	t.Helper()
	opts := Options{Local: &rest.Config{Host: "https://127.0.0.1:1"}, Secrets: secrets.lister(), Namespace: testNamespace, RemoteTimeout: time.Second}
	if tune != nil {
		tune(&opts)
	}
	m, err := NewManager(opts)
	assert.NilError(t, err)
	t.Cleanup(m.Stop)
	return m
}

func dest(server, secret string) v1alpha1.Destination {
	return v1alpha1.Destination{Server: server, KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: secret}}
}

// Every way a kubeconfig could make the operator read its own files or run
// a program is refused, and the condition names the Secret and the field.
func TestKubeconfigMustBeSelfContained(t *testing.T) {
	cases := map[string]func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo){
		"tokenFile": func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.TokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
		},
		"client-certificate": func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.ClientCertificate = "/etc/ssl/client.crt" },
		"client-key":         func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.ClientKey = "/etc/ssl/client.key" },
		"certificate-authority": func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthority = "/var/run/secrets/ca.crt"
		},
		"exec": func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}
		},
		"auth-provider": func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		},
	}
	for field, set := range cases {
		t.Run(field, func(t *testing.T) {
			cfg := clientcmdapi.NewConfig()
			c := &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443"}
			u := &clientcmdapi.AuthInfo{Token: "inline-token-must-not-leak"}
			set(c, u)
			cfg.Clusters["c"], cfg.AuthInfos["u"] = c, u
			cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
			cfg.CurrentContext = "c"
			data, err := clientcmd.Write(*cfg)
			assert.NilError(t, err)

			secrets := newSecretStore()
			secrets.put(t, "remote", data)
			m := newTestManager(t, secrets, nil)
			_, err = m.Target(context.Background(), dest("https://10.0.0.1:6443", "remote"))
			assert.ErrorContains(t, err, `Secret vidra-system/remote key "kubeconfig"`)
			assert.ErrorContains(t, err, "."+field)
			assert.ErrorContains(t, err, "self-contained")
			assert.Assert(t, !strings.Contains(err.Error(), "inline-token-must-not-leak"))
			assert.Equal(t, len(m.Clusters()), 1, "no client was built for a refused kubeconfig")
		})
	}

	// Inline data is accepted.
	secrets := newSecretStore()
	secrets.put(t, "remote", inlineKubeconfig(t, "https://10.0.0.1:6443", "tok"))
	m := newTestManager(t, secrets, nil)
	_, err := m.Target(context.Background(), dest("https://10.0.0.1:6443", "remote"))
	assert.NilError(t, err)
}

// A cluster nobody watches anything on keeps its clients for the grace
// period after its last use, then they are released; one with owners stays.
func TestIdleClustersAreReleasedAfterGrace(t *testing.T) {
	api := newFakeAPIServer(t, 0)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	secrets := newSecretStore()
	secrets.put(t, "idle", inlineKubeconfig(t, "https://10.0.0.1:6443", "a"))
	secrets.put(t, "used", inlineKubeconfig(t, api.URL, "b"))
	m := newTestManager(t, secrets, func(o *Options) { o.IdleGrace = time.Minute; o.Now = clock.Now })

	_, err := m.Target(context.Background(), dest("https://10.0.0.1:6443", "idle"))
	assert.NilError(t, err)
	used, err := m.Target(context.Background(), dest(api.URL, "used"))
	assert.NilError(t, err)
	used.Watches.SetOwnerResources("owner", []schema.GroupVersionResource{widgets})
	assert.Equal(t, len(m.Clusters()), 3)

	clock.Step(59 * time.Second)
	assert.Equal(t, len(m.ReleaseIdle()), 0, "released before the grace period ended")

	// A use restarts the grace period.
	_, err = m.Target(context.Background(), dest("https://10.0.0.1:6443", "idle"))
	assert.NilError(t, err)
	clock.Step(59 * time.Second)
	assert.Equal(t, len(m.ReleaseIdle()), 0)
	clock.Step(time.Second)
	assert.DeepEqual(t, m.ReleaseIdle(), []string{"https://10.0.0.1:6443"})
	assert.Equal(t, len(m.Clusters()), 2, "the local cluster and the one with owners stay")

	// Once its last owner lets go, the other one goes too.
	used.Watches.RemoveOwner("owner")
	assert.DeepEqual(t, m.ReleaseIdle(), []string{NormalizeServer(api.URL)})
	assert.Equal(t, len(m.Clusters()), 1)
	assert.Assert(t, used.Watches.Owners() == 0)
}

// Rotating one cluster's kubeconfig stops its old watches without holding
// the manager's lock: Target for another cluster, and for the rotated one,
// return while the old watches are still stopping. Users are told.
func TestRotationDoesNotBlockOtherClusters(t *testing.T) {
	secrets := newSecretStore()
	secrets.put(t, "a", inlineKubeconfig(t, "https://10.0.0.1:6443", "a1"))
	secrets.put(t, "b", inlineKubeconfig(t, "https://10.0.0.2:6443", "b1"))
	var replacedMu sync.Mutex
	var replaced []string
	m := newTestManager(t, secrets, func(o *Options) {
		o.OnReplaced = func(server string) {
			replacedMu.Lock()
			defer replacedMu.Unlock()
			replaced = append(replaced, server)
		}
	})
	release := make(chan struct{})
	stopping := make(chan string, 4)
	stop := m.stopCluster
	m.stopCluster = func(c *Cluster) {
		stopping <- c.Server
		<-release
		stop(c)
	}
	ctx := context.Background()
	a1, err := m.Target(ctx, dest("https://10.0.0.1:6443", "a"))
	assert.NilError(t, err)
	_, err = m.Target(ctx, dest("https://10.0.0.2:6443", "b"))
	assert.NilError(t, err)

	// Rotation noticed by a reconcile.
	secrets.put(t, "a", inlineKubeconfig(t, "https://10.0.0.1:6443", "a2"))
	returned := make(chan error, 3)
	go func() {
		a2, err := m.Target(ctx, dest("https://10.0.0.1:6443", "a"))
		if err == nil && a2.Cluster == a1.Cluster {
			err = fmt.Errorf("the rotated cluster was not rebuilt")
		}
		returned <- err
	}()
	assert.Equal(t, <-stopping, "https://10.0.0.1:6443")
	// The old watches are still stopping; nobody waits for them.
	go func() {
		_, err := m.Target(ctx, dest("https://10.0.0.2:6443", "b"))
		returned <- err
	}()
	go func() {
		_, err := m.Target(ctx, dest("https://10.0.0.1:6443", "a"))
		returned <- err
	}()
	for range 3 {
		select {
		case err := <-returned:
			assert.NilError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Target waited for the rotated cluster's watches to stop")
		}
	}
	replacedMu.Lock()
	assert.DeepEqual(t, replaced, []string{"https://10.0.0.1:6443"})
	replacedMu.Unlock()

	// Rotation noticed through the Secret informer: Refresh does not wait
	// either.
	secrets.put(t, "b", inlineKubeconfig(t, "https://10.0.0.2:6443", "b2"))
	done := make(chan struct{})
	go func() { m.Refresh(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Refresh waited for the previous cluster's watches to stop")
	}
	assert.Equal(t, <-stopping, "https://10.0.0.2:6443")
	replacedMu.Lock()
	assert.DeepEqual(t, replaced, []string{"https://10.0.0.1:6443", "https://10.0.0.2:6443"})
	replacedMu.Unlock()
	close(release)
}

var widgets = schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1alpha1", Resource: "widgets"}

// fakeAPIServer serves an empty widgets collection after listDelay and
// keeps watches open until the client goes.
type fakeAPIServer struct {
	*httptest.Server
	lists, watches atomic.Int32
}

func newFakeAPIServer(t *testing.T, listDelay time.Duration) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/harness.vidra.dev/v1alpha1/widgets" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		watching := q.Get("watch") == "true" || q.Get("watch") == "1"
		if !watching || q.Get("sendInitialEvents") == "true" {
			// The initial state: slow, like a list of many objects.
			select {
			case <-time.After(listDelay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if !watching {
			f.lists.Add(1)
			fmt.Fprint(w, `{"apiVersion":"harness.vidra.dev/v1alpha1","kind":"WidgetList","metadata":{"resourceVersion":"7"},"items":[]}`)
			return
		}
		f.watches.Add(1)
		w.WriteHeader(http.StatusOK)
		if q.Get("sendInitialEvents") == "true" {
			fmt.Fprint(w, `{"type":"BOOKMARK","object":{"apiVersion":"harness.vidra.dev/v1alpha1","kind":"Widget","metadata":{"resourceVersion":"7","annotations":{"k8s.io/initial-events-end":"true"}}}}`+"\n")
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(f.Close)
	return f
}

// A request is bounded by the remote timeout, but a drift watch is not: an
// initial list slower than the timeout syncs, and the watch then stays open
// past several timeout periods without a new list or watch.
func TestWatchesHaveNoRequestTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	api := newFakeAPIServer(t, 5*timeout)
	secrets := newSecretStore()
	secrets.put(t, "slow", inlineKubeconfig(t, api.URL, "tok"))
	m := newTestManager(t, secrets, func(o *Options) { o.RemoteTimeout = timeout })
	target, err := m.Target(context.Background(), dest(api.URL, "slow"))
	assert.NilError(t, err)

	// A plain request gives up after the timeout.
	start := time.Now()
	_, err = target.Reader.Resource(widgets).List(context.Background(), metav1.ListOptions{})
	assert.Assert(t, err != nil, "a request outlived the remote timeout")
	assert.Assert(t, IsUnreachable(err), "a timed-out request counts as unreachable: %v", err)
	assert.Assert(t, time.Since(start) < 5*timeout)

	target.Watches.SetOwnerResources("owner", []schema.GroupVersionResource{widgets})
	deadline := time.Now().Add(30 * time.Second)
	for !target.Watches.HasSynced(widgets) {
		if time.Now().After(deadline) {
			t.Fatalf("the drift watch never synced: lists %d, watches %d, health %v", api.lists.Load(), api.watches.Load(), target.Watches.OwnerWatchHealth("owner"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	initial := api.lists.Load() + api.watches.Load()
	time.Sleep(5 * timeout)
	assert.Equal(t, api.lists.Load()+api.watches.Load(), initial, "the watch was cut and restarted")
	h := target.Watches.OwnerWatchHealth("owner")
	assert.Equal(t, h.Resources, 1)
	assert.Equal(t, len(h.Failing), 0)
}

// A cluster that answers again after a connection failure is announced
// once, so every VidraResource on it is reconciled at once; a Secret that
// goes away drops the cluster and announces it too.
func TestRecoveryAndRemovalAreAnnounced(t *testing.T) {
	secrets := newSecretStore()
	secrets.put(t, "a", inlineKubeconfig(t, "https://10.0.0.1:6443", "a1"))
	var mu sync.Mutex
	var announced []string
	m := newTestManager(t, secrets, func(o *Options) {
		o.OnReplaced = func(server string) {
			mu.Lock()
			defer mu.Unlock()
			announced = append(announced, server)
		}
	})
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), announced...)
	}
	target, err := m.Target(context.Background(), dest("https://10.0.0.1:6443", "a"))
	assert.NilError(t, err)
	now := time.Now()

	target.Observe(now, nil)
	assert.Equal(t, len(got()), 0, "a success without a failure before is no recovery")
	target.Observe(now, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})
	assert.ErrorContains(t, target.Reachable(now), "unreachable")
	assert.Equal(t, len(got()), 0)
	target.Observe(now, nil)
	assert.DeepEqual(t, got(), []string{"https://10.0.0.1:6443"})
	target.Observe(now, nil)
	assert.Equal(t, len(got()), 1, "announced once per recovery")

	// Unrelated Secret changes change nothing.
	secrets.put(t, "other", []byte("x"))
	m.Refresh()
	assert.Equal(t, len(m.Clusters()), 2)
	assert.Equal(t, len(got()), 1)

	assert.NilError(t, secrets.indexer.Delete(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "a"}}))
	m.Refresh()
	assert.Equal(t, len(m.Clusters()), 1, "the cluster of a deleted kubeconfig Secret is dropped")
	assert.DeepEqual(t, got(), []string{"https://10.0.0.1:6443", "https://10.0.0.1:6443"})
	_, err = m.Target(context.Background(), dest("https://10.0.0.1:6443", "a"))
	assert.ErrorContains(t, err, `kubeconfig Secret vidra-system/a key "kubeconfig" not found`)
}
