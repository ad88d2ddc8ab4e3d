// Package endpointjobs runs a controller's slow reads of remote sources
// (listing and downloading from an Infrahub, fetching a Git remote) as jobs
// off the worker pool, so a slow, failing or hanging remote never holds a
// worker that another object needs.
//
// A worker asks for the outcome of a job with Poll: the first call starts
// the job and returns at once; when the job finishes, the key is handed
// back to the controller (Done), whose next pass takes the outcome. Jobs are
// keyed by a source-neutral endpoint string (a URL): requests to one
// endpoint are bounded by Acquire, and the first success on an endpoint
// hands back the keys whose last job failed there (Recovered), so they do
// not wait out their error backoff.
package endpointjobs

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Config wires a Runner to its controller.
type Config struct {
	// PerEndpoint bounds the requests in flight to one endpoint; 0 means 8.
	PerEndpoint int
	// Done is called when a job of key finished: the controller processes
	// key again and takes the outcome.
	Done func(key string)
	// Recovered is called for each key whose last job failed with an outage
	// of an endpoint that has just answered a job of another key: the
	// controller retries it now rather than after its backoff.
	Recovered func(key string)
	// IsOutage tells failures of the endpoint (down, overloaded, timing
	// out) from failures of one request (bad credentials, unknown name).
	// Nil counts every error.
	IsOutage func(error) bool
	// Clock stamps when jobs started; nil is the real clock.
	Clock clock.PassiveClock
}

// Result is the outcome of a finished job.
type Result struct {
	Value any
	Err   error
	// Started is when the job started: what it read is as of then.
	Started time.Time
}

// Runner runs jobs; it is safe for concurrent use.
type Runner struct {
	cfg Config

	mu    sync.Mutex
	slots map[string]chan struct{}
	jobs  map[jobID]*job
	// failing holds, per endpoint, the keys whose last job there failed
	// with an outage.
	failing map[string]map[string]bool
}

type jobID struct{ key, kind string }

type job struct {
	endpoint    string
	fingerprint string
	cancel      context.CancelFunc
	done        bool
	result      Result
}

// New returns a Runner.
func New(cfg Config) *Runner {
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 8
	}
	if cfg.Done == nil {
		cfg.Done = func(string) {}
	}
	if cfg.Recovered == nil {
		cfg.Recovered = func(string) {}
	}
	if cfg.IsOutage == nil {
		cfg.IsOutage = func(error) bool { return true }
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Runner{cfg: cfg, slots: map[string]chan struct{}{}, jobs: map[jobID]*job{}, failing: map[string]map[string]bool{}}
}

// Poll returns the outcome of key's job of this kind made for fingerprint,
// and forgets the job. Otherwise it returns false: the job is running, or
// has just been started with run on ctx, replacing (and cancelling) a job
// made for another fingerprint; Done(key) is called when it finishes.
// fingerprint names everything the job reads, so a changed object never
// takes the outcome of a job made for its previous version.
func (r *Runner) Poll(ctx context.Context, key, kind, endpoint, fingerprint string, run func(ctx context.Context) (any, error)) (Result, bool) {
	id := jobID{key, kind}
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.jobs[id]; j != nil {
		if j.fingerprint == fingerprint && j.endpoint == endpoint {
			if !j.done {
				return Result{}, false
			}
			delete(r.jobs, id)
			return j.result, true
		}
		j.cancel()
		delete(r.jobs, id)
	}
	jctx, cancel := context.WithCancel(ctx)
	j := &job{endpoint: endpoint, fingerprint: fingerprint, cancel: cancel}
	r.jobs[id] = j
	started := r.cfg.Clock.Now()
	go func() {
		defer cancel()
		value, err := run(jctx)
		r.finish(id, j, Result{Value: value, Err: err, Started: started})
	}()
	return Result{}, false
}

func (r *Runner) finish(id jobID, j *job, res Result) {
	r.mu.Lock()
	if r.jobs[id] != j {
		// Replaced or cancelled: nobody waits for this outcome.
		r.mu.Unlock()
		return
	}
	j.done, j.result = true, res
	var recovered []string
	switch {
	case res.Err == nil:
		for key := range r.failing[j.endpoint] {
			if key != id.key {
				recovered = append(recovered, key)
			}
		}
		delete(r.failing, j.endpoint)
	case r.cfg.IsOutage(res.Err):
		if r.failing[j.endpoint] == nil {
			r.failing[j.endpoint] = map[string]bool{}
		}
		r.failing[j.endpoint][id.key] = true
	default:
		delete(r.failing[j.endpoint], id.key)
	}
	r.mu.Unlock()
	r.cfg.Done(id.key)
	for _, key := range recovered {
		r.cfg.Recovered(key)
	}
}

// Running reports whether key has a job that has not finished.
func (r *Runner) Running(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, j := range r.jobs {
		if id.key == key && !j.done {
			return true
		}
	}
	return false
}

// Drop cancels and forgets key's job of this kind, finished or not.
func (r *Runner) Drop(key, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.jobs[jobID{key, kind}]; j != nil {
		j.cancel()
		delete(r.jobs, jobID{key, kind})
	}
}

// Forget cancels and forgets every job of key, and its failures: the
// object is gone or no longer reads its endpoint.
func (r *Runner) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, j := range r.jobs {
		if id.key == key {
			j.cancel()
			delete(r.jobs, id)
		}
	}
	for endpoint, keys := range r.failing {
		delete(keys, key)
		if len(keys) == 0 {
			delete(r.failing, endpoint)
		}
	}
}

// Acquire waits for one of the endpoint's request slots, or for ctx to
// end; release gives the slot back. Waiting holds no worker: only the
// job's goroutine waits.
func (r *Runner) Acquire(ctx context.Context, endpoint string) (release func(), err error) {
	r.mu.Lock()
	slots := r.slots[endpoint]
	if slots == nil {
		slots = make(chan struct{}, r.cfg.PerEndpoint)
		r.slots[endpoint] = slots
	}
	r.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
