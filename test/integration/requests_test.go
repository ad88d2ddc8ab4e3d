package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
)

// requestLog records the operator's requests for single objects under a
// collection path, as "METHOD name STATUS".
type requestLog struct {
	collection string
	mu         sync.Mutex
	lines      []string
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if name, ok := strings.CutPrefix(req.URL.Path, l.collection+"/"); ok {
			status := "error"
			if err == nil {
				status = strconv.Itoa(resp.StatusCode)
			}
			l.mu.Lock()
			l.lines = append(l.lines, req.Method+" "+name+" "+status)
			l.mu.Unlock()
		}
		return resp, err
	})
}

// take returns the requests recorded since the last call.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// reconcileCounter counts the VidraResource controller's passes.
type reconcileCounter struct {
	metrics.Nop
	resources atomic.Int64
}

func (c *reconcileCounter) ObserveReconcile(controller string, _ time.Duration, _ error) {
	if controller == "vidraresource" {
		c.resources.Add(1)
	}
}

var requestRuns atomic.Int32

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// A new object costs one request: it is created with a precondition that
// fails when it already exists, instead of being read first. An object that
// does exist and is not Vidra's fails that precondition and is then read and
// left alone. A pass over unchanged objects costs no request at all.
func TestNewObjectsCostOneRequest(t *testing.T) {
	// A namespace of its own per run: with -count, the last one may still
	// be terminating.
	ns := fmt.Sprintf("requests-%d", requestRuns.Add(1))
	log := &requestLog{collection: "/api/v1/namespaces/" + ns + "/configmaps"}
	passes := &reconcileCounter{}
	e := newEnv(t, func(c *operator.Config) {
		c.RESTConfig.Wrap(log.wrap)
		c.Metrics = passes
	})
	_, err := e.kube.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = e.kube.CoreV1().Namespaces().Delete(e.ctx, ns, metav1.DeleteOptions{})
	})
	_, err = e.kube.CoreV1().ConfigMaps(ns).Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign"}, Data: map[string]string{"owner": "someone-else"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)

	e.newResource("requests", configMap(ns, "first", map[string]string{"a": "1"})+"---\n"+
		configMap(ns, "second", map[string]string{"b": "2"})+"---\n"+
		configMap(ns, "foreign", map[string]string{"owner": "vidra"}))
	e.waitResourceReason("requests", vidraresource.ReasonNotOwned)

	got := map[string][]string{}
	for _, line := range log.take() {
		name := strings.Fields(line)[1]
		got[name] = append(got[name], line)
	}
	// Adding the finalizer can cause a second pass right away, which reads
	// what the first wrote (from the API server while the drift watch has
	// not seen it yet), or, when the first pass's status is not in its
	// cache yet, tries a create again that the server refuses: later
	// requests may be reads and refused creates, never writes.
	for name, first := range map[string][]string{
		"first":   {"PATCH first 201"},
		"second":  {"PATCH second 201"},
		"foreign": {"PATCH foreign 409", "GET foreign 200"},
	} {
		assert.Assert(t, len(got[name]) >= len(first), "%s: %v", name, got[name])
		assert.DeepEqual(t, got[name][:len(first)], first)
		for _, line := range got[name][len(first):] {
			assert.Assert(t, line == "GET "+name+" 200" || line == "PATCH "+name+" 409", "%s: %v", name, got[name])
		}
	}
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "foreign", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["owner"], "someone-else")
	assert.Equal(t, cm.Labels[v1alpha1.LabelManagedBy], "")

	// The next pass reads Vidra's objects from the drift watch and writes
	// nothing; only the foreign one is read again, to see if it is gone.
	// The health the drift watch sees is recorded first (a write of its
	// own, when the watch saw the objects after the first pass).
	var vr *v1alpha1.VidraResource
	e.eventually("health of Vidra's objects recorded", func() (bool, error) {
		vr, err = e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, "requests", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		current := 0
		for _, entry := range vr.Status.ManagedResources {
			if entry.Health == v1alpha1.HealthCurrent {
				current++
			}
		}
		return current == 2, nil
	})
	log.take()
	before := passes.resources.Load()
	e.op.Resources.Enqueue("requests")
	e.eventually("second pass done", func() (bool, error) {
		return passes.resources.Load() > before, nil
	})
	for _, line := range log.take() {
		assert.Equal(t, line, "GET foreign 200", "unexpected request on the second pass")
	}
	after, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, "requests", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, after.ResourceVersion, vr.ResourceVersion, "an unchanged pass wrote the VidraResource: %s", cmp.Diff(vr.Status, after.Status))
}
