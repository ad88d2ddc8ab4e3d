package watch_test

import (
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/vidra-operator/vidra/controllers/watch"
)

// A watch Vidra may not list (RBAC, e.g. rbac.manage.scope=none) is
// reported in its owner's health with the API server's Forbidden, and the
// owner is told once, though the reflector keeps retrying, so it can say so
// in its status.
func TestFailingReportsForbiddenWatches(t *testing.T) {
	cfg := restConfig(t)
	// A user with no rights at all, impersonated by the test's admin.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "vidra-test-no-rights"}
	dc, err := dynamic.NewForConfig(cfg)
	assert.NilError(t, err)
	var mu sync.Mutex
	var told [][]string
	m := watch.NewManager(dc, watch.Options{OnWatchHealthChange: func(owners []string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, append([]string(nil), owners...))
	}})
	t.Cleanup(m.Stop)

	m.SetOwnerResources("vr-a", []schema.GroupVersionResource{configMaps})
	var health watch.WatchHealth
	eventually(t, "the configmaps watch reported as failing", func() bool {
		health = m.OwnerWatchHealth("vr-a")
		return len(health.Failing) > 0
	})
	assert.Equal(t, health.Resources, 1)
	assert.Equal(t, len(health.Failing), 1, "only the watched type: %v", health.Failing)
	assert.Assert(t, apierrors.IsForbidden(health.Failing[configMaps]), "%v", health.Failing[configMaps])

	// The owner was told once: the retries fail the same way.
	eventually(t, "the owner notified", func() bool { mu.Lock(); defer mu.Unlock(); return len(told) > 0 })
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, len(told), 1, "%v", told)
	assert.DeepEqual(t, told[0], []string{"vr-a"})
}
