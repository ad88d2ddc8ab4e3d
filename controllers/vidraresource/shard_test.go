package vidraresource

import (
	"context"
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// A VidraResource relabelled to another shard leaves this instance's
// filtered informer as a Delete event although it still exists, with its
// finalizer and its objects. This instance must only forget it: stop its
// drift watches, and neither prune, nor remove the finalizer, nor write a
// status, nor emit an event.
func TestLeavingTheShardOnlyForgets(t *testing.T) {
	vr := resource("a", manifestCM)
	vr.Labels = map[string]string{v1alpha1.LabelShard: "shard1"}
	f := newFixture(t, vr)
	ctx := context.Background()

	// Handled here first: the object is created and watched.
	_, err := f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Assert(t, f.store["apps/cm"] != nil)
	watches := f.c.clusters.Clusters()[0].Watches
	assert.Equal(t, watches.Owners(), 1)
	f.vidraActions()
	f.destinationActions()
	f.events()

	// Relabelled by the new shard's instance: gone from this cache, as the
	// informer's Delete event of a label change leaves it.
	moved := vr.DeepCopy()
	moved.Labels[v1alpha1.LabelShard] = "shard2"
	_, err = f.client.InfrahubV1alpha1().VidraResources().Update(ctx, moved, metav1.UpdateOptions{})
	assert.NilError(t, err)
	f.client.ClearActions()
	f.c.lister = listers.NewVidraResourceLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))
	f.c.enqueue(cache.DeletedFinalStateUnknown{Key: "a", Obj: vr})
	assert.Equal(t, f.c.queue.Len(), 1)

	assert.Assert(t, f.c.processNextWorkItem(ctx))
	assert.Equal(t, f.c.queue.Len(), 0, "requeued")
	assert.DeepEqual(t, f.destinationActions(), []string(nil))
	assert.DeepEqual(t, f.vidraActions(), []string(nil))
	assert.DeepEqual(t, f.events(), []string(nil))
	assert.Assert(t, f.store["apps/cm"] != nil, "the object was pruned")
	assert.Equal(t, watches.Owners(), 0, "the drift watch still reports to this instance")
	left, err := f.client.InfrahubV1alpha1().VidraResources().Get(ctx, "a", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, left.Finalizers, []string{v1alpha1.VidraResourceFinalizer})

	// A drift event still naming it (another owner of a shared object) is
	// ignored too.
	f.c.opts.ReconcileOnEvents = true
	f.c.OnManagedObjectChange([]string{"a"})
	assert.Equal(t, f.c.queue.Len(), 0)
}
