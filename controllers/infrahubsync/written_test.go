package infrahubsync

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
	"github.com/vidra-operator/vidra/infrahub"
)

// countingSource serves fixed artifacts and counts downloads.
type countingSource struct {
	mu        sync.Mutex
	artifacts []infrahub.Artifact
	downloads int
	lists     int
	onList    func(n int)
	// priorities are the X-Priority of the listings.
	priorities    []infrahub.Priority
	defaultBranch string
}

// fixedContent is what countingSource serves for every artifact.
var fixedContent = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")

// ResolveBranch behaves as Infrahub's client does with only the default
// branch existing.
func (s *countingSource) ResolveBranch(_ context.Context, name string) (string, error) {
	def := s.defaultBranch
	if def == "" {
		def = "main"
	}
	if name == "" || name == "main" {
		return def, nil
	}
	return name, nil
}

func (s *countingSource) Source(infrahub.Config) (Source, error) { return s, nil }

func (s *countingSource) ListArtifacts(ctx context.Context, _ infrahub.ListOptions) ([]infrahub.Artifact, error) {
	s.mu.Lock()
	s.priorities = append(s.priorities, infrahub.PriorityFrom(ctx))
	s.lists++
	n := s.lists
	s.mu.Unlock()
	if s.onList != nil {
		s.onList(n)
	}
	return s.artifacts, nil
}

func (s *countingSource) FetchContent(context.Context, infrahub.Artifact, infrahub.ListOptions) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloads++
	return fixedContent, nil
}

// The informer never sees the writes here (it is not started), as happens
// for a moment after every write: the controller must neither report Ready
// on VidraResources it just wrote nor write and download them again.
func TestPassAfterWriteTrustsItsOwnWritesOverALaggingCache(t *testing.T) {
	obj := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: "lag", UID: types.UID("sync-uid"), Generation: 1, Finalizers: []string{v1alpha1.SyncFinalizer}},
		Spec: v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{
			InfrahubAPIURL: "http://infrahub.invalid", ArtifactName: "Lag_Manifest",
		}},
	}
	client := fake.NewClientset(obj)
	// The fake's apply needs an OpenAPI schema the generated code does not
	// carry; keep the last status written instead.
	var statusMu sync.Mutex
	var lastStatus v1alpha1.InfrahubSyncStatus
	client.PrependReactor("patch", "infrahubsyncs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		if patch.GetSubresource() != "status" {
			return false, nil, nil
		}
		var written v1alpha1.InfrahubSync
		if err := json.Unmarshal(patch.GetPatch(), &written); err != nil {
			return true, nil, err
		}
		statusMu.Lock()
		lastStatus = written.Status
		statusMu.Unlock()
		out := obj.DeepCopy()
		out.Status = written.Status
		return true, out, nil
	})
	// The same for VidraResources: the server's answer to an apply, with a
	// UID and a generation that moves when the spec does.
	stored := map[string]*v1alpha1.VidraResource{}
	client.PrependReactor("patch", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		var written v1alpha1.VidraResource
		if err := json.Unmarshal(patch.GetPatch(), &written); err != nil {
			return true, nil, err
		}
		statusMu.Lock()
		defer statusMu.Unlock()
		prev := stored[patch.GetName()]
		switch {
		case prev == nil:
			written.UID = types.UID("uid-" + patch.GetName())
			written.Generation = 1
		case !apiequality.Semantic.DeepEqual(prev.Spec, written.Spec):
			written.UID, written.Generation = prev.UID, prev.Generation+1
		default:
			written.UID, written.Generation = prev.UID, prev.Generation
		}
		stored[patch.GetName()] = written.DeepCopy()
		return true, written.DeepCopy(), nil
	})
	factory := externalversions.NewSharedInformerFactory(client, 0)
	source := &countingSource{artifacts: []infrahub.Artifact{
		{ID: "a1", Name: "Lag_Manifest", Status: infrahub.StatusReady, Checksum: infrahub.Checksum(fixedContent), StorageID: "s1", TargetLabel: "one"},
		{ID: "a2", Name: "Lag_Manifest", Status: infrahub.StatusReady, Checksum: infrahub.Checksum(fixedContent), StorageID: "s2", TargetLabel: "two"},
	}}
	c, err := NewController(client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, source, nil, nil, Options{})
	assert.NilError(t, err)
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	c.clock = clock

	ready := func() *metav1.Condition {
		statusMu.Lock()
		defer statusMu.Unlock()
		return meta.FindStatusCondition(lastStatus.Conditions, v1alpha1.ConditionReady)
	}
	pass := func() {
		t.Helper()
		current := obj.DeepCopy()
		statusMu.Lock()
		current.Status = lastStatus
		statusMu.Unlock()
		_, err := settle(t, c, func() *v1alpha1.InfrahubSync { return current })
		assert.NilError(t, err)
	}

	pass()
	assert.Equal(t, source.downloads, 2)
	cond := ready()
	assert.Assert(t, cond != nil)
	assert.Equal(t, cond.Status, metav1.ConditionFalse, "Ready before any VidraResource was reconciled: %s", cond.Message)
	assert.Equal(t, cond.Reason, ReasonResourcesNotReady)

	writes := countVidraResourceWrites(client)
	pass()
	assert.Equal(t, source.downloads, 2, "the lagging cache made the pass download again")
	assert.Equal(t, countVidraResourceWrites(client), writes, "the lagging cache made the pass write again")
	assert.Equal(t, ready().Status, metav1.ConditionFalse)

	// Past the time the cache is trusted to catch up, the cache wins again.
	clock.SetTime(clock.Now().Add(writtenTTL + time.Second))
	owned, err := c.ownedResources(obj)
	assert.NilError(t, err)
	assert.Equal(t, len(owned), 0)
}

func countVidraResourceWrites(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "vidraresources" && (a.GetVerb() == "patch" || a.GetVerb() == "create" || a.GetVerb() == "update") {
			n++
		}
	}
	return n
}

func TestWrittenResourcesOverlay(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	owner := types.UID("owner")
	isController := true
	vr := func(name, uid string, generation int64) *v1alpha1.VidraResource {
		return &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(uid), Generation: generation,
			OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: &isController}},
		}}
	}
	names := func(vrs []*v1alpha1.VidraResource) map[string]int64 {
		out := map[string]int64{}
		for _, v := range vrs {
			out[v.Name] = v.Generation
		}
		return out
	}

	w := newWrittenResources()
	w.record(vr("new", "u-new", 1), now)
	w.record(vr("updated", "u-upd", 3), now)
	w.record(vr("caught-up", "u-cu", 2), now)
	w.record(vr("replaced", "u-old", 5), now)
	foreign := vr("foreign", "u-f", 1)
	foreign.OwnerReferences[0].UID = "someone-else"
	w.record(foreign, now)

	cached := []*v1alpha1.VidraResource{vr("updated", "u-upd", 2), vr("caught-up", "u-cu", 2), vr("replaced", "u-new2", 1), vr("plain", "u-p", 7)}
	got := names(w.overlay(owner, cached, now))
	assert.DeepEqual(t, got, map[string]int64{
		"new":       1, // written, not cached yet
		"updated":   3, // the cache is a generation behind
		"caught-up": 2,
		"replaced":  1, // another object of the same name: the cache wins
		"plain":     7,
	})
	// Entries the cache caught up with are forgotten.
	assert.Equal(t, len(w.byName), 3) // new, updated, foreign

	w.drop("updated", "not-its-uid")
	assert.Equal(t, len(w.byName), 3, "a delete of another object of the name must not drop the write")
	w.drop("updated", "u-upd")
	assert.Equal(t, len(w.byName), 2)

	w.forget(owner)
	assert.Equal(t, len(w.byName), 1, "only the other owner's write is left")
	assert.Equal(t, len(w.overlay(owner, nil, now.Add(writtenTTL+time.Second))), 0)
	assert.Equal(t, len(w.byName), 0, "expired entries are dropped")
}

// While VidraResources converge, the sync rewrites its status at the
// progress interval; it looks again at once when its own readiness may
// flip.
func TestReadinessDelay(t *testing.T) {
	client := fake.NewClientset()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	c, err := NewController(client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, &countingSource{}, nil, nil, Options{})
	assert.NilError(t, err)
	isController := true
	vr := func(name string, ready bool) *v1alpha1.VidraResource {
		status := metav1.ConditionFalse
		if ready {
			status = metav1.ConditionTrue
		}
		return &v1alpha1.VidraResource{
			ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1,
				Labels:          map[string]string{LabelSyncKey: SyncLabelValue("s")},
				OwnerReferences: []metav1.OwnerReference{{Kind: "InfrahubSync", Name: "s", UID: "s-uid", Controller: &isController}},
			},
			Status: v1alpha1.VidraResourceStatus{Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, ObservedGeneration: 1}}},
		}
	}
	indexer := factory.Infrahub().V1alpha1().VidraResources().Informer().GetIndexer()
	for _, o := range []*v1alpha1.VidraResource{vr("a", false), vr("b", false), vr("c", true)} {
		assert.NilError(t, indexer.Add(o))
	}

	assert.Equal(t, c.readinessDelay(vr("a", false), vr("a", true)), progressInterval, "b is still converging")
	assert.NilError(t, indexer.Update(vr("a", true)))
	// The lister may not hold the update that caused the event yet.
	assert.Equal(t, c.readinessDelay(vr("b", false), vr("b", true)), resourceSettle, "the last one became Ready")
	assert.NilError(t, indexer.Update(vr("b", true)))
	assert.Equal(t, c.readinessDelay(vr("c", true), vr("c", false)), resourceSettle, "a Ready one lost Ready")
}

// A trigger that arrives while a listing is under way is not absorbed by
// it: the next pass lists again.
func TestTriggerDuringListingListsAgain(t *testing.T) {
	obj := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: "t", UID: "t-uid", Generation: 1},
		Spec:       v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{InfrahubAPIURL: "http://infrahub.invalid", ArtifactName: "T"}},
	}
	client := fake.NewClientset(obj)
	factory := externalversions.NewSharedInformerFactory(client, 0)
	// Not Ready in Infrahub: nothing is written, only listed.
	source := &countingSource{artifacts: []infrahub.Artifact{{ID: "a", Name: "T", Status: "Pending"}}}
	c, err := NewController(client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, source, nil, nil, Options{})
	assert.NilError(t, err)
	source.onList = func(n int) {
		if n == 1 {
			c.Trigger(obj.Name) // e.g. a webhook for a change the listing may have missed
		}
	}
	pass := func() {
		// The status write fails on the fake (no schema for apply); the
		// listing is what counts here.
		_, _ = settle(t, c, obj.DeepCopy)
	}
	pass()
	pass()
	assert.Equal(t, source.lists, 2, "the trigger during the first listing was lost")
	pass()
	assert.Equal(t, source.lists, 2, "listed again without a trigger or the interval passing")
}
