package infrahubsync

import (
	"context"
	"errors"
	"testing"
	"time"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
)

// settle runs passes of a sync as the workers would: a pass waiting for
// its Infrahub job is run again when the job hands the sync back. It
// returns the last pass's outcome.
func settle(t *testing.T, c *Controller, current func() *v1alpha1.InfrahubSync) (time.Duration, error) {
	t.Helper()
	for i := 0; i < 10; i++ {
		after, err := c.sync(context.Background(), current())
		if !errors.Is(err, workloop.ErrWaiting) {
			return after, err
		}
		// Blocks until a job (or a trigger) brings the sync back.
		key, _ := c.queue.Get()
		c.queue.Done(key)
	}
	t.Fatal("the sync still waits for Infrahub after 10 passes")
	return 0, nil
}
