package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	gosync "sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
	"github.com/vidra-operator/vidra/controllers/internal/statusapply"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/infrahub"
)

// Condition reasons besides the ones shared with InfrahubSync.
const (
	ReasonSynced            = infrahubsync.ReasonSynced
	ReasonSuspended         = infrahubsync.ReasonSuspended
	ReasonCredentials       = infrahubsync.ReasonCredentials
	ReasonAuthentication    = infrahubsync.ReasonAuthentication
	ReasonEmptyListing      = infrahubsync.ReasonEmptyListing
	ReasonWriteFailed       = infrahubsync.ReasonWriteFailed
	ReasonResourcesNotReady = infrahubsync.ReasonResourcesNotReady
	ReasonNoManifests       = "NoManifests"
	ReasonRefNotFound       = "RefNotFound"
	ReasonPathNotFound      = "PathNotFound"
	ReasonUnreachable       = "RepositoryUnavailable"
	ReasonHostKeyUnknown    = "HostKeyUnknown"
	ReasonTooLarge          = "RepositoryTooLarge"
	ReasonTimeout           = "FetchTimeout"
	ReasonInvalid           = "InvalidRequest"
)

// parallelism bounds the content writes of one pass.
const parallelism = 8

// pollState is what the last pass learnt of the remote: where the ref
// pointed and the units of that commit, so a pass caused by a
// VidraResource changing asks nothing before the interval, and a ref that
// did not move is not fetched again.
type pollState struct {
	uid        string
	generation int64
	requested  string
	authHash   string
	triggers   uint64
	at         time.Time

	resolved gitrepo.Resolved
	message  string
	// snapshotKey says what the units were read from: URL, paths, layout
	// and commit. Units are reused while it holds.
	snapshotKey string
	units       []unit
}

// unit is one directory or file of a commit: a unit of the shared pipeline.
type unit struct {
	path     string
	files    int
	checksum string
	// content is nil for units known only from the status (after a
	// restart); it is fetched if a VidraResource needs it.
	content []byte
}

// manifestExtensions are the files read as manifests.
var manifestExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// unitsOf groups a commit's manifest files by layout: one unit per
// directory holding manifests, or one per file. A directory's manifest is
// its files in path order, each a YAML document introduced by its path.
func unitsOf(files []gitrepo.File, layout string) []unit {
	groups := map[string][]gitrepo.File{}
	for _, f := range files {
		if !manifestExtensions[strings.ToLower(path.Ext(f.Path))] {
			continue
		}
		key := f.Path
		if layout != v1alpha1.GitLayoutFile {
			key = path.Dir(f.Path)
		}
		groups[key] = append(groups[key], f)
	}
	out := make([]unit, 0, len(groups))
	for key, fs := range groups {
		sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
		var b strings.Builder
		for _, f := range fs {
			body := strings.TrimSpace(string(f.Content))
			if body == "" {
				continue
			}
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", f.Path, body)
		}
		content := []byte(b.String())
		out = append(out, unit{path: key, files: len(fs), checksum: infrahub.Checksum(content), content: content})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func refOf(r v1alpha1.GitRef) gitrepo.Ref {
	return gitrepo.Ref{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer, Commit: r.Commit}
}

func layoutOf(gs *v1alpha1.GitSync) string {
	if gs.Spec.Layout == v1alpha1.GitLayoutFile {
		return v1alpha1.GitLayoutFile
	}
	return v1alpha1.GitLayoutDirectory
}

func snapshotKey(gs *v1alpha1.GitSync, commit string) string {
	paths := append([]string(nil), gs.Spec.Paths...)
	sort.Strings(paths)
	return strings.Join([]string{gs.Spec.URL, strings.Join(paths, "\x01"), layoutOf(gs), commit}, "\x00")
}

// sync asks the remote where the ref points when due, fetches the commit
// only when it moved, writes one VidraResource per unit whose content
// changed, removes those whose unit is gone, and reports.
func (c *Controller) sync(ctx context.Context, gs *v1alpha1.GitSync) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	requested := gs.Annotations[v1alpha1.AnnotationReconcileRequestedAt]
	owned, err := c.ownedResources(gs)
	if err != nil {
		return 0, err
	}
	patch := infrahubsync.PatchBy(c.client.InfrahubV1alpha1().GitSyncs().Patch)
	if gs.DeletionTimestamp != nil {
		c.written.Forget(gs.UID)
		return c.writer().ReleaseDeleted(ctx, kind, gs, owned, patch)
	}
	if err := infrahubsync.EnsureSyncFinalizer(ctx, gs, patch); err != nil {
		return 0, err
	}
	if gs.Spec.Suspend {
		for _, vr := range owned {
			if !vr.Spec.Suspend && vr.DeletionTimestamp == nil {
				if _, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType,
					[]byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{FieldManager: v1alpha1.FieldManager}); err != nil {
					return 0, fmt.Errorf("suspend VidraResource %s: %w", vr.Name, err)
				}
			}
		}
		return 0, c.writeStatus(ctx, gs, conditions.Result{Suspended: true, Reason: ReasonSuspended,
			Message: "Suspended: the repository is not read and nothing is applied"}, requested)
	}

	auth, err := c.auth(gs)
	if err != nil {
		c.warnOnce(gs, ReasonCredentials, err.Error())
		_ = c.writeStatus(ctx, gs, conditions.Result{Stalled: true, Reason: ReasonCredentials, Message: err.Error()}, requested)
		return 0, workloop.Expected(err)
	}

	st, err := c.poll(ctx, gs, auth, requested)
	if err != nil {
		reason, stalled := classify(err)
		msg := redact(fmt.Sprintf("Reading %s of %s failed; nothing was changed: %v", refOf(gs.Spec.Ref), gs.Spec.URL, err), auth)
		c.warnOnce(gs, reason, msg)
		_ = c.writeStatus(ctx, gs, conditions.Result{Stalled: stalled, Reason: reason, Message: msg}, requested)
		return 0, workloop.Expected(errors.New(msg))
	}

	byID := map[string]*v1alpha1.VidraResource{}
	for _, vr := range owned {
		if vr.Spec.Source != nil {
			byID[vr.Spec.Source.ArtifactID] = vr
		}
	}
	writer := c.writer()
	owner := infrahubsync.OwnerOf(gs, kind, v1alpha1.VidraResourceSpec{
		Destination:   *gs.Spec.Destination.DeepCopy(),
		Suspend:       gs.Spec.Suspend,
		Prune:         gs.Spec.Prune,
		AdoptExisting: gs.Spec.AdoptExisting,
		Wait:          gs.Spec.Wait.DeepCopy(),
	})
	if v, ok := shard.Of(gs); ok {
		// Its VidraResources go to the instance of its shard.
		owner.Labels = map[string]string{shard.Label: v}
	} else {
		owner.Unset = []string{shard.Label}
	}
	content := c.contentOf(gs, auth, st)

	type outcome struct {
		wrote bool
		err   error
	}
	results := make([]outcome, len(st.units))
	present := map[string]bool{}
	now := c.clock.Now()
	sem := make(chan struct{}, parallelism)
	var wg gosync.WaitGroup
	for i, u := range st.units {
		present[u.path] = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			written, err := writer.Ensure(ctx, owner, infrahubsync.Unit{
				Source: v1alpha1.ArtifactSource{
					Sync: gs.Name, ArtifactID: u.path, ArtifactName: u.path,
					Branch: st.resolved.RefName, Checksum: u.checksum,
				},
				Label:   unitLabel(gs, u.path),
				Content: func(ctx context.Context) ([]byte, error) { return content(ctx, u) },
			}, infrahubsync.ResourceName(gs.Name, u.path), byID[u.path])
			if written != nil {
				c.written.Record(written, now)
			}
			results[i] = outcome{written != nil, err}
		}()
	}
	wg.Wait()

	var (
		changed  int
		problems []string
	)
	table := make([]v1alpha1.GitUnitStatus, 0, len(st.units))
	for i, u := range st.units {
		row := v1alpha1.GitUnitStatus{Path: u.path, Files: int32(u.files), Checksum: u.checksum}
		if existing := byID[u.path]; existing != nil {
			row.VidraResource = existing.Name
		}
		switch {
		case results[i].err != nil:
			problems = append(problems, redact(results[i].err.Error(), auth))
		case results[i].wrote:
			changed++
			row.VidraResource = infrahubsync.ResourceName(gs.Name, u.path)
		}
		table = append(table, row)
	}

	// Remove what left the repository, but never everything at once
	// unless the user allowed an empty commit.
	emptyGuard := len(st.units) == 0 && len(owned) > 0 && !gs.Spec.AllowEmpty
	prune := gs.Spec.Prune == nil || *gs.Spec.Prune
	removed := map[string]bool{}
	if !emptyGuard && prune {
		for _, vr := range owned {
			if vr.Spec.Source != nil && present[vr.Spec.Source.ArtifactID] || vr.DeletionTimestamp != nil {
				continue
			}
			if err := writer.Remove(ctx, vr); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			removed[vr.Name] = true
			c.written.Drop(vr.Name, vr.UID)
			changed++
			c.event(gs, corev1.EventTypeNormal, "Pruned", "Delete", "Removed VidraResource %s: its path is no longer in the repository at %s", vr.Name, short(st.resolved.Commit))
		}
	}

	result := c.summarize(gs, st, owned, problems, removed, emptyGuard)
	if result.Reason == ReasonNoManifests || result.Reason == ReasonEmptyListing {
		c.warnOnce(gs, result.Reason, result.Message)
	}
	if changed > 0 {
		what := fmt.Sprintf("%s created, updated or removed from commit %s", conditions.Count(changed, "VidraResource", ""), short(st.resolved.Commit))
		c.event(gs, corev1.EventTypeNormal, ReasonSynced, "Sync", "%s", what)
		logger.Info("GitSync read "+conditions.Count(len(st.units), "unit", ""), "sync", gs.Name, "changes", what)
	}
	if err := c.writeStatusAt(ctx, gs, st, table, result, requested, changed > 0); err != nil {
		return 0, err
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("sync %s: %s", gs.Name, strings.Join(problems, "; "))
	}
	return c.untilNextPoll(gs), nil
}

// poll returns the remote's state for the sync: the last one when no poll
// is due (interval not passed, spec, credentials and triggers unchanged),
// else it asks where the ref points and fetches the commit only when it
// is not the one whose units are known.
func (c *Controller) poll(ctx context.Context, gs *v1alpha1.GitSync, auth gitrepo.Auth, requested string) (*pollState, error) {
	hash := authHash(auth)
	now := c.clock.Now()
	c.mu.Lock()
	st := c.polls[gs.Name]
	triggers := c.triggers[gs.Name]
	asked := st == nil || st.triggers != triggers || st.uid != string(gs.UID) || st.generation != gs.Generation ||
		st.requested != requested || st.authHash != hash
	if !asked && now.Sub(st.at) < c.interval(gs) {
		c.mu.Unlock()
		return st, nil
	}
	c.mu.Unlock()

	forget := func() {
		c.mu.Lock()
		delete(c.polls, gs.Name)
		c.mu.Unlock()
	}
	resolved, err := c.remote.Resolve(ctx, gs.Spec.URL, auth, refOf(gs.Spec.Ref))
	if err != nil {
		forget()
		return nil, err
	}
	next := &pollState{uid: string(gs.UID), generation: gs.Generation, requested: requested, authHash: hash,
		triggers: triggers, at: now, resolved: resolved, snapshotKey: snapshotKey(gs, resolved.Commit)}
	switch {
	case st != nil && st.snapshotKey == next.snapshotKey:
		// The ref did not move: nothing to fetch.
		next.message, next.units = st.message, st.units
	case st == nil && fromStatus(gs, resolved.Commit):
		// Restarted: the status describes this very commit.
		next.message = gs.Status.CommitMessage
		for _, u := range gs.Status.Units {
			next.units = append(next.units, unit{path: u.Path, files: int(u.Files), checksum: u.Checksum})
		}
	default:
		snap, err := c.remote.Fetch(ctx, gs.Spec.URL, auth, resolved, gs.Spec.Paths)
		if err != nil {
			forget()
			return nil, err
		}
		if snap.Commit != "" && snap.Commit != resolved.Commit {
			// The ref moved between the two calls: what was read wins.
			next.resolved.Commit = snap.Commit
			next.snapshotKey = snapshotKey(gs, snap.Commit)
		}
		next.message = snap.Message
		next.units = unitsOf(snap.Files, layoutOf(gs))
	}
	c.mu.Lock()
	c.polls[gs.Name] = next
	c.mu.Unlock()
	return next, nil
}

// fromStatus reports whether the status holds the units of commit for the
// current spec, complete and without error.
func fromStatus(gs *v1alpha1.GitSync, commit string) bool {
	s := gs.Status
	return s.Commit == commit && s.ObservedGeneration == gs.Generation && s.LastError == "" && s.LastSyncTime != nil
}

// contentOf returns how a pass reads a unit's manifest: from the units in
// memory, or, for units known only from the status, by fetching the commit
// once for the whole pass.
func (c *Controller) contentOf(gs *v1alpha1.GitSync, auth gitrepo.Auth, st *pollState) func(context.Context, unit) ([]byte, error) {
	var (
		once    gosync.Mutex
		fetched map[string][]byte
		ferr    error
		done    bool
	)
	return func(ctx context.Context, u unit) ([]byte, error) {
		if u.content != nil {
			return u.content, nil
		}
		once.Lock()
		defer once.Unlock()
		if !done {
			done = true
			snap, err := c.remote.Fetch(ctx, gs.Spec.URL, auth, st.resolved, gs.Spec.Paths)
			if err != nil {
				ferr = err
			} else {
				fetched = map[string][]byte{}
				units := unitsOf(snap.Files, layoutOf(gs))
				for _, f := range units {
					fetched[f.path] = f.content
				}
				if snap.Commit == st.resolved.Commit {
					c.mu.Lock()
					if cur := c.polls[gs.Name]; cur == st {
						st.units = units
					}
					c.mu.Unlock()
				}
			}
		}
		if ferr != nil {
			return nil, ferr
		}
		data, ok := fetched[u.path]
		if !ok {
			return nil, fmt.Errorf("%s is not in commit %s any more", u.path, short(st.resolved.Commit))
		}
		return data, nil
	}
}

// untilNextPoll is how long until the sync's remote is due again.
func (c *Controller) untilNextPoll(gs *v1alpha1.GitSync) time.Duration {
	interval := c.interval(gs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.polls[gs.Name]; ok {
		if d := st.at.Add(interval).Sub(c.clock.Now()); d > 0 && d < interval {
			return workloop.Jitter(d)
		}
	}
	return workloop.Jitter(interval)
}

func (c *Controller) interval(gs *v1alpha1.GitSync) time.Duration {
	if gs.Spec.Interval != nil && gs.Spec.Interval.Duration > 0 {
		return gs.Spec.Interval.Duration
	}
	return c.opts.Interval
}

// classify maps a remote's error onto a condition reason, and whether the
// user must act (stalled) rather than wait for a retry.
func classify(err error) (string, bool) {
	switch {
	case errors.Is(err, gitrepo.ErrAuthentication):
		return ReasonAuthentication, true
	case errors.Is(err, gitrepo.ErrRefNotFound):
		return ReasonRefNotFound, true
	case errors.Is(err, gitrepo.ErrPathNotFound):
		return ReasonPathNotFound, true
	case errors.Is(err, gitrepo.ErrHostKeyUnknown):
		return ReasonHostKeyUnknown, true
	case errors.Is(err, gitrepo.ErrTooLarge):
		return ReasonTooLarge, true
	case errors.Is(err, gitrepo.ErrTimeout):
		return ReasonTimeout, false
	case errors.Is(err, gitrepo.ErrInvalid):
		return ReasonInvalid, true
	}
	return ReasonUnreachable, false
}

// summarize turns a pass into conditions.
func (c *Controller) summarize(gs *v1alpha1.GitSync, st *pollState, owned []*v1alpha1.VidraResource, problems []string, removed map[string]bool, emptyGuard bool) conditions.Result {
	at := "commit " + short(st.resolved.Commit)
	switch {
	case emptyGuard:
		return conditions.Result{Stalled: true, Reason: ReasonEmptyListing, Message: fmt.Sprintf(
			"%s has no manifests under %s; the existing VidraResources were kept. Set spec.allowEmpty to remove them",
			at, strings.Join(gs.Spec.Paths, ", "))}
	case len(st.units) == 0:
		return conditions.Result{Reason: ReasonNoManifests, Message: fmt.Sprintf(
			"%s has no .yaml, .yml or .json files under %s", at, strings.Join(gs.Spec.Paths, ", "))}
	case len(problems) > 0:
		return conditions.Result{Reason: ReasonWriteFailed, Summary: conditions.Count(len(problems), "VidraResource write", "VidraResource writes") + " failed",
			Message: strings.Join(problems, "; ")}
	}
	owned, err := c.ownedResources(gs)
	if err != nil {
		return conditions.Result{Reason: ReasonWriteFailed, Message: err.Error()}
	}
	if r, waiting := infrahubsync.ResourcesNotReady(owned, removed); waiting {
		return r
	}
	return conditions.Result{Ready: true, Reason: ReasonSynced, Message: fmt.Sprintf("Synced %s at %s", conditions.Count(len(st.units), "unit", ""), at)}
}

// writeStatus writes conditions only, keeping the last commit and units:
// for suspension and for passes that read nothing.
func (c *Controller) writeStatus(ctx context.Context, gs *v1alpha1.GitSync, r conditions.Result, requested string) error {
	return c.writeStatusAt(ctx, gs, nil, nil, r, requested, false)
}

// writeStatusAt writes the status when it changed, so an idle resync costs
// no write. st and table, when given, are the commit and units just read.
func (c *Controller) writeStatusAt(ctx context.Context, gs *v1alpha1.GitSync, st *pollState, table []v1alpha1.GitUnitStatus, r conditions.Result, requested string, changed bool) error {
	status := gs.Status.DeepCopy()
	status.ObservedGeneration = gs.Generation
	conditions.Apply(&status.Conditions, gs.Generation, r)
	status.Summary = conditions.Summary(r)
	switch {
	case r.Ready:
		status.LastError = ""
	case !r.Suspended && !r.Progressing:
		status.LastError = conditions.Truncate(r.Message)
	}
	if st != nil {
		status.ResolvedRef = st.resolved.RefName
		status.Commit = st.resolved.Commit
		status.ShortCommit = short(st.resolved.Commit)
		status.CommitMessage = firstLine(st.message)
		status.Units = table
		status.UnitCount = int32(len(table))
		if changed || status.LastSyncTime == nil {
			now := metav1.NewTime(c.clock.Now())
			status.LastSyncTime = &now
		}
	}
	status.LastHandledReconcileAt = requested
	if owned, err := c.ownedResources(gs); err == nil {
		var cond metav1.Condition
		status.Health, cond = infrahubsync.HealthOf(owned, gs.Generation)
		meta.SetStatusCondition(&status.Conditions, cond)
	}
	if apiequality.Semantic.DeepEqual(*status, gs.Status) {
		return nil
	}
	gs.Status = *status
	body, err := statusapply.Body(kind, gs.Name, gs.Status)
	if err != nil {
		return err
	}
	if _, err := c.client.InfrahubV1alpha1().GitSyncs().Patch(ctx, gs.Name, types.ApplyPatchType, body, statusapply.Options(), "status"); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status of %s: %w", gs.Name, err)
	}
	return nil
}

func (c *Controller) event(gs *v1alpha1.GitSync, eventType, reason, action, note string, args ...any) {
	if c.recorder == nil {
		return
	}
	c.recorder.Eventf(gs, nil, eventType, reason, action, conditions.Truncate(fmt.Sprintf(note, args...)))
}

// warnOnce records a Warning event when the failure is new, not on every retry.
func (c *Controller) warnOnce(gs *v1alpha1.GitSync, reason, msg string) {
	if cond := meta.FindStatusCondition(gs.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Reason == reason {
		return
	}
	c.event(gs, corev1.EventTypeWarning, reason, "Sync", "%s", msg)
}

func unitLabel(gs *v1alpha1.GitSync, p string) string {
	if layoutOf(gs) == v1alpha1.GitLayoutFile {
		return "file " + p
	}
	return "directory " + p
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// authHash tells credential changes apart without keeping them.
func authHash(a gitrepo.Auth) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", a.Username, a.Password)
	h.Write(a.SSHPrivateKey)
	h.Write([]byte{0})
	h.Write(a.SSHKnownHosts)
	return hex.EncodeToString(h.Sum(nil))
}

// redact removes the password or token from a message, should a remote
// have echoed it.
func redact(msg string, a gitrepo.Auth) string {
	if len(a.Password) >= 4 {
		msg = strings.ReplaceAll(msg, a.Password, "[redacted]")
	}
	return msg
}
