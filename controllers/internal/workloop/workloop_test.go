package workloop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

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
