package infrahubsync

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
	"github.com/vidra-operator/vidra/infrahub"
)

// gatedSource is one Infrahub whose answers the test releases: while gated,
// each listing and download blocks until the test sends its outcome (or
// the request's context ends).
type gatedSource struct {
	artifacts []infrahub.Artifact
	// listGate and fetchGate, when not nil, deliver the outcome of each
	// request in turn.
	listGate, fetchGate chan error
	// started receives the kind of each request as it starts.
	started chan string
	// cancelled receives the context error of each request cut short.
	cancelled chan error

	mu      sync.Mutex
	lists   int
	fetches int
}

func newGatedSource(gated bool, artifacts ...infrahub.Artifact) *gatedSource {
	s := &gatedSource{artifacts: artifacts, started: make(chan string, 64), cancelled: make(chan error, 64)}
	if gated {
		s.listGate, s.fetchGate = make(chan error), make(chan error)
	}
	return s
}

func (s *gatedSource) wait(ctx context.Context, gate chan error) error {
	if gate == nil {
		return nil
	}
	select {
	case err := <-gate:
		return err
	case <-ctx.Done():
		s.cancelled <- ctx.Err()
		return ctx.Err()
	}
}

func (s *gatedSource) ResolveBranch(_ context.Context, name string) (string, error) {
	if name == "" {
		return "main", nil
	}
	return name, nil
}

func (s *gatedSource) ListArtifacts(ctx context.Context, _ infrahub.ListOptions) ([]infrahub.Artifact, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	s.started <- "list"
	if err := s.wait(ctx, s.listGate); err != nil {
		return nil, err
	}
	return s.artifacts, nil
}

func (s *gatedSource) FetchContent(ctx context.Context, _ infrahub.Artifact, _ infrahub.ListOptions) ([]byte, error) {
	s.mu.Lock()
	s.fetches++
	s.mu.Unlock()
	s.started <- "fetch"
	if err := s.wait(ctx, s.fetchGate); err != nil {
		return nil, err
	}
	return fixedContent, nil
}

// endpoints hands out one gatedSource per Infrahub URL.
type endpoints map[string]*gatedSource

func (e endpoints) Source(cfg infrahub.Config) (Source, error) {
	if s, ok := e[cfg.BaseURL]; ok {
		return s, nil
	}
	return nil, errors.New("no such Infrahub")
}

const (
	slowURL    = "http://slow.invalid"
	healthyURL = "http://healthy.invalid"
)

// isolationFixture is a controller over several syncs and Infrahubs, with
// the syncs in the lister as the workers see them.
type isolationFixture struct {
	t           *testing.T
	c           *Controller
	syncs       map[string]*v1alpha1.InfrahubSync
	syncIndexer cache.Indexer
	client      *fake.Clientset
}

func newIsolationFixture(t *testing.T, sources endpoints, opts Options, syncs ...*v1alpha1.InfrahubSync) *isolationFixture {
	t.Helper()
	f := &isolationFixture{t: t, syncs: map[string]*v1alpha1.InfrahubSync{}}
	f.client = fake.NewClientset()
	// The fake cannot apply without a schema: answer with the object sent.
	f.client.PrependReactor("patch", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		if patch.GetResource().Resource == "vidraresources" {
			var vr v1alpha1.VidraResource
			if err := json.Unmarshal(patch.GetPatch(), &vr); err != nil {
				return true, nil, err
			}
			vr.UID, vr.Generation = types.UID("uid-"+patch.GetName()), 1
			return true, &vr, nil
		}
		var s v1alpha1.InfrahubSync
		if err := json.Unmarshal(patch.GetPatch(), &s); err != nil {
			return true, nil, err
		}
		return true, &s, nil
	})
	factory := externalversions.NewSharedInformerFactory(f.client, 0)
	c, err := NewController(f.client, factory.Infrahub().V1alpha1().InfrahubSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		nil, sources, nil, nil, opts)
	assert.NilError(t, err)
	c.clock = clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC))
	f.syncIndexer = factory.Infrahub().V1alpha1().InfrahubSyncs().Informer().GetIndexer()
	for _, s := range syncs {
		f.syncs[s.Name] = s
		assert.NilError(t, f.syncIndexer.Add(s))
	}
	f.c = c
	t.Cleanup(c.queue.ShutDown)
	return f
}

func syncOn(name, url string) *v1alpha1.InfrahubSync {
	return &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name + "-uid"), Generation: 1},
		Spec: v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{
			InfrahubAPIURL: url, ArtifactName: "Webserver_Manifest",
		}},
	}
}

// handler runs one worker pass of key, as processNextWorkItem would.
func (f *isolationFixture) handler(key string) (time.Duration, error) {
	return f.c.syncHandler(context.Background(), key)
}

// next takes the next key the controller hands back.
func (f *isolationFixture) next() string {
	key, _ := f.c.queue.Get()
	f.c.queue.Done(key)
	return key
}

var readyArtifact = infrahub.Artifact{ID: "a1", Name: "Webserver_Manifest", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s1", TargetLabel: "one"}

// Syncs whose Infrahub hangs return from their passes at once, holding no
// worker; with the slow Infrahub's slots all taken, a further sync there
// waits for a slot without a worker, and a sync on a healthy Infrahub lists
// and writes while they all wait.
func TestHangingInfrahubHoldsNoWorker(t *testing.T) {
	slow := newGatedSource(true, readyArtifact)
	healthy := newGatedSource(false, readyArtifact)
	f := newIsolationFixture(t, endpoints{slowURL: slow, healthyURL: healthy}, Options{EndpointConcurrency: 2},
		syncOn("slow-1", slowURL), syncOn("slow-2", slowURL), syncOn("slow-3", slowURL), syncOn("new", healthyURL))

	for _, name := range []string{"slow-1", "slow-2", "slow-3"} {
		_, err := f.handler(name)
		assert.Assert(t, errors.Is(err, workloop.ErrWaiting), "pass of %s: %v", name, err)
	}
	// Two listings reach the slow Infrahub; the third waits for a slot.
	assert.Equal(t, <-slow.started, "list")
	assert.Equal(t, <-slow.started, "list")
	assert.Equal(t, len(slow.started), 0)

	_, err := f.handler("new")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, f.next(), "new", "the healthy Infrahub's listing did not hand the sync back")
	_, err = f.handler("new")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting), "the download runs as a job too: %v", err)
	assert.Equal(t, f.next(), "new")
	_, err = f.handler("new")
	assert.NilError(t, err)
	assert.Equal(t, countVidraResourceWrites(f.client), 1, "the healthy sync did not write its VidraResource")

	// The slow Infrahub answers one listing: its slot goes to the third.
	slow.listGate <- nil
	assert.Equal(t, <-slow.started, "list")
	done := f.next()
	assert.Assert(t, strings.HasPrefix(done, "slow-"), "handed back %s", done)
	assert.Equal(t, f.c.queue.Len(), 0, "more than the answered listing handed its sync back")
}

// A slow download holds no worker either, and a sync changed while its
// listing is under way cancels it and lists again for the new version.
func TestSlowDownloadAndChangedSync(t *testing.T) {
	slow := newGatedSource(true, readyArtifact)
	f := newIsolationFixture(t, endpoints{slowURL: slow}, Options{}, syncOn("s", slowURL))

	_, err := f.handler("s")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, <-slow.started, "list")
	slow.listGate <- nil
	assert.Equal(t, f.next(), "s")
	_, err = f.handler("s")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting), "the pass waited for the download: %v", err)
	assert.Equal(t, <-slow.started, "fetch")
	_, err = f.handler("s") // e.g. a VidraResource event: the download is not started twice
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	slow.fetchGate <- nil
	assert.Equal(t, f.next(), "s")
	_, err = f.handler("s")
	assert.NilError(t, err)
	assert.Equal(t, slow.fetches, 1)
	assert.Equal(t, countVidraResourceWrites(f.client), 1)

	// A new generation asks again; changed once more while listing, the
	// old listing is cancelled and its answer never used.
	changed := f.syncs["s"].DeepCopy()
	changed.Generation = 2
	_, err = f.c.sync(context.Background(), changed)
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, <-slow.started, "list")
	changed = changed.DeepCopy()
	changed.Generation = 3
	_, err = f.c.sync(context.Background(), changed)
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, <-slow.cancelled, context.Canceled)
	assert.Equal(t, <-slow.started, "list")
}

// A deleted sync cancels its listing under way.
func TestDeletedSyncCancelsItsListing(t *testing.T) {
	slow := newGatedSource(true, readyArtifact)
	f := newIsolationFixture(t, endpoints{slowURL: slow}, Options{}, syncOn("gone", slowURL))
	_, err := f.handler("gone")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, <-slow.started, "list")

	assert.NilError(t, f.syncIndexer.Delete(f.syncs["gone"]))
	_, err = f.handler("gone")
	assert.NilError(t, err)
	assert.Equal(t, <-slow.cancelled, context.Canceled)
	assert.Assert(t, !f.c.jobs.Running("gone"))
}

// transientErr is how the client reports an Infrahub that is down.
var transientErr = &infrahub.Error{Kind: infrahub.KindTransient, Message: "503 Service Unavailable"}

// A sync whose Infrahub was down is retried as soon as another sync reads
// that Infrahub again, its backoff forgotten; its error backoff never
// exceeds its interval.
func TestRecoveredInfrahubRetriesItsSyncsAtOnce(t *testing.T) {
	infra := newGatedSource(true, readyArtifact)
	down := syncOn("down", slowURL)
	down.Spec.Interval = &metav1.Duration{Duration: 30 * time.Second}
	f := newIsolationFixture(t, endpoints{slowURL: infra}, Options{}, down, syncOn("later", slowURL))

	_, err := f.handler("down")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	<-infra.started
	infra.listGate <- transientErr
	assert.Equal(t, f.next(), "down")
	_, err = f.handler("down")
	assert.ErrorContains(t, err, "503")
	// As the worker does with an error.
	f.c.queue.AddRateLimited("down")
	f.c.queue.AddRateLimited("down")
	assert.Equal(t, f.c.queue.NumRequeues("down"), 2)
	assert.Equal(t, f.c.backoffCap("down"), 30*time.Second)
	assert.Equal(t, f.c.backoffCap("later"), time.Minute)
	assert.Equal(t, f.c.backoffCap("unknown"), time.Duration(0))

	// Infrahub is back: the next sync that reads it succeeds.
	_, err = f.handler("later")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	<-infra.started
	infra.listGate <- nil
	got := map[string]bool{f.next(): true, f.next(): true}
	assert.DeepEqual(t, got, map[string]bool{"down": true, "later": true})
	assert.Equal(t, f.c.queue.NumRequeues("down"), 0, "the backoff of the recovered sync was kept")
}

// Every sync that failed on an Infrahub which is down stays on its own
// backoff while no request there succeeds.
func TestFailuresElsewhereRecoverNothing(t *testing.T) {
	infra := newGatedSource(true, readyArtifact)
	other := newGatedSource(false, readyArtifact)
	f := newIsolationFixture(t, endpoints{slowURL: infra, healthyURL: other}, Options{}, syncOn("down", slowURL), syncOn("ok", healthyURL))
	_, _ = f.handler("down")
	<-infra.started
	infra.listGate <- transientErr
	assert.Equal(t, f.next(), "down")
	_, err := f.handler("down")
	assert.ErrorContains(t, err, "503")

	_, err = f.handler("ok")
	assert.Assert(t, errors.Is(err, workloop.ErrWaiting))
	assert.Equal(t, f.next(), "ok")
	assert.Equal(t, f.c.queue.Len(), 0, "a success on another Infrahub brought back the failing sync")
}
