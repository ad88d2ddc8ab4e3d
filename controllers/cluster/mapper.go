package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// Mapper resolves kinds to resources through one cluster's discovery. It
// re-reads discovery when a kind is missing, so a CRD created after start (or
// only on that cluster) is found, but at most once per minRefresh so a kind
// that truly does not exist cannot hammer discovery.
type Mapper struct {
	mapper     *restmapper.DeferredDiscoveryRESTMapper
	discovery  discovery.CachedDiscoveryInterface
	minRefresh time.Duration
	now        func() time.Time

	mu          sync.Mutex
	lastRefresh time.Time
}

// NewMapper returns a Mapper over the discovery client.
func NewMapper(dc discovery.DiscoveryInterface) *Mapper {
	cached := memory.NewMemCacheClient(dc)
	return &Mapper{
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(cached),
		discovery:  cached,
		minRefresh: time.Second,
		now:        time.Now,
	}
}

// Mapping returns the REST mapping of an apiVersion and kind.
func (m *Mapper) Mapping(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	mapping, err := m.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return mapping, wrapMappingError(gvk, err)
	}
	if !m.Refresh(ctx) {
		return nil, wrapMappingError(gvk, err)
	}
	mapping, err = m.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	return mapping, wrapMappingError(gvk, err)
}

// ListableResources returns the preferred version of every resource the
// cluster can list. Groups whose discovery failed (an aggregated API that
// is down) are left out; they could not be listed anyway.
func (m *Mapper) ListableResources(ctx context.Context) ([]schema.GroupVersionResource, error) {
	lists, err := m.discovery.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	var out []schema.GroupVersionResource
	for _, list := range discovery.FilteredBy(discovery.SupportsAllVerbs{Verbs: []string{"list"}}, lists) {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !strings.Contains(r.Name, "/") {
				out = append(out, gv.WithResource(r.Name))
			}
		}
	}
	return out, nil
}

// Refresh drops the cached discovery, unless that happened very recently.
// It reports whether it did.
func (m *Mapper) Refresh(ctx context.Context) bool {
	m.mu.Lock()
	now := m.now()
	if !m.lastRefresh.IsZero() && now.Sub(m.lastRefresh) < m.minRefresh {
		m.mu.Unlock()
		return false
	}
	m.lastRefresh = now
	m.mu.Unlock()
	m.mapper.ResetWithContext(ctx)
	return true
}

func wrapMappingError(gvk schema.GroupVersionKind, err error) error {
	if err == nil {
		return nil
	}
	if meta.IsNoMatchError(err) {
		return &NoKindError{GVK: gvk, err: err}
	}
	return fmt.Errorf("resolve %s: %w", gvk, err)
}

// NoKindError says the destination cluster does not serve a kind.
type NoKindError struct {
	GVK schema.GroupVersionKind
	err error
}

func (e *NoKindError) Error() string {
	return fmt.Sprintf("the cluster does not serve %s (is its CRD installed?)", gvkString(e.GVK))
}

func (e *NoKindError) Unwrap() error { return e.err }

func gvkString(gvk schema.GroupVersionKind) string {
	if gvk.Group == "" {
		return gvk.Version + " " + gvk.Kind
	}
	return gvk.Group + "/" + gvk.Version + " " + gvk.Kind
}
