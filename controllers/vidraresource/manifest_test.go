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
