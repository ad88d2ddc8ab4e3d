package infrahubsync

import (
	"context"
	"sort"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// goneFixture holds VidraResources as the API server has them, next to
// the informer's copies, and answers deletes with their preconditions and
// gets from the server's copies.
type goneFixture struct {
	*decisionFixture
	server  map[string]*v1alpha1.VidraResource
	deletes []string // "name uid rv" of each delete asked for
}

var vrResource = schema.GroupResource{Group: v1alpha1.SchemeGroupVersion.Group, Resource: "vidraresources"}

func newGoneFixture(t *testing.T) *goneFixture {
	f := &goneFixture{decisionFixture: newDecisionFixture(t, &countingSource{}), server: map[string]*v1alpha1.VidraResource{}}
	f.client.PrependReactor("delete", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		d := action.(k8stesting.DeleteActionImpl)
		pre := d.DeleteOptions.Preconditions
		assert.Assert(t, pre != nil && pre.UID != nil && pre.ResourceVersion != nil, "delete of %s without preconditions", d.Name)
		f.deletes = append(f.deletes, d.Name+" "+string(*pre.UID)+" "+*pre.ResourceVersion)
		live, ok := f.server[d.Name]
		if !ok {
			return true, nil, apierrors.NewNotFound(vrResource, d.Name)
		}
		if live.UID != *pre.UID || live.ResourceVersion != *pre.ResourceVersion {
			return true, nil, apierrors.NewConflict(vrResource, d.Name, nil)
		}
		delete(f.server, d.Name)
		return true, nil, nil
	})
	f.client.PrependReactor("get", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		name := action.(k8stesting.GetAction).GetName()
		if live, ok := f.server[name]; ok {
			return true, live.DeepCopy(), nil
		}
		return true, nil, apierrors.NewNotFound(vrResource, name)
	})
	return f
}

// owned returns a VidraResource of sync "web" controlled by the given kind
// and UID, at resourceVersion 1.
func owned(name, kind string, uid types.UID) *v1alpha1.VidraResource {
	isController := true
	return &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name + "-uid"), ResourceVersion: "1",
		Labels: map[string]string{v1alpha1.LabelSync: "web"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: kind, Name: "web", UID: uid,
			Controller: &isController}}}}
}

// add puts vr in the informer cache and, unless server is nil, the server
// copy.
func (f *goneFixture) add(cached, server *v1alpha1.VidraResource) {
	f.t.Helper()
	assert.NilError(f.t, f.c.vrIndex.Add(cached))
	if server != nil {
		f.server[server.Name] = server
	}
}

// syncLive makes the live InfrahubSync "web" have the given UID, or not
// exist when it is empty.
func (f *goneFixture) syncLive(uid types.UID) {
	f.t.Helper()
	gvr := v1alpha1.SchemeGroupVersion.WithResource("infrahubsyncs")
	_ = f.client.Tracker().Delete(gvr, "", "web")
	if uid != "" {
		s := f.obj.DeepCopy()
		s.UID = uid
		assert.NilError(f.t, f.client.Tracker().Add(s))
	}
}

func (f *goneFixture) handle() {
	f.t.Helper()
	_, err := f.c.syncHandler(context.Background(), "web")
	assert.NilError(f.t, err)
	sort.Strings(f.deletes)
}

func (f *goneFixture) left() []string {
	var out []string
	for name := range f.server {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// A deleted sync's VidraResources are deleted by the operator, each on the
// UID and resourceVersion it cached; a VidraResource already on its way
// out, one of a GitSync of the same name and one of another sync are left
// alone.
func TestDeletedSyncsResourcesAreDeleted(t *testing.T) {
	f := newGoneFixture(t)
	a1, a2 := owned("web-a1", "InfrahubSync", "web-uid"), owned("web-a2", "InfrahubSync", "web-uid")
	now := metav1.Now()
	terminating := owned("web-a3", "InfrahubSync", "web-uid")
	terminating.DeletionTimestamp = &now
	git := owned("web-git", "GitSync", "git-uid")
	other := owned("other-a1", "InfrahubSync", "other-uid")
	other.Labels[v1alpha1.LabelSync] = "other"
	other.OwnerReferences[0].Name = "other"
	for _, vr := range []*v1alpha1.VidraResource{a1, a2, terminating, git, other} {
		f.add(vr, vr.DeepCopy())
	}
	f.syncLive("")

	f.handle()
	assert.DeepEqual(t, f.deletes, []string{"web-a1 web-a1-uid 1", "web-a2 web-a2-uid 1"})
	assert.DeepEqual(t, f.left(), []string{"other-a1", "web-a3", "web-git"})
}

// A sync missing from the cache may only have left this instance's shard:
// while the API server still has it, nothing is deleted.
func TestSyncLeftTheShardKeepsItsResources(t *testing.T) {
	f := newGoneFixture(t)
	a1 := owned("web-a1", "InfrahubSync", "web-uid")
	f.add(a1, a1.DeepCopy())
	f.syncLive("web-uid")

	f.handle()
	assert.Equal(t, len(f.deletes), 0)
	assert.DeepEqual(t, f.left(), []string{"web-a1"})
}

// A sync deleted and created again under the same name: what the old one
// controlled goes, what the new one controls stays.
func TestRecreatedSyncKeepsOnlyItsOwnResources(t *testing.T) {
	f := newGoneFixture(t)
	old, current := owned("web-a1", "InfrahubSync", "web-uid"), owned("web-a2", "InfrahubSync", "new-uid")
	f.add(old, old.DeepCopy())
	f.add(current, current.DeepCopy())
	f.syncLive("new-uid")

	f.handle()
	assert.DeepEqual(t, f.deletes, []string{"web-a1 web-a1-uid 1"})
	assert.DeepEqual(t, f.left(), []string{"web-a2"})
}

// `kubectl delete --cascade=orphan`: the garbage collector took the owner
// reference off before the sync went, and the cache has not seen it yet.
// The delete on the cached resourceVersion is refused, the fresh copy has
// no controller, and the VidraResource stays. One the collector has not
// reached yet but changed for another reason is deleted on its new
// version.
func TestOrphanedResourceIsNotDeletedFromAStaleCache(t *testing.T) {
	f := newGoneFixture(t)
	orphaned := owned("web-a1", "InfrahubSync", "web-uid")
	fresh := orphaned.DeepCopy()
	fresh.OwnerReferences, fresh.ResourceVersion = nil, "2"
	f.add(orphaned, fresh)
	relabelled := owned("web-a2", "InfrahubSync", "web-uid")
	newer := relabelled.DeepCopy()
	newer.ResourceVersion = "5"
	f.add(relabelled, newer)
	f.syncLive("")

	f.handle()
	assert.DeepEqual(t, f.deletes, []string{"web-a1 web-a1-uid 1", "web-a2 web-a2-uid 1", "web-a2 web-a2-uid 5"})
	assert.DeepEqual(t, f.left(), []string{"web-a1"})
}

// metadataPatches records the merge patches of the sync's metadata (not
// its status) and answers them with the sync unchanged.
func (f *goneFixture) metadataPatches() *[]string {
	var patches []string
	f.client.PrependReactor("patch", "infrahubsyncs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		p := action.(k8stesting.PatchAction)
		if p.GetSubresource() != "" {
			return false, nil, nil
		}
		patches = append(patches, string(p.GetPatchType())+" "+string(p.GetPatch()))
		return true, f.obj.DeepCopy(), nil
	})
	return &patches
}

// deleting returns the sync "web" on its way out, with the given
// finalizers, at resourceVersion 7.
func (f *goneFixture) deleting(finalizers ...string) *v1alpha1.InfrahubSync {
	now := metav1.Now()
	s := f.obj.DeepCopy()
	s.DeletionTimestamp, s.Finalizers, s.ResourceVersion = &now, finalizers, "7"
	return s
}

// A sync on its way out deletes its own VidraResources, each on its cached
// UID and resourceVersion, and keeps its finalizer while any of them is
// still there, so the garbage collector never has them to delete. Once
// none is left the finalizer goes, on the resourceVersion read, and other
// parties' finalizers stay.
func TestDeletingSyncDeletesItsResourcesBeforeLettingGo(t *testing.T) {
	f := newGoneFixture(t)
	patches := f.metadataPatches()
	a1, a2 := owned("web-a1", "InfrahubSync", "web-uid"), owned("web-a2", "InfrahubSync", "web-uid")
	now := metav1.Now()
	terminating := owned("web-a3", "InfrahubSync", "web-uid")
	terminating.DeletionTimestamp = &now
	git := owned("web-git", "GitSync", "git-uid")
	previous := owned("web-old", "InfrahubSync", "old-uid") // of an earlier sync of that name
	for _, vr := range []*v1alpha1.VidraResource{a1, a2, terminating, git, previous} {
		f.add(vr, vr.DeepCopy())
	}
	sync := f.deleting("example.com/keep", v1alpha1.SyncFinalizer)

	requeue, err := f.c.sync(context.Background(), sync)
	assert.NilError(t, err)
	sort.Strings(f.deletes)
	assert.DeepEqual(t, f.deletes, []string{"web-a1 web-a1-uid 1", "web-a2 web-a2-uid 1"})
	assert.DeepEqual(t, f.left(), []string{"web-a3", "web-git", "web-old"})
	assert.Equal(t, len(*patches), 0, "the finalizer stays while VidraResources are going")
	assert.Equal(t, requeue, leavingRecheck)

	// The informer saw them go.
	for _, vr := range []*v1alpha1.VidraResource{a1, a2, terminating} {
		assert.NilError(t, f.c.vrIndex.Delete(vr))
	}
	f.deletes = nil
	requeue, err = f.c.sync(context.Background(), sync)
	assert.NilError(t, err)
	assert.Equal(t, len(f.deletes), 0)
	assert.DeepEqual(t, *patches, []string{`application/merge-patch+json {"metadata":{"finalizers":["example.com/keep"],"resourceVersion":"7"}}`})
	assert.Equal(t, requeue, time.Duration(0))
}

// `kubectl delete --cascade=orphan`: while the sync carries the "orphan"
// finalizer the garbage collector is taking the owner references off, and
// nothing is deleted. Once it is done (the "orphan" finalizer gone, the
// cache not yet showing the change), the delete on the cached
// resourceVersion is refused, the fresh copy is no longer the sync's, the
// VidraResource stays and the finalizer goes.
func TestOrphaningSyncKeepsItsResources(t *testing.T) {
	f := newGoneFixture(t)
	patches := f.metadataPatches()
	orphaned := owned("web-a1", "InfrahubSync", "web-uid")
	fresh := orphaned.DeepCopy()
	fresh.OwnerReferences, fresh.ResourceVersion = nil, "2"
	f.add(orphaned, fresh)

	_, err := f.c.sync(context.Background(), f.deleting(metav1.FinalizerOrphanDependents, v1alpha1.SyncFinalizer))
	assert.NilError(t, err)
	assert.Equal(t, len(f.deletes), 0)
	assert.Equal(t, len(*patches), 0)

	_, err = f.c.sync(context.Background(), f.deleting(v1alpha1.SyncFinalizer))
	assert.NilError(t, err)
	assert.DeepEqual(t, f.deletes, []string{"web-a1 web-a1-uid 1"})
	assert.DeepEqual(t, f.left(), []string{"web-a1"})
	assert.DeepEqual(t, *patches, []string{`application/merge-patch+json {"metadata":{"finalizers":[],"resourceVersion":"7"}}`})
}

// A sync gets the finalizer once, on the resourceVersion read, keeping
// the finalizers it had; a deleting sync without it (deleted before this
// version of the operator) is left to the garbage collector.
func TestSyncGetsTheFinalizerOnce(t *testing.T) {
	f := newGoneFixture(t)
	patches := f.metadataPatches()
	sync := f.obj.DeepCopy()
	sync.Finalizers, sync.ResourceVersion = []string{"example.com/keep"}, "3"
	sync.Spec.Suspend = true // a pass that reads nothing from Infrahub

	_, err := f.c.sync(context.Background(), sync)
	assert.NilError(t, err)
	assert.DeepEqual(t, *patches, []string{`application/merge-patch+json {"metadata":{"finalizers":["example.com/keep","infrahub.operators.com/vidraresources"],"resourceVersion":"3"}}`})

	*patches = nil
	sync.Finalizers = append(sync.Finalizers, v1alpha1.SyncFinalizer)
	_, err = f.c.sync(context.Background(), sync)
	assert.NilError(t, err)
	assert.Equal(t, len(*patches), 0)

	a1 := owned("web-a1", "InfrahubSync", "web-uid")
	f.add(a1, a1.DeepCopy())
	_, err = f.c.sync(context.Background(), f.deleting("example.com/keep"))
	assert.NilError(t, err)
	assert.Equal(t, len(*patches), 0)
	assert.Equal(t, len(f.deletes), 0)
}

// The sync comes back when its deletion begins and when a finalizer
// leaves it afterwards, not when the operator adds its own.
func TestDeletionMoved(t *testing.T) {
	now := metav1.Now()
	live := &v1alpha1.InfrahubSync{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	finalized := live.DeepCopy()
	finalized.Finalizers = []string{v1alpha1.SyncFinalizer}
	orphaning := finalized.DeepCopy()
	orphaning.DeletionTimestamp = &now
	orphaning.Finalizers = []string{metav1.FinalizerOrphanDependents, v1alpha1.SyncFinalizer}
	orphaned := orphaning.DeepCopy()
	orphaned.Finalizers = []string{v1alpha1.SyncFinalizer}

	assert.Assert(t, !DeletionMoved(live, finalized))
	assert.Assert(t, DeletionMoved(finalized, orphaning))
	assert.Assert(t, DeletionMoved(orphaning, orphaned))
	assert.Assert(t, !DeletionMoved(orphaned, orphaned.DeepCopy()))
}
