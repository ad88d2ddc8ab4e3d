package workloop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// The limiter is the larger of the per-key backoff and the overall bucket:
// one key backs off exponentially; many keys at once are spread out.
func TestRateLimiterIsMaxOfPerItemAndOverall(t *testing.T) {
	rl := RateLimiter(time.Second, time.Hour)
	assert.Equal(t, rl.When("a"), time.Second)
	assert.Equal(t, rl.When("a"), 2*time.Second)
	assert.Equal(t, rl.When("a"), 4*time.Second)
	rl.Forget("a")
	assert.Equal(t, rl.When("a"), time.Second)

	rl = RateLimiter(time.Nanosecond, time.Nanosecond)
	for i := 0; i < overallBurst; i++ {
		rl.When(fmt.Sprint(i))
	}
	assert.Assert(t, rl.When("one too many") > 10*time.Millisecond, "the overall bucket does not limit")
}

// A sync failing with a wrapped write conflict is requeued with backoff,
// and the conflict is still recognisable through the wrapping.
func TestWrappedConflictIsRequeued(t *testing.T) {
	q := NewQueue("test", time.Millisecond, time.Second)
	defer q.ShutDown()
	q.Add("k")
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "cm", errors.New("modified"))
	err := fmt.Errorf("sync k: %w", errors.Join(fmt.Errorf("apply cm: %w", conflict)))
	assert.Assert(t, apierrors.IsConflict(err))
	ProcessNextWorkItem(context.Background(), q, func(context.Context, string) (time.Duration, error) { return 0, err })
	assert.Equal(t, q.NumRequeues("k"), 1)
}

// testLogger logs at the default verbosity into a buffer.
func testLogger(t *testing.T) (context.Context, func() string) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(0), ktesting.BufferLogs(true)))
	return klog.NewContext(context.Background(), logger), func() string {
		return logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	}
}

// A failing key is retried with backoff and logged at info level, never as
// an unhandled error, on attempts 1, 2, 3, 5 and 9 of 10 at the default
// verbosity.
func TestRetriedErrorsAreInfoAndThinned(t *testing.T) {
	ctx, logs := testLogger(t)
	queue := NewQueue("test", time.Millisecond, time.Millisecond)
	defer queue.ShutDown()
	wrong := errors.New(`Infrahub rejected the credentials of Secret "creds" (401)`)
	for range 10 {
		queue.Add("k")
		ProcessNextWorkItem(ctx, queue, func(context.Context, string) (time.Duration, error) { return 0, wrong })
		// The retry waits for its backoff; take it out of the way.
		for queue.Len() == 0 {
			time.Sleep(time.Millisecond)
		}
		k, _ := queue.Get()
		queue.Done(k)
	}
	out := logs()
	assert.Equal(t, strings.Count(out, "Sync failed, retrying with backoff"), 5, out)
	for _, attempt := range []int{1, 2, 3, 5, 9} {
		assert.Assert(t, strings.Contains(out, fmt.Sprintf("attempt=%d ", attempt)), "attempt %d not logged:\n%s", attempt, out)
	}
	assert.Assert(t, !strings.Contains(out, "UnhandledError"), out)
	assert.Assert(t, !strings.Contains(out, "ERROR"), out)
}

// Expected failures say so; a sync cut short by shutdown logs nothing.
func TestExpectedAndShutdown(t *testing.T) {
	ctx, logs := testLogger(t)
	queue := NewQueue("test", time.Hour, time.Hour)
	defer queue.ShutDown()
	queue.Add("stalled")
	ProcessNextWorkItem(ctx, queue, func(context.Context, string) (time.Duration, error) {
		return 0, Expected(errors.New("1 object not owned by Vidra"))
	})
	assert.Assert(t, strings.Contains(logs(), "Sync not complete, rechecking with backoff"), logs())
	assert.Equal(t, queue.NumRequeues("stalled"), 1, "retried with backoff")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before := logs()
	queue.Add("busy")
	ProcessNextWorkItem(cctx, queue, func(ctx context.Context, _ string) (time.Duration, error) {
		return 0, fmt.Errorf("apply: %w", ctx.Err())
	})
	assert.Equal(t, logs(), before, "shutdown logged")
}

// A sync waiting for its job is neither requeued nor forgiven: the key's
// error backoff goes on from where it was when the job hands it back.
func TestWaitingKeepsTheBackoff(t *testing.T) {
	q := NewQueue("test", time.Millisecond, time.Second)
	defer q.ShutDown()
	q.Add("k")
	ProcessNextWorkItem(context.Background(), q, func(context.Context, string) (time.Duration, error) {
		return 0, errors.New("peer down")
	})
	assert.Equal(t, q.NumRequeues("k"), 1)
	key, _ := q.Get() // the backoff of 1ms passed
	q.Done(key)
	q.Add("k")
	ProcessNextWorkItem(context.Background(), q, func(context.Context, string) (time.Duration, error) {
		return 0, fmt.Errorf("list: %w", ErrWaiting)
	})
	assert.Equal(t, q.NumRequeues("k"), 1, "waiting reset the backoff")
	assert.Equal(t, q.Len(), 0, "waiting requeued the key")
}

// The backoff of a key never exceeds its cap; keys without one keep the
// inner limiter's delays.
func TestCapBackoff(t *testing.T) {
	rl := CapBackoff(RateLimiter(time.Second, time.Hour), func(key string) time.Duration {
		if key == "capped" {
			return 3 * time.Second
		}
		return 0
	})
	var got, free []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, rl.When("capped"))
		free = append(free, rl.When("free"))
	}
	assert.DeepEqual(t, got, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second})
	assert.DeepEqual(t, free, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second})
	rl.Forget("capped")
	assert.Equal(t, rl.When("capped"), time.Second)
}
