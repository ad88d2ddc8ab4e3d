package endpointjobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	clocktesting "k8s.io/utils/clock/testing"
)

// fixture records what the Runner hands back.
type fixture struct {
	r         *Runner
	done      chan string
	recovered chan string
}

var errDown = errors.New("endpoint down")

func newFixture(perEndpoint int) *fixture {
	f := &fixture{done: make(chan string, 16), recovered: make(chan string, 16)}
	f.r = New(Config{
		PerEndpoint: perEndpoint,
		Done:        func(key string) { f.done <- key },
		Recovered:   func(key string) { f.recovered <- key },
		IsOutage:    func(err error) bool { return errors.Is(err, errDown) },
		Clock:       clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)),
	})
	return f
}

// blocking is a job that runs until its channel delivers an outcome.
type blocking struct {
	started chan struct{}
	finish  chan error
	ctxErr  chan error
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}), finish: make(chan error, 1), ctxErr: make(chan error, 1)}
}

func (b *blocking) run(ctx context.Context) (any, error) {
	close(b.started)
	select {
	case err := <-b.finish:
		return "listed", err
	case <-ctx.Done():
		b.ctxErr <- ctx.Err()
		return nil, ctx.Err()
	}
}

// The first Poll starts the job and returns at once; Polls while it runs
// start nothing; its end hands the key back, and the next Poll takes the
// outcome once.
func TestPollStartsOnceAndHandsTheOutcomeBack(t *testing.T) {
	f := newFixture(2)
	ctx := context.Background()
	job := newBlocking()
	_, ok := f.r.Poll(ctx, "a", "list", "http://one", "v1", job.run)
	assert.Assert(t, !ok)
	<-job.started
	_, ok = f.r.Poll(ctx, "a", "list", "http://one", "v1", func(context.Context) (any, error) {
		t.Error("a second job started while the first runs")
		return nil, nil
	})
	assert.Assert(t, !ok)
	assert.Assert(t, f.r.Running("a"))

	job.finish <- nil
	assert.Equal(t, <-f.done, "a")
	assert.Assert(t, !f.r.Running("a"))
	res, ok := f.r.Poll(ctx, "a", "list", "http://one", "v1", nil)
	assert.Assert(t, ok)
	assert.NilError(t, res.Err)
	assert.Equal(t, res.Value, "listed")
	assert.Equal(t, res.Started, time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC))

	// Taken: the next Poll starts a new job.
	again := newBlocking()
	_, ok = f.r.Poll(ctx, "a", "list", "http://one", "v1", again.run)
	assert.Assert(t, !ok)
	<-again.started
	f.r.Forget("a")
	assert.Equal(t, <-again.ctxErr, context.Canceled)
}

// A changed object (another fingerprint) cancels the job made for its
// previous version, whose outcome is never handed out.
func TestChangedFingerprintCancelsTheRunningJob(t *testing.T) {
	f := newFixture(2)
	ctx := context.Background()
	old := newBlocking()
	f.r.Poll(ctx, "a", "list", "http://one", "generation-1", old.run)
	<-old.started
	cur := newBlocking()
	_, ok := f.r.Poll(ctx, "a", "list", "http://one", "generation-2", cur.run)
	assert.Assert(t, !ok)
	assert.Equal(t, <-old.ctxErr, context.Canceled)
	<-cur.started
	cur.finish <- nil
	assert.Equal(t, <-f.done, "a")
	assert.Equal(t, len(f.done), 0, "the cancelled job handed the key back too")
	res, ok := f.r.Poll(ctx, "a", "list", "http://one", "generation-2", nil)
	assert.Assert(t, ok)
	assert.Equal(t, res.Value, "listed")
}

// Forget (the object was deleted) cancels its jobs; Drop cancels one kind.
func TestForgetAndDropCancel(t *testing.T) {
	f := newFixture(2)
	ctx := context.Background()
	list, download := newBlocking(), newBlocking()
	f.r.Poll(ctx, "a", "list", "http://one", "v1", list.run)
	f.r.Poll(ctx, "a", "download", "http://one", "v1", download.run)
	<-list.started
	<-download.started
	f.r.Drop("a", "download")
	assert.Equal(t, <-download.ctxErr, context.Canceled)
	assert.Assert(t, f.r.Running("a"), "Drop cancelled the other kind")
	f.r.Forget("a")
	assert.Equal(t, <-list.ctxErr, context.Canceled)
	assert.Assert(t, !f.r.Running("a"))
	assert.Equal(t, len(f.done), 0)
}

// Requests to one endpoint are bounded; another endpoint is not slowed,
// and a waiter gets the slot that is given back.
func TestAcquireBoundsEachEndpoint(t *testing.T) {
	f := newFixture(2)
	ctx := context.Background()
	r1, err := f.r.Acquire(ctx, "http://slow")
	assert.NilError(t, err)
	r2, err := f.r.Acquire(ctx, "http://slow")
	assert.NilError(t, err)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.r.Acquire(cancelled, "http://slow")
	assert.Equal(t, err, context.Canceled, "a third request to a full endpoint did not wait")

	other, err := f.r.Acquire(cancelled, "http://healthy")
	if err != nil {
		// select chose the cancelled context over the free slot; a free
		// slot must still be taken without waiting.
		other, err = f.r.Acquire(ctx, "http://healthy")
	}
	assert.NilError(t, err)
	other()

	got := make(chan func(), 1)
	go func() {
		release, err := f.r.Acquire(ctx, "http://slow")
		if err == nil {
			got <- release
		}
	}()
	r1()
	(<-got)()
	r2()
}

// The first success on an endpoint hands back the keys whose last job
// failed there with an outage; not those that failed for their own reasons,
// nor those failing on another endpoint.
func TestSuccessOnAnEndpointRecoversItsFailingKeys(t *testing.T) {
	f := newFixture(2)
	ctx := context.Background()
	finish := func(key, endpoint string, err error) {
		t.Helper()
		f.r.Poll(ctx, key, "list", endpoint, "v1", func(context.Context) (any, error) { return nil, err })
		assert.Equal(t, <-f.done, key)
		res, ok := f.r.Poll(ctx, key, "list", endpoint, "v1", nil)
		assert.Assert(t, ok)
		assert.Equal(t, res.Err, err)
	}
	finish("down-1", "http://one", errDown)
	finish("down-2", "http://one", errDown)
	finish("own-fault", "http://one", errors.New("unknown artifact name"))
	finish("elsewhere", "http://two", errDown)
	finish("gone", "http://one", errDown)
	f.r.Forget("gone")

	finish("healthy", "http://one", nil)
	got := map[string]bool{<-f.recovered: true, <-f.recovered: true}
	assert.DeepEqual(t, got, map[string]bool{"down-1": true, "down-2": true})
	assert.Equal(t, len(f.recovered), 0)

	// Handed back once: a second success recovers nobody.
	finish("healthy", "http://one", nil)
	assert.Equal(t, len(f.recovered), 0)
	// A key that failed and then succeeded itself is no longer failing.
	finish("elsewhere", "http://two", nil)
	finish("healthy-two", "http://two", nil)
	assert.Equal(t, len(f.recovered), 0)
}
