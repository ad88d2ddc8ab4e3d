package vidraresource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
)

type chunkMap map[string]*corev1.ConfigMap

func (m chunkMap) Get(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
	if cm, ok := m[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

// chunkedResource stores a manifest of n ConfigMaps of random data in
// chunks.
func chunkedResource(t *testing.T, n int) (*v1alpha1.VidraResource, chunkMap) {
	var b bytes.Buffer
	r := rand.New(rand.NewSource(1))
	data := make([]byte, 600)
	for i := 0; i < n; i++ {
		r.Read(data)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: apps\ndata:\n  k: \"%x\"\n", i, data)
	}
	layout, err := manifeststore.Plan(b.Bytes(), 0)
	assert.NilError(t, err)
	vr := resource("big", "")
	layout.SetOn(&vr.Spec, "vidra-system", vr.Name)
	chunks := chunkMap{}
	for _, cm := range layout.ChunkObjects("vidra-system", vr.Name, metav1.OwnerReference{}) {
		chunks[cm.Name] = cm
	}
	return vr, chunks
}

// A manifest stored in chunks is applied like an inline one.
func TestChunkedManifestIsApplied(t *testing.T) {
	vr, chunks := chunkedResource(t, 2000)
	assert.Assert(t, vr.Spec.ManifestChunks != nil && len(vr.Spec.ManifestChunks.Names) > 1)
	f := newFixture(t, vr)
	f.c.opts.Manifests = chunks
	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, len(f.destinationActions()), 2000)
	status := f.lastStatus()
	assert.Equal(t, status.ObjectCount, int32(2000))
	assert.Equal(t, status.LastAppliedChecksum, vr.Spec.ManifestChunks.SHA256)
}

// A missing chunk: nothing applied, nothing pruned, the condition says
// why, and the pass fails so it is retried.
func TestMissingChunkAppliesNothing(t *testing.T) {
	vr, chunks := chunkedResource(t, 2000)
	vr.Status.ManagedResources = []v1alpha1.ManagedResource{{APIVersion: "v1", Kind: "ConfigMap", Name: "old", Namespace: "apps", Version: "v1", Resource: "configmaps"}}
	delete(chunks, vr.Spec.ManifestChunks.Names[1])
	f := newFixture(t, vr)
	f.c.opts.Manifests = chunks
	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	var unavailable *manifeststore.UnavailableError
	assert.Assert(t, errors.As(err, &unavailable), "got %v", err)
	assert.Equal(t, len(f.destinationActions()), 0, "nothing applied or pruned: %v", f.destinationActions())
	status := f.lastStatus()
	cond := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	assert.Equal(t, cond.Reason, manifeststore.ReasonUnavailable)
	assert.Assert(t, is.Contains(cond.Message, vr.Spec.ManifestChunks.Names[1]))
	assert.Equal(t, len(status.ManagedResources), 1, "the inventory is kept")
}

// configMaps is a manifest of n small ConfigMaps, cm-0 to cm-<n-1>.
func configMaps(n int) string {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: apps\ndata:\n  k: v\n", i)
	}
	return b.String()
}

// A manifest whose inventory would not fit in the VidraResource is refused
// before anything is applied: applied, its objects could not be recorded.
// What was applied before stays, and so does its inventory.
func TestInventoryAboveLimitAppliesNothing(t *testing.T) {
	ctx := context.Background()
	vr := resource("many", configMaps(2))
	f := newFixture(t, vr)
	_, err := f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	vr.Status = f.lastStatus()
	assert.Equal(t, len(vr.Status.ManagedResources), 2)
	f.destinationActions()
	f.vidraActions()
	before := map[string]string{}
	for k, u := range f.store {
		before[k] = u.GetResourceVersion()
	}

	// Room for a few more entries, not for 40.
	f.c.opts.MaxResourceBytes = storedSize(vr, vr.Status.ManagedResources) + 600
	vr.Spec.Manifest = configMaps(40)
	vr.Generation = 2
	_, err = f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err, "a refused manifest waits for a new one, it is not retried")
	assert.DeepEqual(t, f.destinationActions(), []string(nil))
	after := map[string]string{}
	for k, u := range f.store {
		after[k] = u.GetResourceVersion()
	}
	assert.DeepEqual(t, after, before)
	status := f.lastStatus()
	cond := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	assert.Equal(t, cond.Status, metav1.ConditionFalse)
	assert.Equal(t, cond.Reason, ReasonInventoryTooLarge)
	assert.Assert(t, is.Contains(cond.Message, "Recording 40 objects"))
	assert.Assert(t, is.Contains(cond.Message, fmt.Sprintf("above the %d bytes", f.c.opts.MaxResourceBytes)))
	assert.Equal(t, len(status.ManagedResources), 2, "the inventory is kept")
	events := f.events()
	assert.Equal(t, len(events), 1)
	assert.Assert(t, is.Contains(events[0], "Warning InventoryTooLarge"))

	// Under the default limit the same manifest applies.
	f.c.opts.MaxResourceBytes = 0
	vr.Status = status
	_, err = f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, len(f.store), 40)
	assert.Equal(t, len(f.lastStatus().ManagedResources), 40)
}

// The size estimate is the VidraResource as stored, without managed
// fields: it grows by each entry's encoding.
func TestStoredSizeCountsTheInventory(t *testing.T) {
	vr := resource("many", configMaps(1))
	vr.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "vidra", Operation: metav1.ManagedFieldsOperationApply}}
	entry := v1alpha1.ManagedResource{APIVersion: "v1", Kind: "ConfigMap", Name: "cm-0", Namespace: "apps", Version: "v1", Resource: "configmaps"}
	empty := storedSize(vr, nil)
	one := storedSize(vr, []v1alpha1.ManagedResource{entry})
	two := storedSize(vr, []v1alpha1.ManagedResource{entry, entry})
	assert.Assert(t, empty > int64(len(vr.Spec.Manifest)))
	assert.Equal(t, two-one, int64(len(`,{"apiVersion":"v1","kind":"ConfigMap","name":"cm-0","namespace":"apps","version":"v1","resource":"configmaps"}`)))
	assert.Assert(t, vr.ManagedFields != nil, "the VidraResource itself is not changed")
}
