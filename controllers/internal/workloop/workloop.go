// Package workloop is the worker loop shared by Vidra's controllers: take a
// key, sync it, and requeue it with backoff on error or after the interval
// the sync asked for.
package workloop

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SyncFunc reconciles one key. A non-nil error requeues with backoff; else a
// positive requeueAfter requeues after that long.
type SyncFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// Overall token bucket of every queue: sustained requeues per second and
// burst. It only bites when many keys fail at once, so a storm of failures
// cannot hammer the API servers, while one failing key still backs off on
// its own.
const (
	overallQPS   = 10
	overallBurst = 100
)

// NewQueue returns a named, typed rate-limited queue. Its limiter is the
// larger of a per-key exponential backoff from base to max (a failing
// object backs off without slowing the others) and an overall token bucket
// (many failing objects together are spread out). The name makes its
// workqueue metrics appear.
func NewQueue(name string, base, max time.Duration) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(RateLimiter(base, max),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
	)
}

// RateLimiter is the limiter of NewQueue.
func RateLimiter(base, max time.Duration) workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](base, max),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(overallQPS), overallBurst)},
	)
}

// Run waits for the caches, starts workers running worker until ctx is
// done, and blocks until then. The queue is drained on return, so in-flight
// items finish.
func Run(ctx context.Context, name string, workers int, queue workqueue.TypedRateLimitingInterface[string],
	synced []cache.InformerSynced, worker func(context.Context)) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer queue.ShutDownWithDrain()
	logger := klog.FromContext(ctx)
	logger.Info("Starting controller", "controller", name, "workers", workers)
	if !cache.WaitForNamedCacheSyncWithContext(ctx, synced...) {
		return fmt.Errorf("%s: caches did not sync", name)
	}
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, worker, time.Second)
	}
	<-ctx.Done()
	logger.Info("Stopping controller", "controller", name)
	return nil
}

// ProcessNextWorkItem takes one key off the queue and syncs it. It returns
// false when the queue is shutting down.
func ProcessNextWorkItem(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], sync SyncFunc) bool {
	key, shutdown := queue.Get()
	if shutdown {
		return false
	}
	defer queue.Done(key)

	requeueAfter, err := sync(ctx, key)
	switch {
	case errors.Is(err, ErrWaiting):
		// A job started by the sync hands the key back when it finishes;
		// the key's backoff stays as it is.
	case err != nil && apierrors.IsConflict(err):
		// Someone wrote the object since the cache saw it: routine, retry
		// once the cache caught up.
		queue.AddRateLimited(key)
		klog.FromContext(ctx).V(4).Info("Write conflict, requeuing", "key", key, "err", err)
	case err != nil:
		retries := queue.NumRequeues(key)
		queue.AddRateLimited(key)
		logRetry(ctx, key, retries, err)
	case requeueAfter > 0:
		queue.Forget(key)
		queue.AddAfter(key, requeueAfter)
	default:
		queue.Forget(key)
	}
	return true
}

// ErrWaiting is returned by a sync that started (or waits for) a job off
// the worker pool which requeues the key when it finishes: the key is
// neither requeued nor has its error backoff reset.
var ErrWaiting = errors.New("waiting for a job that requeues the key")

// CapBackoff limits the delays of inner per key: a key is never retried
// later than limit(key) (0: no limit), e.g. a sync's polling interval, so
// a peer that recovers is read again within the interval.
func CapBackoff(inner workqueue.TypedRateLimiter[string], limit func(key string) time.Duration) workqueue.TypedRateLimiter[string] {
	return &cappedLimiter{TypedRateLimiter: inner, limit: limit}
}

type cappedLimiter struct {
	workqueue.TypedRateLimiter[string]
	limit func(string) time.Duration
}

func (l *cappedLimiter) When(key string) time.Duration {
	d := l.TypedRateLimiter.When(key)
	if max := l.limit(key); max > 0 && d > max {
		return max
	}
	return d
}

// NewQueueWithLimiter is NewQueue with the given limiter.
func NewQueueWithLimiter(name string, limiter workqueue.TypedRateLimiter[string]) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
	)
}

// Expected marks err as an expected, retried failure (the object is
// stalled on the user, or a peer is down): it is logged at info level and
// the key is retried with backoff. Status conditions carry the details.
func Expected(err error) error {
	if err == nil {
		return nil
	}
	return &expectedError{err}
}

type expectedError struct{ err error }

func (e *expectedError) Error() string { return e.err.Error() }
func (e *expectedError) Unwrap() error { return e.err }

// logRetry logs a failed sync that will be retried with backoff. Every sync
// error is handled: the status says why and the key is retried, so none is
// logged as an unhandled error. A key failing again and again is logged on
// attempts 1, 2, 3, 5, 9, 17... (and at -v=2 on every one), so a wrong
// password does not fill the log. A sync cut short by shutdown is not a
// failure.
func logRetry(ctx context.Context, key string, retries int, err error) {
	logger := klog.FromContext(ctx)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		logger.V(2).Info("Sync interrupted by shutdown", "key", key)
		return
	}
	var expected *expectedError
	msg := "Sync failed, retrying with backoff"
	if errors.As(err, &expected) {
		msg = "Sync not complete, rechecking with backoff"
	}
	if retries&(retries-1) != 0 {
		logger.V(2).Info(msg, "key", key, "attempt", retries+1, "err", err)
		return
	}
	logger.Info(msg, "key", key, "attempt", retries+1, "err", err)
}

// Jitter spreads periodic requeues of many objects over ±10% of the interval
// so they do not all fire together.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d) / 5
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}

// Recover turns a panic in a sync into an error so one bad object cannot
// kill a worker.
func Recover(ctx context.Context, key string, err *error) {
	if r := recover(); r != nil {
		klog.FromContext(ctx).Error(nil, "Sync panicked", "key", key, "panic", r)
		*err = fmt.Errorf("sync %s panicked: %v", key, r)
	}
}
