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
	"k8s.io/klog/v2/ktesting"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/metrics"
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
		// web has no target branch: it reads Infrahub's default, main here.
		BranchOf: func(name string) string {
			return map[string]string{"web": "main", "vms": "main", "preview": "feature", "other": "main"}[name]
		},
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

// The default branch is Infrahub's, by name: a sync without a target
// branch follows what the InfrahubSync controller learnt, and matches every
// branch while that is unknown. An artifact's deletion (a node deletion
// event of kind CoreArtifact) triggers the syncs holding it, and only them.
func TestReceiverDefaultBranchAndDeletions(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 15, 3, 0, time.UTC)
	deleted := func(id, branch string) []byte {
		return []byte(fmt.Sprintf(`{"data":{"kind":"CoreArtifact","node_id":%q,"action":"deleted","fields":[],"changelog":{}},"id":"e3","branch":%q,"account_id":null,"occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.node.deleted"}`, id, branch))
	}
	branches := map[string]string{"web": "trunk"} // "new" has not listed yet
	syncs := syncLister(t,
		newSync("web", "http://infrahub:8000", "main", "a1"), // the API default
		newSync("new", "http://infrahub:8000", "main"),
		newSync("feature", "http://infrahub:8000", "feature", "f1"),
	)
	cases := []struct {
		name string
		body []byte
		want []string
	}{
		{"default branch trunk by name", artifactEvent("x", "trunk"), []string{"new", "web"}},
		{"main is not the default", artifactEvent("x", "main"), []string{"new"}},
		{"artifact deleted: its holder", deleted("a1", "trunk"), []string{"web"}},
		{"artifact deleted on a branch", deleted("f1", "feature"), []string{"feature"}},
		{"deletion of an artifact nobody holds", deleted("zz", "trunk"), nil},
		{"other node deleted: the branch", []byte(`{"data":{"kind":"KubernetesWebserver","node_id":"n"},"id":"e4","branch":"trunk","event":"infrahub.node.deleted"}`), []string{"new", "web"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			trig := &recorder{}
			r := NewReceiver(Options{
				Key: func() ([]byte, error) { return secret, nil }, Syncs: syncs, Trigger: trig,
				Now: func() time.Time { return now }, BranchOf: func(n string) string { return branches[n] },
			})
			assert.Equal(t, deliver(t, r, fmt.Sprintf("d-%d", i), now, tc.body, secret, ""), http.StatusNoContent)
			assert.DeepEqual(t, trig.take(), tc.want)
		})
	}
}

// Rejected deliveries are counted in /metrics by reason and logged at most
// once per interval and reason.
func TestReceiverRejectionsCountedAndLogsRateLimited(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 15, 3, 0, time.UTC)
	reg := metrics.NewRegistry()
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	r := NewReceiver(Options{
		Key: func() ([]byte, error) { return secret, nil }, Syncs: syncLister(t), Trigger: &recorder{},
		Now: func() time.Time { return now }, Deliveries: metrics.NewWebhookDeliveries(reg), Logger: logger,
		LogInterval: time.Minute,
	})
	body := artifactEvent("a1", "main")
	for i := range 5 {
		assert.Equal(t, deliver(t, r, fmt.Sprintf("forged-%d", i), now, body, []byte("wrong"), ""), http.StatusUnauthorized)
	}
	assert.Equal(t, deliver(t, r, "stale", now.Add(-time.Hour), body, secret, ""), http.StatusUnauthorized)
	now = now.Add(2 * time.Minute)
	assert.Equal(t, deliver(t, r, "forged-late", now, body, []byte("wrong"), ""), http.StatusUnauthorized)
	assert.Equal(t, deliver(t, r, "ok", now, body, secret, ""), http.StatusNoContent)

	logged := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	// bad_signature, stale, then bad_signature again after the interval.
	assert.Equal(t, strings.Count(logged, "Webhook delivery rejected"), 3, logged)
	assert.Equal(t, strings.Count(logged, `result="bad_signature"`), 2, logged)
	assert.Assert(t, strings.Contains(logged, "withheldSinceLastLine=4"), logged)

	var out strings.Builder
	assert.NilError(t, reg.Write(&out))
	text := out.String()
	for _, line := range []string{
		`vidra_webhook_deliveries_total{result="bad_signature"} 6`,
		`vidra_webhook_deliveries_total{result="stale"} 1`,
		`vidra_webhook_deliveries_total{result="accepted"} 1`,
	} {
		assert.Assert(t, strings.Contains(text, line), "%s not in\n%s", line, text)
	}
}
