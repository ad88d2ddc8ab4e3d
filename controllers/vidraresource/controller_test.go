package vidraresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/watch"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// The controller's fixture, in sample-controller's style: the
// VidraResource lister's indexer seeded, a fake clientset recording the
// VidraResource writes, a fake dynamic client whose reactors keep the
// destination's objects, and a recorder collecting events.

var gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	dyn      *dynamicfake.FakeDynamicClient
	recorder *events.FakeRecorder
	c        *Controller

	mu    sync.Mutex
	store map[string]*unstructured.Unstructured
	rv    int
}

type fakeClusters struct{ target *cluster.Target }

func (f fakeClusters) Target(context.Context, v1alpha1.Destination) (*cluster.Target, error) {
	return f.target, nil
}
func (f fakeClusters) Clusters() []*cluster.Cluster { return []*cluster.Cluster{f.target.Cluster} }

func newFixture(t *testing.T, vrs ...*v1alpha1.VidraResource) *fixture {
	f := &fixture{t: t, store: map[string]*unstructured.Unstructured{}, rv: 10}
	objs := make([]runtime.Object, len(vrs))
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for i, vr := range vrs {
		objs[i] = vr
		assert.NilError(t, indexer.Add(vr))
	}
	f.client = fake.NewSimpleClientset(objs...)
	f.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvrConfigMap: "ConfigMapList"})
	f.dyn.PrependReactor("get", "configmaps", f.get)
	f.dyn.PrependReactor("patch", "configmaps", f.apply)
	f.dyn.PrependReactor("delete", "configmaps", f.delete)
	disco := &discoveryfake.FakeDiscovery{Fake: &clienttesting.Fake{Resources: []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: []string{"get", "list", "watch", "patch", "delete"}}},
	}}}}
	watches := watch.NewManager(f.dyn, watch.Options{})
	t.Cleanup(watches.Stop)
	target := &cluster.Target{
		Cluster: &cluster.Cluster{Dynamic: f.dyn, Mapper: cluster.NewMapper(disco), Watches: watches},
		Client:  f.dyn,
		Reader:  f.dyn,
	}
	f.recorder = events.NewFakeRecorder(10)
	opts := Options{}
	opts.defaults()
	f.c = &Controller{
		client:   f.client,
		lister:   listers.NewVidraResourceLister(indexer),
		queue:    workloop.NewQueue(ControllerName, time.Millisecond, time.Second),
		clusters: fakeClusters{target},
		recorder: f.recorder,
		metrics:  metrics.Nop{},
		clock:    clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)),
		opts:     opts,
		health:   newHealthState(),
	}
	t.Cleanup(f.c.queue.ShutDown)
	return f
}

func (f *fixture) get(action clienttesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := action.(clienttesting.GetAction)
	u := f.store[a.GetNamespace()+"/"+a.GetName()]
	if u == nil {
		return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), a.GetName())
	}
	return true, u.DeepCopy(), nil
}

// apply stores what a server-side apply sends, honouring the
// resourceVersion precondition.
func (f *fixture) apply(action clienttesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := action.(clienttesting.PatchAction)
	key := a.GetNamespace() + "/" + a.GetName()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(a.GetPatch(), &u.Object); err != nil {
		return true, nil, err
	}
	live := f.store[key]
	if rv := u.GetResourceVersion(); rv != "" && (live == nil) != (rv == "1") || live != nil && rv != "" && rv != live.GetResourceVersion() {
		return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), a.GetName(), errors.New("precondition"))
	}
	f.rv++
	u.SetResourceVersion(strconv.Itoa(f.rv))
	u.SetUID("uid-" + types.UID(a.GetName()))
	f.store[key] = u
	return true, u.DeepCopy(), nil
}

func (f *fixture) delete(action clienttesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := action.(clienttesting.DeleteAction)
	delete(f.store, a.GetNamespace()+"/"+a.GetName())
	return true, nil, nil
}

// destinationActions lists the requests to the destination, leaving out
// the drift watch's lists and watches.
func (f *fixture) destinationActions() []string {
	var out []string
	for _, a := range f.dyn.Actions() {
		switch a.GetVerb() {
		case "list", "watch":
			continue
		}
		line := a.GetVerb() + " " + a.GetResource().Resource
		if p, ok := a.(clienttesting.PatchAction); ok {
			u := &unstructured.Unstructured{}
			_ = json.Unmarshal(p.GetPatch(), &u.Object)
			line += "/" + p.GetName() + " rv=" + u.GetResourceVersion()
		} else if named, ok := a.(interface{ GetName() string }); ok {
			line += "/" + named.GetName()
		}
		out = append(out, line)
	}
	f.dyn.ClearActions()
	return out
}

// vidraActions lists the writes to VidraResources.
func (f *fixture) vidraActions() []string {
	var out []string
	for _, a := range f.client.Actions() {
		line := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			line += "/" + a.GetSubresource()
		}
		if p, ok := a.(clienttesting.PatchAction); ok {
			line += " " + string(p.GetPatchType())
			if p.GetPatchType() == types.JSONPatchType {
				line += " " + string(p.GetPatch())
			}
		}
		out = append(out, line)
	}
	f.client.ClearActions()
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// lastStatus returns the status the last status write sent.
func (f *fixture) lastStatus() v1alpha1.VidraResourceStatus {
	var status v1alpha1.VidraResourceStatus
	for _, a := range f.client.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok && a.GetSubresource() == "status" {
			var body struct {
				Status v1alpha1.VidraResourceStatus `json:"status"`
			}
			assert.NilError(f.t, json.Unmarshal(p.GetPatch(), &body))
			status = body.Status
		}
	}
	return status
}

func resource(name string, manifest string) *v1alpha1.VidraResource {
	return &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "5",
			Finalizers: []string{v1alpha1.VidraResourceFinalizer}},
		Spec: v1alpha1.VidraResourceSpec{Manifest: manifest},
	}
}

const manifestCM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: apps\ndata:\n  k: v\n"

// A pass that finds everything as declared writes nothing: no apply, no
// status write, no event.
func TestNoOpPassWritesNothing(t *testing.T) {
	vr := resource("a", manifestCM)
	f := newFixture(t, vr)
	ctx := context.Background()

	_, err := f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.DeepEqual(t, f.destinationActions(), []string{"patch configmaps/cm rv=1"})
	// The first apply of a first manifest: its status says so, in one
	// write, without an Event.
	assert.DeepEqual(t, f.events(), []string(nil))
	vr.Status = f.lastStatus()
	assert.Equal(t, vr.Status.ObjectCount, int32(1))
	assert.DeepEqual(t, f.vidraActions(), []string{"patch vidraresources/status application/apply-patch+yaml"})

	// The objects' health comes from the drift watch, which starts with
	// the first pass; a pass after its first list may record what it saw
	// (a health-only status write, nothing applied).
	watches := f.c.clusters.Clusters()[0].Watches
	deadline := time.Now().Add(10 * time.Second)
	for !watches.HasSynced(gvrConfigMap) {
		assert.Assert(t, time.Now().Before(deadline), "the drift watch never synced")
		time.Sleep(5 * time.Millisecond)
	}
	_, err = f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.DeepEqual(t, f.destinationActions(), []string{"get configmaps/cm"})
	assert.DeepEqual(t, f.events(), []string(nil))
	if settled := f.lastStatus(); settled.ObjectCount > 0 {
		vr.Status = settled
	}
	f.vidraActions()

	requeue, err := f.c.sync(ctx, vr.DeepCopy())
	assert.NilError(t, err)
	assert.Assert(t, requeue > 0)
	assert.DeepEqual(t, f.destinationActions(), []string{"get configmaps/cm"})
	assert.DeepEqual(t, f.vidraActions(), []string(nil))
	assert.DeepEqual(t, f.events(), []string(nil))
}

// The finalizer is added and removed with JSON patches on metadata,
// conditional on the version read, never with a full update.
func TestFinalizerIsPatchedNotUpdated(t *testing.T) {
	vr := resource("a", manifestCM)
	vr.Finalizers = nil
	f := newFixture(t, vr)
	updated, err := f.c.addFinalizer(context.Background(), vr)
	assert.NilError(t, err)
	assert.DeepEqual(t, updated.Finalizers, []string{v1alpha1.VidraResourceFinalizer})
	assert.DeepEqual(t, f.vidraActions(), []string{
		`patch vidraresources application/json-patch+json [{"op":"replace","path":"/metadata/resourceVersion","value":"5"},{"op":"add","path":"/metadata/finalizers","value":["vidraresource.infrahub.operators.com/finalizer"]}]`,
	})

	assert.NilError(t, f.c.removeFinalizer(context.Background(), updated))
	assert.DeepEqual(t, f.vidraActions(), []string{
		`patch vidraresources application/json-patch+json [{"op":"replace","path":"/metadata/resourceVersion","value":"5"},{"op":"test","path":"/metadata/finalizers/0","value":"vidraresource.infrahub.operators.com/finalizer"},{"op":"remove","path":"/metadata/finalizers/0"}]`,
	})
	left, err := f.client.InfrahubV1alpha1().VidraResources().Get(context.Background(), "a", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(left.Finalizers), 0)
}

// The orphan policy lets the VidraResource go without touching its
// objects.
func TestOrphanPolicyLeavesObjects(t *testing.T) {
	vr := resource("a", manifestCM)
	now := metav1.NewTime(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC))
	vr.DeletionTimestamp = &now
	vr.Annotations = map[string]string{v1alpha1.AnnotationDeletionPolicy: v1alpha1.DeletionPolicyOrphan}
	vr.Status.ManagedResources = []v1alpha1.ManagedResource{{APIVersion: "v1", Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "apps", Name: "cm"}}
	f := newFixture(t, vr)
	f.store["apps/cm"] = &unstructured.Unstructured{}

	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.DeepEqual(t, f.destinationActions(), []string(nil))
	actions := f.vidraActions()
	assert.Equal(t, len(actions), 1)
	assert.Assert(t, strings.Contains(actions[0], `"op":"remove","path":"/metadata/finalizers/0"`), actions[0])
	assert.Assert(t, f.store["apps/cm"] != nil)
}

// Without the orphan policy the objects are pruned before the finalizer
// goes.
func TestDeletionPrunesThenRemovesTheFinalizer(t *testing.T) {
	vr := resource("a", manifestCM)
	now := metav1.NewTime(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC))
	vr.DeletionTimestamp = &now
	vr.Status.ManagedResources = []v1alpha1.ManagedResource{{APIVersion: "v1", Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "apps", Name: "cm"}}
	f := newFixture(t, vr)
	cm := &unstructured.Unstructured{}
	cm.SetAnnotations(map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: "a"})
	cm.SetResourceVersion("3")
	f.store["apps/cm"] = cm

	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	assert.DeepEqual(t, f.destinationActions(), []string{"get configmaps/cm", "delete configmaps/cm"})
	assert.Equal(t, len(f.vidraActions()), 1)
	assert.Assert(t, f.store["apps/cm"] == nil)
}

// Owners are alive by UID when the record has one.
func TestAliveIsBoundToTheOwnersUID(t *testing.T) {
	vr := resource("a", manifestCM)
	vr.UID = "uid-a-recreated"
	f := newFixture(t, vr)
	assert.Assert(t, !f.c.alive("a", "uid-a"), "a recreated VidraResource inherits")
	assert.Assert(t, f.c.alive("a", "uid-a-recreated"))
	assert.Assert(t, f.c.alive("a", ""), "a claim of the earlier format names no UID")
	assert.Assert(t, !f.c.alive("gone", ""))
}

// Two owners deleted together do not each leave a shared object to the
// other; one deleted with the orphan policy keeps its claim.
func TestOwnerBeingDeletedLetsGoUnlessOrphaning(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC))
	deleting := resource("deleting", manifestCM)
	deleting.DeletionTimestamp = &now
	orphaning := resource("orphaning", manifestCM)
	orphaning.DeletionTimestamp = &now
	orphaning.Annotations = map[string]string{v1alpha1.AnnotationDeletionPolicy: v1alpha1.DeletionPolicyOrphan}
	f := newFixture(t, deleting, orphaning)
	assert.Assert(t, !f.c.alive("deleting", "uid-deleting"))
	assert.Assert(t, f.c.alive("orphaning", "uid-orphaning"))
}

// Failures reach the work loop wrapped: a conflict is recognised as one,
// unless something else failed too.
func TestPassErrorsAreWrapped(t *testing.T) {
	conflict := fmt.Errorf("apply cm: %w", apierrors.NewConflict(gvrConfigMap.GroupResource(), "cm", errors.New("modified")))
	out := outcome{applyErrs: []error{conflict}}
	assert.Assert(t, apierrors.IsConflict(out.err("a")))
	out.pruneErrs = []error{apierrors.NewForbidden(gvrConfigMap.GroupResource(), "x", errors.New("no"))}
	err := out.err("a")
	assert.Assert(t, !apierrors.IsConflict(err))
	assert.Assert(t, apierrors.IsForbidden(err))
}

// When a shared object gets new content, its other owners that report a
// conflict are looked at again now.
func TestOwnersWaitingOnAConflictAreWokenByAWrite(t *testing.T) {
	a := resource("a", manifestCM)
	b := resource("b", manifestCM)
	b.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonConflict}}
	c := resource("c", manifestCM)
	f := newFixture(t, a, b, c)
	f.c.wakeWaitingOwners("a", []string{"a", "b", "c", "gone"})
	assert.Equal(t, f.c.queue.Len(), 1)
	key, _ := f.c.queue.Get()
	assert.Equal(t, key, "b")
}

// ownedConfigMap is a ConfigMap as Vidra left it for owner "a".
func ownedConfigMap(name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("apps")
	u.SetName(name)
	u.SetResourceVersion(rv)
	u.SetUID(types.UID("uid-" + name))
	u.SetLabels(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra})
	u.SetAnnotations(map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: "a",
		v1alpha1.AnnotationOwners: `{"a":{"uid":"uid-a","hash":"h"}}`})
	return u
}

// listStore answers lists of ConfigMaps from the fixture's store.
func (f *fixture) listStore(action clienttesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("v1")
	list.SetKind("ConfigMapList")
	for _, u := range f.store {
		list.Items = append(list.Items, *u.DeepCopy())
	}
	return true, list, nil
}

// A manifest that changed after a completed pass is recorded before it is
// applied: a crash in between leaves nothing untracked. Its changes earn
// an Event.
func TestChangedManifestIsRecordedBeforeItIsApplied(t *testing.T) {
	vr := resource("a", manifestCM)
	vr.Generation = 2
	vr.Status.LastAppliedChecksum = "earlier"
	vr.Status.ManagedResources = []v1alpha1.ManagedResource{{APIVersion: "v1", Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "apps", Name: "old"}}
	f := newFixture(t, vr)
	f.store["apps/old"] = ownedConfigMap("old", "3")

	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	writes := f.vidraActions()
	assert.Equal(t, len(writes), 2, "the plan, then the result: %v", writes)
	assert.Assert(t, f.store["apps/old"] == nil, "left the manifest: pruned")
	assert.DeepEqual(t, f.events(), []string{"Normal Applied 1 object created, 1 object pruned"})
}

// An interrupted pass of the first manifest recorded nothing; when the
// manifest changed meanwhile, the first pass of the new one finds what
// the interrupted pass applied by its ownership record, records it with
// its plan, and prunes it. Objects of other owners are left alone.
func TestObjectsOfAnInterruptedFirstPassAreFoundAfterTheManifestChanged(t *testing.T) {
	vr := resource("a", manifestCM)
	vr.Generation = 2 // the manifest changed before any pass completed
	f := newFixture(t, vr)
	f.dyn.PrependReactor("list", "configmaps", f.listStore)
	f.store["apps/old"] = ownedConfigMap("old", "3")
	foreign := ownedConfigMap("foreign", "4")
	foreign.SetAnnotations(map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: "b",
		v1alpha1.AnnotationOwners: `{"b":{"uid":"uid-b","hash":"h"}}`})
	f.store["apps/foreign"] = foreign
	recreated := ownedConfigMap("recreated", "5")
	recreated.SetAnnotations(map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: "a",
		v1alpha1.AnnotationOwners: `{"a":{"uid":"uid-a-earlier","hash":"h"}}`})
	f.store["apps/recreated"] = recreated

	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.NilError(t, err)
	writes := f.client.Actions()
	assert.Equal(t, len(writes), 2, "the plan, then the result")
	var body struct {
		Status v1alpha1.VidraResourceStatus `json:"status"`
	}
	assert.NilError(t, json.Unmarshal(writes[0].(clienttesting.PatchAction).GetPatch(), &body))
	var planned []string
	for _, e := range body.Status.ManagedResources {
		planned = append(planned, e.Name)
	}
	assert.DeepEqual(t, planned, []string{"cm", "old"})
	assert.Equal(t, f.lastStatus().ObjectCount, int32(1))
	assert.Assert(t, f.store["apps/old"] == nil, "the interrupted pass's object was pruned")
	assert.Assert(t, f.store["apps/foreign"] != nil, "another owner's object is left alone")
	assert.Assert(t, f.store["apps/recreated"] != nil, "an earlier VidraResource of the same name is another owner")

	// Found once: later passes of this process record their plan first
	// and need not look again.
	assert.Assert(t, !f.c.mayHoldUntracked(vr))
}

// A pass of the first manifest that fails for some objects still records
// every object it tried: without a plan written first, the result is the
// only record.
func TestFailedFirstPassRecordsEverythingItTried(t *testing.T) {
	vr := resource("a", manifestCM+"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: apps\n")
	f := newFixture(t, vr)
	f.dyn.PrependReactor("patch", "configmaps", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.(clienttesting.PatchAction).GetName() == "broken" {
			return true, nil, apierrors.NewInternalError(errors.New("etcd hiccup"))
		}
		return false, nil, nil
	})

	_, err := f.c.sync(context.Background(), vr.DeepCopy())
	assert.Assert(t, err != nil)
	var names []string
	for _, e := range f.lastStatus().ManagedResources {
		names = append(names, e.Name)
	}
	assert.Equal(t, len(f.vidraActions()), 1, "one status write")
	assert.DeepEqual(t, names, []string{"broken", "cm"})
}
