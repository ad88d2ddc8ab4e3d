package workloop

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
