package infrahubsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	gosync "sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/endpointjobs"
	"github.com/vidra-operator/vidra/infrahub"
)

// The Infrahub requests of a sync run as jobs off the worker pool (see
// endpointjobs): a slow, failing or hanging Infrahub only delays the syncs
// that read it.
const (
	jobList     = "list"
	jobDownload = "download"
)

// newJobs returns the runner of the controller's Infrahub requests: a
// finished job brings its sync back; an Infrahub that answers again brings
// back at once the syncs that failed because it was down.
func (c *Controller) newJobs() *endpointjobs.Runner {
	return endpointjobs.New(endpointjobs.Config{
		PerEndpoint: c.opts.EndpointConcurrency,
		Done:        c.queue.Add,
		Recovered: func(key string) {
			c.queue.Forget(key)
			c.queue.Add(key)
		},
		IsOutage: func(err error) bool {
			_, stalled := classify(err)
			return !stalled
		},
	})
}

// backoffCap keeps a failing sync's retries within its interval, so a sync
// whose Infrahub recovers is read again within the interval even when no
// other sync shows the recovery.
func (c *Controller) backoffCap(key string) time.Duration {
	sync, err := c.syncs.Get(key)
	if err != nil {
		return 0
	}
	return c.interval(sync)
}

// endpointOf names the Infrahub a connection reads: the slots and the
// health of the jobs are per endpoint.
func endpointOf(cfg infrahub.Config) string {
	return cfg.BaseURL
}

// listing is what a listing job read, and what the sync looked like when it
// started.
type listing struct {
	artifacts []infrahub.Artifact
	// opts are the options it listed with, the branch resolved.
	opts      infrahub.ListOptions
	triggers  uint64
	requested string
	// at is when the listing was started: the interval counts from then.
	at time.Time
}

// listFingerprint names what a listing depends on: another version of the
// sync (spec, connection) cancels a listing under way. Triggers and
// reconcile requests do not: they ask for one more listing afterwards.
func listFingerprint(sync *v1alpha1.InfrahubSync, cfgHash string, opts infrahub.ListOptions) string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%s\x00%s", sync.UID, sync.Generation, cfgHash, opts.Name, opts.Branch, sync.Spec.Source.TargetDate)
}

// startListing is the listing job: resolve the branch and list, holding one
// of the endpoint's slots.
func (c *Controller) startListing(sync *v1alpha1.InfrahubSync, cfg infrahub.Config, opts infrahub.ListOptions, background bool,
	triggers uint64, requested string, at time.Time) func(ctx context.Context) (any, error) {
	// The job reads only what it needs of the sync, never the object the
	// pass goes on to change.
	target := &v1alpha1.InfrahubSync{ObjectMeta: metav1.ObjectMeta{Name: sync.Name}}
	target.Spec.Source.TargetBranch = sync.Spec.Source.TargetBranch
	return func(ctx context.Context) (any, error) {
		release, err := c.jobs.Acquire(ctx, endpointOf(cfg))
		if err != nil {
			return nil, err
		}
		defer release()
		opts.Branch = c.branchOf(ctx, target, cfg)
		source, err := c.sources.Source(cfg)
		if err != nil {
			return nil, err
		}
		if background {
			// Background polling: Infrahub sheds it first under load. A
			// pass somebody asked for (webhook, reconcile request, spec
			// change) keeps the normal priority.
			ctx = infrahub.WithPriority(ctx, infrahub.PriorityLow)
		}
		artifacts, err := source.ListArtifacts(ctx, opts)
		if err != nil {
			return nil, err
		}
		return &listing{artifacts: dedupe(artifacts), opts: opts, triggers: triggers, requested: requested, at: at}, nil
	}
}

// fetched is the outcome of one download.
type fetched struct {
	content []byte
	err     error
}

// contentKey names one content of an artifact.
func contentKey(a infrahub.Artifact) string {
	return a.ID + "\x00" + a.Checksum + "\x00" + a.StorageID
}

// needsDownload reports whether writing the VidraResource of a needs its
// content: it is new or its checksum, storage id or manifest differ.
func (c *Controller) needsDownload(sync *v1alpha1.InfrahubSync, a infrahub.Artifact, existing *v1alpha1.VidraResource) bool {
	switch {
	case !a.HasContent():
		return false
	case existing != nil && existing.DeletionTimestamp != nil:
		return false
	case existing == nil:
		_, err := c.vrs.Get(ResourceName(sync.Name, a.ID))
		return err != nil // else another owner's: it is not written
	}
	return !sameContent(existing, a)
}

// downloads returns the contents this pass must write, downloaded by a job
// off the worker pool: while it runs, the pass returns ErrWaiting and the
// job's end brings the sync back.
func (c *Controller) downloads(ctx context.Context, sync *v1alpha1.InfrahubSync, artifacts []infrahub.Artifact,
	existing map[string]*v1alpha1.VidraResource, opts infrahub.ListOptions, cfg infrahub.Config) (map[string]fetched, bool) {
	var need []infrahub.Artifact
	for _, a := range artifacts {
		if c.needsDownload(sync, a, existing[a.ID]) {
			need = append(need, a)
		}
	}
	if len(need) == 0 {
		c.jobs.Drop(sync.Name, jobDownload)
		return nil, true
	}
	keys := make([]string, len(need))
	for i, a := range need {
		keys[i] = contentKey(a)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00%s\x00%s\x00", sync.UID, sync.Generation, configHash(cfg), opts.Branch, opts.At)
	for _, k := range keys {
		h.Write([]byte(k + "\x01"))
	}
	res, done := c.jobs.Poll(ctx, sync.Name, jobDownload, endpointOf(cfg), hex.EncodeToString(h.Sum(nil)), func(ctx context.Context) (any, error) {
		return c.download(ctx, cfg, need, opts)
	})
	if !done {
		return nil, false
	}
	got, _ := res.Value.(map[string]fetched)
	return got, true
}

// download fetches the contents of need, a few at once and within the
// endpoint's slots. It fails as a whole only when every download failed,
// so the endpoint's health sees an Infrahub that is down.
func (c *Controller) download(ctx context.Context, cfg infrahub.Config, need []infrahub.Artifact, opts infrahub.ListOptions) (map[string]fetched, error) {
	out := make(map[string]fetched, len(need))
	source, err := c.sources.Source(cfg)
	if err != nil {
		for _, a := range need {
			out[contentKey(a)] = fetched{err: err}
		}
		return out, err
	}
	var (
		mu        gosync.Mutex
		wg        gosync.WaitGroup
		succeeded bool
		lastErr   error
	)
	sem := make(chan struct{}, artifactParallelism)
	for _, a := range need {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var got fetched
			release, err := c.jobs.Acquire(ctx, endpointOf(cfg))
			if err != nil {
				got.err = err
			} else {
				got.content, got.err = source.FetchContent(ctx, a, opts)
				release()
			}
			mu.Lock()
			defer mu.Unlock()
			out[contentKey(a)] = got
			if got.err == nil {
				succeeded = true
			} else {
				lastErr = got.err
			}
		}()
	}
	wg.Wait()
	if !succeeded {
		return out, lastErr
	}
	return out, nil
}
