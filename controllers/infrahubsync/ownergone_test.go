package infrahubsync

import (
	"context"
	"sort"
	"testing"

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
