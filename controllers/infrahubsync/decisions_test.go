package infrahubsync

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
	"github.com/vidra-operator/vidra/infrahub"
)

// decisionFixture runs sync passes of one InfrahubSync against a fake
// clientset whose applies answer like the API server, a seeded
// VidraResource indexer and a countingSource.
type decisionFixture struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	source   *countingSource
	recorder *events.FakeRecorder
	obj      *v1alpha1.InfrahubSync

	mu      sync.Mutex
	status  v1alpha1.InfrahubSyncStatus
	applied map[string]*v1alpha1.VidraResource
}

func newDecisionFixture(t *testing.T, source *countingSource, tune ...func(*v1alpha1.InfrahubSync)) *decisionFixture {
	t.Helper()
	obj := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: "web", UID: types.UID("web-uid"), Generation: 1, Finalizers: []string{v1alpha1.SyncFinalizer}},
		Spec: v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{
			InfrahubAPIURL: "http://infrahub.invalid", ArtifactName: "Webserver_Manifest",
		}},
	}
	for _, f := range tune {
		f(obj)
	}
	f := &decisionFixture{t: t, client: fake.NewClientset(obj), source: source, obj: obj,
		recorder: events.NewFakeRecorder(20), applied: map[string]*v1alpha1.VidraResource{}}
	f.client.PrependReactor("patch", "infrahubsyncs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		var written v1alpha1.InfrahubSync
		if err := json.Unmarshal(action.(k8stesting.PatchAction).GetPatch(), &written); err != nil {
			return true, nil, err
		}
		f.mu.Lock()
		f.status = written.Status
		f.mu.Unlock()
		out := obj.DeepCopy()
		out.Status = written.Status
		return true, out, nil
	})
	f.client.PrependReactor("patch", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		var written v1alpha1.VidraResource
		if err := json.Unmarshal(patch.GetPatch(), &written); err != nil {
			return true, nil, err
		}
		written.UID, written.Generation = types.UID("uid-"+patch.GetName()), 1
		f.mu.Lock()
		f.applied[patch.GetName()] = written.DeepCopy()
		f.mu.Unlock()
		return true, written.DeepCopy(), nil
	})
	factory := externalversions.NewSharedInformerFactory(f.client, 0)
	c, err := NewController(f.client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, source, f.recorder, nil, Options{})
	assert.NilError(t, err)
	c.clock = clocktesting.NewFakePassiveClock(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	f.c = c
	return f
}

// pass runs one sync pass with the sync as last written.
func (f *decisionFixture) pass() {
	f.t.Helper()
	current := f.obj.DeepCopy()
	f.mu.Lock()
	current.Status = f.status
	f.mu.Unlock()
	_, err := settle(f.t, f.c, func() *v1alpha1.InfrahubSync { return current })
	assert.NilError(f.t, err)
}

func (f *decisionFixture) ready() *metav1.Condition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return meta.FindStatusCondition(f.status.Conditions, v1alpha1.ConditionReady)
}

// seed puts a VidraResource of the sync into the informer cache.
func (f *decisionFixture) seed(vr *v1alpha1.VidraResource) {
	f.t.Helper()
	isController := true
	vr.OwnerReferences = []metav1.OwnerReference{{Kind: "InfrahubSync", Name: f.obj.Name, UID: f.obj.UID, Controller: &isController}}
	assert.NilError(f.t, f.c.vrIndex.Add(vr))
}

func (f *decisionFixture) events() []string {
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

var goodSum = infrahub.Checksum(fixedContent)

func TestSyncDecisionsOnArtifactStates(t *testing.T) {
	tests := []struct {
		name      string
		artifacts []infrahub.Artifact
		// wantWritten are the artifact ids a VidraResource is written for.
		wantWritten []string
		wantReason  string
		wantMessage string
		wantEvent   string
	}{
		{
			name: "Error with a valid checksum and storage id is applied",
			artifacts: []infrahub.Artifact{
				{ID: "a1", Status: infrahub.StatusError, Checksum: goodSum, StorageID: "s1", TargetLabel: "one"},
				{ID: "a2", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s2", TargetLabel: "two"},
			},
			wantWritten: []string{"a1", "a2"},
			wantReason:  ReasonResourcesNotReady,
		},
		{
			name: "Error never generated, Pending: kept, not applied",
			artifacts: []infrahub.Artifact{
				{ID: "a1", Status: infrahub.StatusError, TargetLabel: "one"},
				{ID: "a2", Status: infrahub.StatusPending, TargetLabel: "two"},
			},
			wantReason:  ReasonArtifactsNotReady,
			wantMessage: "artifact a1 (one) is Error",
		},
		{
			name:        "no artifact of the name: NoArtifacts with a warning",
			wantReason:  ReasonNoArtifacts,
			wantMessage: `no artifact named "Webserver_Manifest" on branch trunk`,
			wantEvent:   "Warning NoArtifacts",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDecisionFixture(t, &countingSource{artifacts: tc.artifacts, defaultBranch: "trunk"})
			f.pass()
			var written []string
			for _, vr := range f.applied {
				written = append(written, vr.Spec.Source.ArtifactID)
				assert.Equal(t, vr.Spec.Source.Branch, "trunk", "the default branch by Infrahub's name")
				assert.Equal(t, vr.Spec.Manifest, string(fixedContent))
			}
			assertSameSet(t, written, tc.wantWritten)
			cond := f.ready()
			assert.Equal(t, cond.Reason, tc.wantReason, cond.Message)
			assert.Equal(t, cond.Status, metav1.ConditionFalse)
			if tc.wantMessage != "" {
				assert.Assert(t, is.Contains(cond.Message, tc.wantMessage))
			}
			if tc.wantEvent != "" {
				assert.Assert(t, is.Contains(strings.Join(f.events(), "\n"), tc.wantEvent))
			}
			for _, row := range f.status.Artifacts {
				for _, a := range tc.artifacts {
					if a.ID == row.ID {
						assert.Equal(t, row.Status, a.Status, "the artifact's state is in the status")
					}
				}
			}
			assert.Equal(t, f.c.BranchOf("web"), "trunk")
		})
	}
}

// The Ready message names the artifacts in Error whose content is applied.
func TestSummarizeNamesErroredArtifacts(t *testing.T) {
	f := newDecisionFixture(t, &countingSource{})
	r := f.c.summarize(f.obj, []infrahub.Artifact{{ID: "a1"}}, nil, nil, nil,
		[]string{"artifact a1 (one)"}, map[string]bool{}, false, "main")
	assert.Assert(t, r.Ready)
	assert.Equal(t, r.Message, "Synced 1 artifact; 1 artifact in Error in Infrahub, their last good content is applied: artifact a1 (one)")
}

// A VidraResource whose manifest was edited by hand is rewritten even
// though the artifact did not change; one that matches is left alone.
func TestEditedManifestIsRewritten(t *testing.T) {
	for _, tc := range []struct {
		manifest  string
		wantWrite bool
	}{
		{manifest: string(fixedContent), wantWrite: false},
		{manifest: strings.Replace(string(fixedContent), "name: c", "name: edited", 1), wantWrite: true},
		{manifest: "", wantWrite: true},
	} {
		a := infrahub.Artifact{ID: "a1", Name: "Webserver_Manifest", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s1", TargetLabel: "one"}
		f := newDecisionFixture(t, &countingSource{artifacts: []infrahub.Artifact{a}})
		vr := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid", Generation: 1,
			Labels: resourceLabels(f.obj, a)}, Spec: desiredSpec(f.obj, a, "main")}
		vr.Spec.Manifest = tc.manifest
		f.seed(vr)
		f.pass()
		assert.Equal(t, len(f.applied) == 1, tc.wantWrite, "manifest %q", tc.manifest)
		assert.Equal(t, f.source.downloads == 1, tc.wantWrite)
		if tc.wantWrite {
			assert.Equal(t, f.applied[vr.Name].Spec.Manifest, string(fixedContent))
		}
	}
}

// A sync being deleted neither lists Infrahub nor writes anything.
func TestDeletingSyncDoesNothing(t *testing.T) {
	now := metav1.Now()
	source := &countingSource{artifacts: []infrahub.Artifact{{ID: "a1", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s1"}}}
	f := newDecisionFixture(t, source, func(s *v1alpha1.InfrahubSync) {
		s.DeletionTimestamp = &now
		s.Finalizers = []string{"example.com/keep"}
	})
	f.pass()
	assert.Equal(t, source.lists, 0)
	assert.Equal(t, len(f.client.Actions()), 0)
}

// Interval polls ask with X-Priority low; passes somebody asked for
// (first pass, trigger) with the normal priority.
func TestPollPriority(t *testing.T) {
	source := &countingSource{artifacts: []infrahub.Artifact{{ID: "a1", Status: infrahub.StatusPending}}}
	f := newDecisionFixture(t, source)
	f.pass() // first: asked for
	f.c.clock.(*clocktesting.FakePassiveClock).SetTime(f.c.clock.Now().Add(2 * time.Minute))
	f.pass() // the interval passed: background
	f.c.Trigger("web")
	f.pass() // a webhook asked
	assert.DeepEqual(t, source.priorities, []infrahub.Priority{"", infrahub.PriorityLow, ""})
}

func assertSameSet(t *testing.T, got, want []string) {
	t.Helper()
	g, w := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	assert.DeepEqual(t, g, w)
}
