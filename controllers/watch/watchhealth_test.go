package watch_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/vidra-operator/vidra/controllers/watch"
)

// A failing list makes the watch unhealthy for its owners, who are told;
// when the list works again they are told again and the failure clears.
func TestWatchHealth(t *testing.T) {
	widgets := schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1alpha1", Resource: "widgets"}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{widgets: "WidgetList"})
	var failing atomic.Bool
	failing.Store(true)
	dc.PrependReactor("list", "widgets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	var mu sync.Mutex
	var told [][]string
	m := newManager(t, dc, watch.Options{OnWatchHealthChange: func(owners []string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, owners)
	}})
	m.SetOwnerResources("b", []schema.GroupVersionResource{widgets})
	m.SetOwnerResources("a", []schema.GroupVersionResource{widgets})
	calls := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(told)
	}

	eventually(t, "the owners told of the failure", func() bool { return calls() == 1 })
	h := m.OwnerWatchHealth("a")
	if h.Resources != 1 || h.Failing[widgets] == nil {
		t.Fatalf("health while failing: %+v", h)
	}
	if st := m.Stats(); st.Resources[0].Healthy {
		t.Fatalf("stats report a failing watch as healthy: %+v", st)
	}

	failing.Store(false)
	eventually(t, "the owners told of the recovery", func() bool { return calls() == 2 })
	eventually(t, "synced", func() bool { return m.HasSynced(widgets) })
	if h := m.OwnerWatchHealth("a"); h.Resources != 1 || len(h.Failing) != 0 {
		t.Fatalf("health after recovery: %+v", h)
	}
	mu.Lock()
	for _, owners := range told {
		if len(owners) != 2 || owners[0] != "a" || owners[1] != "b" {
			t.Errorf("told %v, want [a b]", owners)
		}
	}
	mu.Unlock()
	if h := m.OwnerWatchHealth("nobody"); h.Resources != 0 {
		t.Errorf("an unknown owner has watches: %+v", h)
	}
}
