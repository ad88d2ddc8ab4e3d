package infrahubsync

import (
	"context"
	"encoding/json"
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/infrahub"
)

func inShard(name string) func(*v1alpha1.InfrahubSync) {
	return func(s *v1alpha1.InfrahubSync) {
		if name != "" {
			s.Labels = map[string]string{shard.Label: name}
		}
	}
}

func sharded(t *testing.T, f *decisionFixture, selector string) {
	t.Helper()
	sel, err := shard.Parse(selector)
	assert.NilError(t, err)
	f.c.opts.Shard = sel
}

// vrWrites lists the VidraResource writes as "verb name patchtype".
func vrWrites(f *decisionFixture) []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetResource().Resource != "vidraresources" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		line := a.GetVerb()
		if p, ok := a.(k8stesting.PatchAction); ok {
			line += " " + p.GetName() + " " + string(p.GetPatchType())
		}
		out = append(out, line)
	}
	return out
}

var shardArtifact = infrahub.Artifact{ID: "a1", Name: "Webserver_Manifest", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s1", TargetLabel: "one"}

// A sync's VidraResources carry its shard label, so the instance of its
// shard handles them.
func TestVidraResourcesCarryTheSyncsShard(t *testing.T) {
	f := newDecisionFixture(t, &countingSource{artifacts: []infrahub.Artifact{shardArtifact}}, inShard("shard1"))
	sharded(t, f, shard.Label+" in (shard1)")
	f.pass()
	vr := f.applied[ResourceName("web", "a1")]
	assert.Assert(t, vr != nil)
	assert.Equal(t, vr.Labels[shard.Label], "shard1")
	assert.Equal(t, vr.Labels[v1alpha1.LabelSync], "web")

	unsharded := newDecisionFixture(t, &countingSource{artifacts: []infrahub.Artifact{shardArtifact}})
	unsharded.pass()
	_, labelled := unsharded.applied[ResourceName("web", "a1")].Labels[shard.Label]
	assert.Assert(t, !labelled)
}

// A sync moved to this shard: its VidraResource, still labelled for the
// previous shard, is invisible to this instance's cache. The first pass
// finds it with a live list and relabels it, with the uid as precondition,
// before anything else: no download, no delete, no apply. The next pass
// does not look again.
func TestSyncMovedHereTakesOverItsVidraResources(t *testing.T) {
	source := &countingSource{artifacts: []infrahub.Artifact{shardArtifact}}
	f := newDecisionFixture(t, source, inShard("shard2"))
	sharded(t, f, shard.Label+" in (shard2)")
	isController := true
	owner := []metav1.OwnerReference{{Kind: "InfrahubSync", Name: "web", UID: f.obj.UID, Controller: &isController}}
	left := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid",
		Labels: map[string]string{v1alpha1.LabelSync: "web", v1alpha1.LabelArtifact: "a1", shard.Label: "shard1"}, OwnerReferences: owner,
		Finalizers: []string{v1alpha1.VidraResourceFinalizer}}, Spec: desiredSpec(f.obj, shardArtifact, "main")}
	left.Spec.Manifest = string(fixedContent)
	// Another sync's VidraResource with the same sync label (a sync of
	// the same name deleted and recreated) is not touched.
	stranger := left.DeepCopy()
	stranger.Name, stranger.UID = "stranger", "stranger-uid"
	stranger.OwnerReferences = []metav1.OwnerReference{{Kind: "InfrahubSync", Name: "web", UID: "old-uid", Controller: &isController}}
	assert.NilError(t, f.client.Tracker().Add(left))
	assert.NilError(t, f.client.Tracker().Add(stranger))
	// The status written by the previous instance names it.
	f.obj.Status.Artifacts = []v1alpha1.ArtifactStatus{{ID: "a1", VidraResource: left.Name}}

	requeue, err := f.c.sync(context.Background(), f.obj.DeepCopy())
	assert.NilError(t, err)
	assert.Equal(t, requeue, resourceSettle)
	assert.DeepEqual(t, vrWrites(f), []string{"patch " + left.Name + " " + string(types.MergePatchType)})
	var patch map[string]any
	for _, a := range f.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			assert.NilError(t, json.Unmarshal(p.GetPatch(), &patch))
		}
	}
	assert.DeepEqual(t, patch, map[string]any{"metadata": map[string]any{
		"uid": "vr-uid", "labels": map[string]any{shard.Label: "shard2"}}})
	assert.Equal(t, source.lists, 0, "Infrahub was read before the hand-over")
	assert.Equal(t, source.downloads, 0)

	// Once relabelled the cache shows it; the pass goes on as usual and
	// writes nothing for unchanged content.
	moved := left.DeepCopy()
	moved.Labels[shard.Label] = "shard2"
	moved.Generation = 1
	f.seed(moved)
	f.client.ClearActions()
	f.applied = map[string]*v1alpha1.VidraResource{}
	f.pass()
	assert.DeepEqual(t, vrWrites(f), []string(nil))
	assert.Equal(t, source.lists, 1)
	assert.Equal(t, source.downloads, 0)
}

// A sync moved from a shard to the main instance (label removed): the
// label goes from its VidraResources too; a merge patch with null removes
// it whoever set it.
func TestSyncMovedToTheMainInstanceUnlabelsItsVidraResources(t *testing.T) {
	source := &countingSource{artifacts: []infrahub.Artifact{shardArtifact}}
	f := newDecisionFixture(t, source)
	sharded(t, f, "!"+shard.Label)
	vr := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid", Generation: 1,
		Labels: map[string]string{v1alpha1.LabelSync: "web", v1alpha1.LabelArtifact: "a1", shard.Label: "shard1"}},
		Spec: desiredSpec(f.obj, shardArtifact, "main")}
	vr.Spec.Manifest = string(fixedContent)
	// Already in the cache (the adoption pass ran): the pass itself sees
	// the label differ while nothing else does.
	f.seed(vr)
	f.c.adopted["web"] = f.obj.UID
	f.pass()
	assert.DeepEqual(t, vrWrites(f), []string{"patch " + vr.Name + " " + string(types.MergePatchType)})
	for _, a := range f.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && p.GetPatchType() == types.MergePatchType {
			assert.Equal(t, string(p.GetPatch()), `{"metadata":{"labels":{"`+shard.Label+`":null},"uid":"vr-uid"}}`)
		}
	}
	assert.Equal(t, source.downloads, 0)
}

// A sync moved to another shard leaves this instance's informer as a
// Delete event while it still exists: the instance forgets it and writes
// nothing (no status, no VidraResource delete, no Infrahub request).
func TestSyncLeavingTheShardOnlyForgets(t *testing.T) {
	source := &countingSource{artifacts: []infrahub.Artifact{shardArtifact}}
	f := newDecisionFixture(t, source, inShard("shard1"))
	sharded(t, f, shard.Label+" in (shard1)")
	f.seed(&v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid",
		Labels: map[string]string{shard.Label: "shard1"}}})
	f.c.adopted["web"] = f.obj.UID
	f.client.ClearActions()

	// Not in this instance's (empty) sync cache any more.
	requeue, err := f.c.syncHandler(context.Background(), "web")
	assert.NilError(t, err)
	assert.Equal(t, requeue, 0*resourceSettle)
	assert.Equal(t, len(f.client.Actions()), 0, "%v", f.client.Actions())
	assert.Equal(t, source.lists, 0)
	_, still := f.c.adopted["web"]
	assert.Assert(t, !still, "coming back must look for its VidraResources again")
}

// A sharded instance that restarts finds every VidraResource its syncs'
// status names in its cache: it does not list them again.
func TestRestartedShardDoesNotLookForItsVidraResources(t *testing.T) {
	source := &countingSource{artifacts: []infrahub.Artifact{shardArtifact}}
	f := newDecisionFixture(t, source, inShard("shard1"))
	sharded(t, f, shard.Label+" in (shard1)")
	vr := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid", Generation: 1,
		Labels: map[string]string{v1alpha1.LabelSync: "web", v1alpha1.LabelArtifact: "a1", shard.Label: "shard1"}},
		Spec: desiredSpec(f.obj, shardArtifact, "main")}
	vr.Spec.Manifest = string(fixedContent)
	f.seed(vr)
	f.status.Artifacts = []v1alpha1.ArtifactStatus{{ID: "a1", VidraResource: vr.Name}}
	f.pass()
	for _, a := range f.client.Actions() {
		assert.Assert(t, !(a.GetResource().Resource == "vidraresources" && a.GetVerb() == "list"), "listed VidraResources")
	}
	assert.DeepEqual(t, vrWrites(f), []string(nil))
	assert.Equal(t, source.lists, 1)
}
