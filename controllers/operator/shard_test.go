package operator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/rest"

	"github.com/vidra-operator/vidra/controllers/shard"
)

// A sharded operator lists and watches InfrahubSyncs and VidraResources
// with its selector only (so its controllers, its drift watches and its
// webhook receiver, which read those caches, see only its shard), and its
// credentials Secrets without it.
func TestShardFiltersTheVidraInformers(t *testing.T) {
	var (
		mu        sync.Mutex
		selectors = map[string][]string{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		resource := parts[len(parts)-1]
		mu.Lock()
		selectors[resource] = append(selectors[resource], r.URL.Query().Get("labelSelector"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			// An empty watch that ends at once: the reflector lists again.
			return
		}
		kind := map[string]string{"infrahubsyncs": "InfrahubSyncList", "vidraresources": "VidraResourceList", "secrets": "SecretList"}[resource]
		apiVersion := "v1"
		if resource != "secrets" {
			apiVersion = "infrahub.operators.com/v1alpha1"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": kind, "apiVersion": apiVersion, "metadata": map[string]any{"resourceVersion": "1"}, "items": []any{}})
	}))
	defer srv.Close()

	sel, err := shard.Parse(shard.Label + " in (shard1)")
	assert.NilError(t, err)
	op, err := New(Config{RESTConfig: &rest.Config{Host: srv.URL}, Namespace: "vidra-system", Shard: sel})
	assert.NilError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	for !op.HasSynced() {
		assert.Assert(t, ctx.Err() == nil, "caches never synced")
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	for _, resource := range []string{"infrahubsyncs", "vidraresources"} {
		assert.Assert(t, len(selectors[resource]) > 0, "%s never listed", resource)
		for _, s := range selectors[resource] {
			assert.Equal(t, s, shard.Label+" in (shard1)", resource)
		}
	}
	assert.Assert(t, len(selectors["secrets"]) > 0)
	for _, s := range selectors["secrets"] {
		assert.Equal(t, s, "", "Secrets are not sharded")
	}
}
