package watch_test

import (
	"testing"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/vidra-operator/vidra/controllers/watch"
)

// A watch Vidra may not list (RBAC, e.g. rbac.manage.scope=none) is
// reported by Failing with the API server's Forbidden, and its owners are
// told once, so they can say so in their status.
func TestFailingReportsForbiddenWatches(t *testing.T) {
	cfg := restConfig(t)
	// A user with no rights at all, impersonated by the test's admin.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "vidra-test-no-rights"}
	dc, err := dynamic.NewForConfig(cfg)
	assert.NilError(t, err)
	rec := &recorder{}
	m := watch.NewManager(dc, watch.Options{OnChange: rec.onChange})
	t.Cleanup(m.Stop)

	m.SetOwnerResources("vr-a", []schema.GroupVersionResource{configMaps})
	var failing map[schema.GroupVersionResource]error
	eventually(t, "the configmaps watch reported as failing", func() bool {
		failing = m.Failing([]schema.GroupVersionResource{configMaps, secrets})
		return len(failing) > 0
	})
	assert.Equal(t, len(failing), 1, "only the watched type: %v", failing)
	assert.Assert(t, apierrors.IsForbidden(failing[configMaps]), "%v", failing[configMaps])

	// The owner was notified, once, though the reflector keeps retrying.
	eventually(t, "the owner notified", func() bool { return len(rec.in("")) > 0 })
	got := rec.in("")
	assert.Equal(t, len(got), 1, "%v", got)
	assert.DeepEqual(t, got[0].Owners, []string{"vr-a"})
	assert.Equal(t, got[0].GVR, configMaps)
}
