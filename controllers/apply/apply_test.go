package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

var (
	ownerA = ownership.Owner{Name: "a", UID: "uid-a"}
	ownerB = ownership.Owner{Name: "b", UID: "uid-b"}
	ownerC = ownership.Owner{Name: "c", UID: "uid-c"}
)

func (f *fixture) applyOne(owner ownership.Owner, obj *unstructured.Unstructured, recorded bool) Change {
	gvr := gvrConfigMap
	if obj.GetKind() == "Namespace" {
		gvr = gvrNamespace
	}
	return f.engine().ApplyOne(context.Background(), f.target(), owner, false, Object{Object: obj, Resource: gvr, Recorded: recorded})
}

func (f *fixture) release(owner ownership.Owner, gvr schema.GroupVersionResource, name string, remove bool) Change {
	return f.engine().Release(context.Background(), f.target(), owner, Ref{Resource: gvr, Name: name, Subject: name}, remove)
}

// shared seeds a Namespace declared by owners, each with its tier, whose
// content is tier content; the cache shows the same.
func (f *fixture) shared(content string, claims map[ownership.Owner]string) *unstructured.Unstructured {
	rec := ownership.Record{}
	for o, tier := range claims {
		f.owners[o.Name] = o.UID
		rec[o.Name] = ownership.Claim{UID: o.UID, Hash: hashOf(namespaceWith("shared", tier))}
	}
	live := f.seed(gvrNamespace, applied(namespaceWith("shared", content), rec))
	f.cacheShows(gvrNamespace, live)
	return live
}

func TestNewObjectIsCreatedWithoutARead(t *testing.T) {
	f := newFixture(t)
	ch := f.applyOne(ownerA, configMapWith("default", "cm", "one"), false)
	assert.Equal(t, ch.Action, Created)
	assert.NilError(t, ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"apply configmaps/cm rv=1 owners=a:one content=one"})
	assert.DeepEqual(t, f.ownWrites, []string{`configmaps cm="101"`})
}

// A new object that exists after all (not in the inventory, not in the
// cache) is decided on a fresh read: here it is not Vidra's.
func TestCreateConflictDecidesOnAFreshRead(t *testing.T) {
	f := newFixture(t)
	f.seed(gvrConfigMap, configMapWith("default", "cm", "theirs"))
	ch := f.applyOne(ownerA, configMapWith("default", "cm", "mine"), false)
	assert.Equal(t, ch.Action, NotOwned)
	assert.Assert(t, is.ErrorContains(ch.Err, "not managed by Vidra"))
	assert.DeepEqual(t, f.actions(), []string{
		"apply configmaps/cm rv=1 owners=a:mine content=mine",
		"get configmaps/cm",
	})
}

// An API server that refuses a resourceVersion on create: read again and
// apply without it.
func TestCreatePreconditionRejectedFallsBackToAPlainApply(t *testing.T) {
	f := newFixture(t)
	f.rejectCreateVersion = true
	ch := f.applyOne(ownerA, configMapWith("default", "cm", "one"), false)
	assert.Equal(t, ch.Action, Created)
	assert.NilError(t, ch.Err)
	assert.DeepEqual(t, f.actions(), []string{
		"apply configmaps/cm rv=1 owners=a:one content=one",
		"get configmaps/cm",
		"apply configmaps/cm rv= owners=a:one content=one",
	})
}

// The fallback keeps the ownership checks: an object that turns out to
// exist and not be Vidra's is left alone.
func TestCreatePreconditionRejectedKeepsOwnershipChecks(t *testing.T) {
	f := newFixture(t)
	f.rejectCreateVersion = true
	f.seed(gvrConfigMap, configMapWith("default", "cm", "theirs"))
	ch := f.applyOne(ownerA, configMapWith("default", "cm", "mine"), false)
	assert.Equal(t, ch.Action, NotOwned, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{
		"apply configmaps/cm rv=1 owners=a:mine content=mine",
		"get configmaps/cm",
	})
	got, _, _ := unstructured.NestedString(f.live(gvrConfigMap, "default", "cm").Object, "data", "v")
	assert.Equal(t, got, "theirs")
}

// Nothing to write: no request at all. And when the server answers an
// apply with the version it had (a field admission sets, say), the object
// is Unchanged too.
func TestNoOpApplyIsUnchanged(t *testing.T) {
	f := newFixture(t)
	f.owners["a"] = "uid-a"
	rec := ownership.Record{"a": {UID: "uid-a", Hash: hashOf(configMapWith("default", "cm", "one"))}}
	live := f.seed(gvrConfigMap, applied(configMapWith("default", "cm", "one"), rec))
	f.cacheShows(gvrConfigMap, live)

	ch := f.applyOne(ownerA, configMapWith("default", "cm", "one"), true)
	assert.Equal(t, ch.Action, Unchanged)
	assert.DeepEqual(t, f.actions(), []string(nil))

	// The cache shows a drifted value the server no longer has.
	drifted := live.DeepCopy()
	_ = unstructured.SetNestedField(drifted.Object, "drift", "data", "v")
	f.cacheShows(gvrConfigMap, drifted)
	f.noop = true
	ch = f.applyOne(ownerA, configMapWith("default", "cm", "one"), true)
	assert.Equal(t, ch.Action, Unchanged)
	assert.NilError(t, ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"apply configmaps/cm rv=" + live.GetResourceVersion() + " owners=a:one content=one"})
	assert.DeepEqual(t, f.ownWrites, []string{`configmaps cm=""`}) // no watch event comes for a no-op
	assert.Assert(t, !ChangeSet{ch}.Changed())
}

// Two owners share a Namespace at gold; both move to silver. The first to
// move records its claim and leaves the content; the second sees
// agreement and applies; the first then finds nothing to do.
func TestAgreeingOwnersConverge(t *testing.T) {
	f := newFixture(t)
	live := f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "gold"})

	ch := f.applyOne(ownerA, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Conflict)
	assert.Assert(t, is.ErrorContains(ch.Err, "declared differently by VidraResource b"))
	assert.DeepEqual(t, f.actions(), []string{"record namespaces/shared rv=" + live.GetResourceVersion() + " owners=a:silver,b:gold"})
	now := f.live(gvrNamespace, "", "shared")
	assert.Equal(t, label(now), "gold")
	f.cacheShows(gvrNamespace, now)

	ch = f.applyOne(ownerB, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Configured, "%v", ch.Err)
	assert.DeepEqual(t, ch.Owners, []string{"a", "b"})
	assert.DeepEqual(t, f.actions(), []string{"apply namespaces/shared rv=" + now.GetResourceVersion() + " owners=a:silver,b:silver content=silver"})
	now = f.live(gvrNamespace, "", "shared")
	assert.Equal(t, label(now), "silver")
	f.cacheShows(gvrNamespace, now)

	ch = f.applyOne(ownerA, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Unchanged)
	assert.DeepEqual(t, f.actions(), []string(nil))
}

// Owners that disagree: each records its claim once, then nothing is
// written however often they pass; the content stays.
func TestDisagreeingOwnersDoNotFlipFlop(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "gold"})
	var writes []string
	for i := 0; i < 3; i++ {
		for _, pass := range []struct {
			owner ownership.Owner
			tier  string
		}{{ownerA, "silver"}, {ownerB, "bronze"}} {
			ch := f.applyOne(pass.owner, namespaceWith("shared", pass.tier), true)
			assert.Equal(t, ch.Action, Conflict)
			writes = append(writes, f.actions()...)
			now := f.live(gvrNamespace, "", "shared")
			assert.Equal(t, label(now), "gold")
			f.cacheShows(gvrNamespace, now)
		}
	}
	assert.DeepEqual(t, writes, []string{
		"record namespaces/shared rv=101 owners=a:silver,b:gold",
		"record namespaces/shared rv=102 owners=a:silver,b:bronze",
	})
}

// A third owner joins while the first two move to new content; the second
// owner's cache does not show it yet. The write on the version read fails,
// the decision is taken again on a fresh read, and the third owner, who
// declares the old content, is kept and is a conflict.
func TestThirdOwnerJoiningDuringAContentChangeIsKept(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "silver", ownerB: "gold"})
	f.owners["c"] = "uid-c"
	f.beforeWrite = func(f *fixture) {
		f.mu.Lock()
		defer f.mu.Unlock()
		u := f.store[storeKey("namespaces", "", "shared")]
		rec := ownership.ReadRecord(u)
		rec["c"] = ownership.Claim{UID: "uid-c", Hash: hashOf(namespaceWith("shared", "gold"))}
		ownership.MarkRecord(u, rec, hashOf(namespaceWith("shared", "gold")))
		f.rv++
		u.SetResourceVersion("105")
	}
	ch := f.applyOne(ownerB, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Conflict, "%v", ch.Err)
	assert.Assert(t, is.ErrorContains(ch.Err, "VidraResource c"))
	assert.DeepEqual(t, f.actions(), []string{
		"apply namespaces/shared rv=101 owners=a:silver,b:silver content=silver",
		"get namespaces/shared",
		"record namespaces/shared rv=105 owners=a:silver,b:silver,c:gold",
	})
	now := f.live(gvrNamespace, "", "shared")
	assert.Equal(t, label(now), "gold")
	assert.DeepEqual(t, ownership.Owners(now), []string{"a", "b", "c"})
}

// The cache says this owner is alone; on the server another owner joined.
// The apply carries the version read, so it fails instead of dropping the
// other owner, and the fresh decision keeps it.
func TestStaleCacheNeverDropsAnOwner(t *testing.T) {
	f := newFixture(t)
	f.owners["a"], f.owners["b"] = "uid-a", "uid-b"
	one := configMapWith("default", "cm", "one")
	stale := applied(one, ownership.Record{"a": {UID: "uid-a", Hash: hashOf(one)}})
	stale.SetResourceVersion("50")
	f.cacheShows(gvrConfigMap, stale)
	f.seed(gvrConfigMap, applied(one, ownership.Record{"a": {UID: "uid-a", Hash: hashOf(one)}, "b": {UID: "uid-b", Hash: hashOf(one)}}))

	ch := f.applyOne(ownerA, configMapWith("default", "cm", "two"), true)
	assert.Equal(t, ch.Action, Conflict, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{
		"apply configmaps/cm rv=50 owners=a:two content=two",
		"get configmaps/cm",
		"record configmaps/cm rv=101 owners=a:two,b:one",
	})
	assert.DeepEqual(t, ownership.Owners(f.live(gvrConfigMap, "default", "cm")), []string{"a", "b"})
}

// Write conflicts on every fresh read too: the error reaches the caller
// as a conflict, for the work queue's backoff.
func TestPersistentWriteConflictIsReportedAsConflictError(t *testing.T) {
	f := newFixture(t)
	f.owners["a"] = "uid-a"
	one := configMapWith("default", "cm", "one")
	f.seed(gvrConfigMap, applied(one, ownership.Record{"a": {UID: "uid-a", Hash: hashOf(one)}}))
	f.client.PrependReactor("patch", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(gvrConfigMap.GroupResource(), "cm", errors.New("the object has been modified"))
	})
	ch := f.applyOne(ownerA, configMapWith("default", "cm", "two"), true)
	assert.Equal(t, ch.Action, Failed)
	assert.Assert(t, apierrors.IsConflict(ch.Err), "%v", ch.Err)
	assert.Equal(t, len(f.actions()), 2*maxAttempts)
}

// A VidraResource deleted with the orphan policy and recreated under the
// same name is another owner: its predecessor's claim does not count.
func TestOwnerRecreatedUnderTheSameNameDoesNotInherit(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "gold"})
	f.owners["a"] = "uid-a-recreated"

	// b moves on alone: a's old claim does not hold it back.
	ch := f.applyOne(ownerB, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Configured, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"apply namespaces/shared rv=101 owners=b:silver content=silver"})

	// Nor does it keep the object when b lets go.
	f.shared("gold", map[ownership.Owner]string{{Name: "a", UID: "uid-a"}: "gold", ownerB: "gold"})
	f.owners["a"] = "uid-a-recreated"
	ch = f.release(ownerB, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Pruned, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"delete namespaces/shared uid=uid-shared rv=103"})
	assert.Assert(t, f.live(gvrNamespace, "", "shared") == nil)
}

// Pruning an object another owner still declares only releases it.
func TestPruneOfASharedObjectOnlyReleases(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "gold"})
	ch := f.release(ownerA, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Released, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"record namespaces/shared rv=101 owners=b:gold"})
	assert.Equal(t, label(f.live(gvrNamespace, "", "shared")), "gold")

	// The last owner deletes it, on the version and UID read: the cache,
	// behind, still shows a's claim, so the write on its version fails
	// and the decision is taken again on a fresh read.
	ch = f.release(ownerB, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Pruned, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"record namespaces/shared rv=101 owners=a:gold", "get namespaces/shared", "delete namespaces/shared uid=uid-shared rv=102"})
}

// An owner deleted with the orphan policy (its VidraResource is gone)
// neither keeps an object alive nor survives a release in the record.
func TestOrphanedOwnerDoesNotPinAnObject(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "gold", ownerC: "gold"})
	delete(f.owners, "a") // orphaned: gone without cleanup
	ch := f.release(ownerB, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Released)
	assert.DeepEqual(t, f.actions(), []string{"record namespaces/shared rv=101 owners=c:gold"})
	ch = f.release(ownerC, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Pruned)
}

// With prune off, leaving the manifest only releases, even for the last
// owner; objects not naming the owner are not touched.
func TestReleaseWithoutPruneKeepsTheObject(t *testing.T) {
	f := newFixture(t)
	f.shared("gold", map[ownership.Owner]string{ownerA: "gold"})
	ch := f.release(ownerA, gvrNamespace, "shared", false)
	assert.Equal(t, ch.Action, Released)
	assert.DeepEqual(t, f.actions(), []string{"record namespaces/shared rv=101 owners="})
	assert.Assert(t, f.live(gvrNamespace, "", "shared") != nil)

	ch = f.release(ownerB, gvrNamespace, "shared", true)
	assert.Equal(t, ch.Action, Released)
	assert.DeepEqual(t, f.actions(), []string{"get namespaces/shared"})
}

// Objects written before the record existed: the names in owned-by each
// declare the content-hash. Agreeing upgrades the record, disagreeing is
// a conflict.
func TestRecordOfTheEarlierFormatIsRead(t *testing.T) {
	f := newFixture(t)
	f.owners["a"], f.owners["b"] = "uid-a", "uid-b"
	gold := namespaceWith("shared", "gold")
	old := gold.DeepCopy()
	old.SetLabels(map[string]string{"tier": "gold", v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	old.SetAnnotations(map[string]string{
		v1alpha1.AnnotationManagedBy:   v1alpha1.ManagedByVidra,
		v1alpha1.AnnotationOwnedBy:     "a,b",
		v1alpha1.AnnotationContentHash: hashOf(gold),
	})
	f.seed(gvrNamespace, old)

	ch := f.applyOne(ownerB, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Conflict)
	assert.Assert(t, is.ErrorContains(ch.Err, "VidraResource a"))
	assert.DeepEqual(t, f.actions(), []string{"get namespaces/shared", "record namespaces/shared rv=101 owners=a:gold,b:silver"})

	ch = f.applyOne(ownerB, namespaceWith("shared", "gold"), true)
	assert.Equal(t, ch.Action, Configured)
	assert.DeepEqual(t, f.actions(), []string{"get namespaces/shared", "apply namespaces/shared rv=102 owners=a:gold,b:gold content=gold"})
	rec := ownership.ReadRecord(f.live(gvrNamespace, "", "shared"))
	assert.Equal(t, rec["b"].UID, ownerB.UID)
}

// The policy refuses before anything is read or written.
func TestPolicyRefusalWritesNothing(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	e.Policy = Policy{AllowedNamespaces: []string{"apps"}}
	ch := e.ApplyOne(context.Background(), f.target(), ownerA, false, Object{Object: configMapWith("default", "cm", "one"), Resource: gvrConfigMap})
	assert.Equal(t, ch.Action, NotOwned)
	assert.Assert(t, is.ErrorContains(ch.Err, "does not allow namespace default"))
	assert.DeepEqual(t, f.actions(), []string(nil))
}

// An object Vidra did not create is taken over only when adopting.
func TestAdoptTakesOverAnUnmanagedObject(t *testing.T) {
	f := newFixture(t)
	f.seed(gvrConfigMap, configMapWith("default", "cm", "theirs"))
	ch := f.engine().ApplyOne(context.Background(), f.target(), ownerA, true, Object{Object: configMapWith("default", "cm", "mine"), Resource: gvrConfigMap, Recorded: true})
	assert.Equal(t, ch.Action, Configured, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"get configmaps/cm", "apply configmaps/cm rv=101 owners=a:mine content=mine"})
}

// Stages: CRDs, Namespaces, the rest, admission webhooks last.
func TestApplyInStages(t *testing.T) {
	f := newFixture(t)
	webhook := &unstructured.Unstructured{}
	webhook.SetAPIVersion("admissionregistration.k8s.io/v1")
	webhook.SetKind("ValidatingWebhookConfiguration")
	webhook.SetName("hook")
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	crd.SetName("things.example.com")
	objs := []Object{
		{Object: webhook, Resource: schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}},
		{Object: configMapWith("ns", "cm", "one"), Resource: gvrConfigMap},
		{Object: namespaceWith("ns", "gold"), Resource: gvrNamespace},
		{Object: crd, Resource: schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}},
	}
	cs := f.engine().Apply(context.Background(), f.target(), Request{Owner: ownerA, Objects: objs})
	assert.Equal(t, cs.Count(Created), 4)
	var order []string
	for _, a := range f.actions() {
		order = append(order, strings.SplitN(strings.Fields(a)[1], "/", 2)[0])
	}
	assert.DeepEqual(t, order, []string{"customresourcedefinitions", "namespaces", "configmaps", "validatingwebhookconfigurations"})
}

// While owners disagree, the one declaring the content the object holds
// still repairs drift: that changes nothing the other could dispute. The
// other only has its claim on record.
func TestOwnerOfTheSittingContentRepairsDriftDuringAConflict(t *testing.T) {
	f := newFixture(t)
	live := f.shared("gold", map[ownership.Owner]string{ownerA: "gold", ownerB: "silver"})
	drifted := live.DeepCopy()
	drifted.SetLabels(map[string]string{"tier": "edited", v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	f.seed(gvrNamespace, drifted)
	f.cacheShows(gvrNamespace, f.live(gvrNamespace, "", "shared"))

	ch := f.applyOne(ownerB, namespaceWith("shared", "silver"), true)
	assert.Equal(t, ch.Action, Conflict)
	assert.DeepEqual(t, f.actions(), []string(nil))

	ch = f.applyOne(ownerA, namespaceWith("shared", "gold"), true)
	assert.Equal(t, ch.Action, Conflict)
	assert.Assert(t, is.ErrorContains(ch.Err, "VidraResource b"))
	assert.DeepEqual(t, f.actions(), []string{"apply namespaces/shared rv=102 owners=a:gold,b:silver content=gold"})
	assert.Equal(t, label(f.live(gvrNamespace, "", "shared")), "gold")
}

// Teardown deletes on the cached version and UID, with no read first; a
// cache behind the server costs a conflict and a fresh read, never an
// owner.
func TestPruneDeletesOnTheCachedVersionWithoutARead(t *testing.T) {
	f := newFixture(t)
	f.owners["a"] = ownerA.UID
	live := f.seed(gvrConfigMap, applied(configMapWith("default", "cm", "one"), ownership.Record{"a": {UID: ownerA.UID, Hash: "h"}}))
	f.cacheShows(gvrConfigMap, live)
	ch := f.engine().Release(context.Background(), f.target(), ownerA, Ref{Resource: gvrConfigMap, Namespace: "default", Name: "cm", Subject: "cm"}, true)
	assert.Equal(t, ch.Action, Pruned, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"delete configmaps/cm uid=uid-cm rv=101"})

	// Another owner joined after the cache saw the object: the delete on
	// the cached version fails, and the fresh read only releases.
	f.owners["b"] = ownerB.UID
	cached := f.seed(gvrConfigMap, applied(configMapWith("default", "cm", "one"), ownership.Record{"a": {UID: ownerA.UID, Hash: "h"}}))
	f.cacheShows(gvrConfigMap, cached)
	f.seed(gvrConfigMap, applied(configMapWith("default", "cm", "one"), ownership.Record{"a": {UID: ownerA.UID, Hash: "h"}, "b": {UID: ownerB.UID, Hash: "h"}}))
	ch = f.engine().Release(context.Background(), f.target(), ownerA, Ref{Resource: gvrConfigMap, Namespace: "default", Name: "cm", Subject: "cm"}, true)
	assert.Equal(t, ch.Action, Released, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"delete configmaps/cm uid=uid-cm rv=102", "get configmaps/cm", "record configmaps/cm rv=103 owners=b:h"})
	assert.Assert(t, f.live(gvrConfigMap, "default", "cm") != nil)
}

// A cache that does not show this owner's claim yet (its own write not
// seen) is not enough to leave without a write: the object is read.
func TestReleaseConfirmsAMissingClaimOnAFreshRead(t *testing.T) {
	f := newFixture(t)
	f.owners["a"] = ownerA.UID
	f.cacheShows(gvrConfigMap, configMapWith("default", "cm", "one"))
	f.seed(gvrConfigMap, applied(configMapWith("default", "cm", "one"), ownership.Record{"a": {UID: ownerA.UID, Hash: "h"}}))
	ch := f.engine().Release(context.Background(), f.target(), ownerA, Ref{Resource: gvrConfigMap, Namespace: "default", Name: "cm", Subject: "cm"}, true)
	assert.Equal(t, ch.Action, Pruned, "%v", ch.Err)
	assert.DeepEqual(t, f.actions(), []string{"get configmaps/cm", "delete configmaps/cm uid=uid-cm rv=101"})
}
