package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub"
)

type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) Trigger(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.names
	r.names = nil
	sort.Strings(out)
	return out
}

var secret = []byte("webhook-shared-key")

func syncLister(t *testing.T, syncs ...*v1alpha1.InfrahubSync) listers.InfrahubSyncLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, s := range syncs {
		assert.NilError(t, idx.Add(s))
	}
	return listers.NewInfrahubSyncLister(idx)
}

func newSync(name, url, branch string, artifacts ...string) *v1alpha1.InfrahubSync {
	s := &v1alpha1.InfrahubSync{ObjectMeta: metav1.ObjectMeta{Name: name}}
	s.Spec.Source.InfrahubAPIURL = url
	s.Spec.Source.TargetBranch = branch
	for _, a := range artifacts {
		s.Status.Artifacts = append(s.Status.Artifacts, v1alpha1.ArtifactStatus{ID: a})
	}
	return s
}

func artifactEvent(artifactID, branch string) []byte {
	return []byte(fmt.Sprintf(`{"data":{"node_id":%q,"checksum":"c2","checksum_previous":"c1","storage_id":"s2","storage_id_previous":"s1"},"id":"e1","branch":%q,"account_id":null,"occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.artifact.updated"}`, artifactID, branch))
}

func deliver(t *testing.T, r http.Handler, id string, ts time.Time, body []byte, key []byte, query string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+query, strings.NewReader(string(body)))
	req.Header.Set(infrahub.HeaderWebhookID, id)
	req.Header.Set(infrahub.HeaderWebhookTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(key, id, ts, body))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Code
}

func TestReceiverTriggersMatchingSyncs(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 15, 3, 0, time.UTC)
	trig := &recorder{}
	r := NewReceiver(Options{
		Key: func() ([]byte, error) { return secret, nil },
		Syncs: syncLister(t,
			newSync("web", "http://infrahub:8000", "", "a1", "a2"),
			newSync("vms", "http://infrahub:8000", "main", "b1"),
			newSync("preview", "http://infrahub:8000", "feature", "a1"),
			newSync("other", "https://other.example.com", "main"),
		),
		Trigger: trig,
		Now:     func() time.Time { return now },
	})

	cases := []struct {
		name, artifact, branch, query string
		want                          []string
	}{
		{"known artifact goes to the syncs holding it", "a1", "main", "", []string{"web"}},
		{"a new artifact wakes every sync of the branch", "new", "main", "", []string{"other", "vms", "web"}},
		{"another branch", "a1", "feature", "", []string{"preview"}},
		{"restricted to one Infrahub", "new", "main", "?infrahub=http://infrahub:8000", []string{"vms", "web"}},
		{"branch nobody syncs", "a1", "nobody", "", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := deliver(t, r, fmt.Sprintf("msg-%d", i), now, artifactEvent(tc.artifact, tc.branch), secret, tc.query)
			assert.Equal(t, code, http.StatusNoContent)
			assert.DeepEqual(t, trig.take(), tc.want)
		})
	}

	// A node event on a branch wakes that branch.
	body := []byte(`{"data":{"node_id":"n","kind":"KubernetesWebserver"},"id":"e2","branch":"feature","event":"infrahub.node.updated"}`)
	assert.Equal(t, deliver(t, r, "node-1", now, body, secret, ""), http.StatusNoContent)
	assert.DeepEqual(t, trig.take(), []string{"preview"})
}

func TestReceiverRejectsWhatItCannotTrust(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 15, 3, 0, time.UTC)
	trig := &recorder{}
	keyErr := error(nil)
	r := NewReceiver(Options{
		Key:          func() ([]byte, error) { return secret, keyErr },
		Syncs:        syncLister(t, newSync("web", "http://infrahub:8000", "", "a1")),
		Trigger:      trig,
		Now:          func() time.Time { return now },
		MaxBodyBytes: 4096,
	})
	body := artifactEvent("a1", "main")

	assert.Equal(t, deliver(t, r, "forged", now, body, []byte("wrong key"), ""), http.StatusUnauthorized)
	assert.Equal(t, deliver(t, r, "stale", now.Add(-time.Hour), body, secret, ""), http.StatusUnauthorized)
	assert.Equal(t, deliver(t, r, "big", now, []byte(strings.Repeat("x", 5000)), secret, ""), http.StatusRequestEntityTooLarge)
	assert.Equal(t, deliver(t, r, "garbage", now, []byte("not json"), secret, ""), http.StatusBadRequest)
	assert.Equal(t, len(trig.take()), 0, "a rejected delivery triggered a sync")

	// The first delivery counts, its replay does not.
	assert.Equal(t, deliver(t, r, "once", now, body, secret, ""), http.StatusNoContent)
	assert.Equal(t, deliver(t, r, "once", now, body, secret, ""), http.StatusOK)
	assert.DeepEqual(t, trig.take(), []string{"web"})

	// A tampered body under a valid signature of another body is refused.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(artifactEvent("a2", "main"))))
	req.Header.Set(infrahub.HeaderWebhookID, "tamper")
	req.Header.Set(infrahub.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(secret, "tamper", now, body))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	assert.Equal(t, rec.Code, http.StatusUnauthorized)

	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, rec.Code, http.StatusMethodNotAllowed)

	keyErr = errors.New("secret missing")
	assert.Equal(t, deliver(t, r, "nokey", now, body, secret, ""), http.StatusServiceUnavailable)

	stats, triggered := r.Stats()
	assert.DeepEqual(t, stats, map[string]int64{
		ResultBadSignature: 2, ResultStale: 1, ResultTooLarge: 1, ResultBadPayload: 1,
		ResultAccepted: 1, ResultDuplicate: 1, ResultUnavailable: 1,
	})
	assert.Equal(t, triggered, int64(1))
	assert.Equal(t, len(trig.take()), 0)
}
