package infrahubsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	gosync "sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
	"github.com/vidra-operator/vidra/controllers/internal/statusapply"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/shard"
	"github.com/vidra-operator/vidra/infrahub"
)

// Condition reasons.
const (
	ReasonSynced            = "Synced"
	ReasonSuspended         = "Suspended"
	ReasonCredentials       = "CredentialsError"
	ReasonAuthentication    = "AuthenticationFailed"
	ReasonPermission        = "PermissionDenied"
	ReasonBadRequest        = "InvalidRequest"
	ReasonInfrahubError     = "InfrahubError"
	ReasonInfrahubDown      = "InfrahubUnavailable"
	ReasonEmptyListing      = "EmptyListing"
	ReasonNoArtifacts       = "NoArtifacts"
	ReasonArtifactsNotReady = "ArtifactsNotReady"
	ReasonDownloadFailed    = "DownloadFailed"
	ReasonWriteFailed       = "WriteFailed"
	ReasonResourcesNotReady = "ResourcesNotReady"
	ReasonProgressing       = "Progressing"

	// ConditionInsecureTLS warns that Infrahub's certificate is not verified.
	ConditionInsecureTLS = "InsecureTLS"

	// LegacyCredentialsLabel marks the earlier operator's credential Secrets;
	// the value is Infrahub's host.
	LegacyCredentialsLabel = "infrahub-api-url"
)

var everything = labels.Everything()

// listPageSize is the GraphQL page size of artifact listings.
const listPageSize = 2000

// artifactParallelism bounds the downloads and writes of one sync pass.
const artifactParallelism = 8

// sync polls Infrahub when due, writes one VidraResource per Ready artifact
// whose checksum changed, removes those whose artifact is gone, and reports.
func (c *Controller) sync(ctx context.Context, sync *v1alpha1.InfrahubSync) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	requested := sync.Annotations[v1alpha1.AnnotationReconcileRequestedAt]
	owned, err := c.ownedResources(sync)
	if err != nil {
		return 0, err
	}
	patch := PatchBy(c.client.InfrahubV1alpha1().InfrahubSyncs().Patch)
	if sync.DeletionTimestamp != nil {
		// On its way out: its VidraResources go with it. Reading Infrahub
		// or writing now could only recreate what is being removed.
		c.written.forget(sync.UID)
		c.forgetBranch(sync.Name)
		c.jobs.Forget(sync.Name)
		return c.writer().ReleaseDeleted(ctx, syncKind, sync, owned, patch)
	}
	if err := EnsureSyncFinalizer(ctx, sync, patch); err != nil {
		return 0, err
	}
	// A sync moved to this shard brings its VidraResources along first.
	if moved, err := c.takeOver(ctx, sync); err != nil {
		return 0, err
	} else if moved > 0 {
		return resourceSettle, nil
	}

	if sync.Spec.Suspend {
		c.jobs.Forget(sync.Name)
		// Suspension reaches the VidraResources too, so they stop applying.
		for _, vr := range owned {
			if !vr.Spec.Suspend && vr.DeletionTimestamp == nil {
				if _, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType,
					[]byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{FieldManager: v1alpha1.FieldManager}); err != nil {
					return 0, fmt.Errorf("suspend VidraResource %s: %w", vr.Name, err)
				}
			}
		}
		return 0, c.writeStatus(ctx, sync, nil, conditions.Result{Suspended: true, Reason: ReasonSuspended, Message: "Suspended: Infrahub is not read and nothing is applied"}, requested, false)
	}

	cfg, err := c.connection(sync)
	if err != nil {
		c.warnOnce(sync, ReasonCredentials, err.Error())
		_ = c.writeStatus(ctx, sync, nil, conditions.Result{Stalled: true, Reason: ReasonCredentials, Message: err.Error()}, requested, false)
		return 0, err
	}
	// A relative targetDate is pinned once per pass, so the listing and the
	// downloads read the same instant.
	// Infrahub's default branch need not be called main: the listing
	// resolves the branch by name first (an empty name still reads the
	// default).
	listOpts, err := infrahub.ListOptions{Name: sync.Spec.Source.ArtifactName, Branch: sync.Spec.Source.TargetBranch, At: sync.Spec.Source.TargetDate}.Resolve(c.clock.Now())
	if err != nil {
		msg := fmt.Sprintf("spec.source.targetDate %q is not a time Infrahub accepts: %v", sync.Spec.Source.TargetDate, err)
		c.warnOnce(sync, ReasonBadRequest, msg)
		return 0, c.writeStatus(ctx, sync, nil, conditions.Result{Stalled: true, Reason: ReasonBadRequest, Message: msg}, requested, false)
	}

	artifacts, polled, err := c.list(ctx, sync, cfg, &listOpts, requested)
	if errors.Is(err, workloop.ErrWaiting) {
		// Infrahub's answer brings the sync back; no worker waits for it.
		return 0, err
	}
	if err != nil {
		reason, stalled := classify(err)
		c.warnOnce(sync, reason, err.Error())
		_ = c.writeStatus(ctx, sync, nil, conditions.Result{Stalled: stalled, Reason: reason,
			Message: fmt.Sprintf("Reading artifacts %q from Infrahub failed; nothing was changed: %v", listOpts.Name, err)}, requested, false)
		return 0, fmt.Errorf("list artifacts: %w", err)
	}
	if polled {
		logger.V(2).Info("Listed artifacts", "count", len(artifacts))
	}
	branch := listOpts.Branch

	byArtifact := map[string]*v1alpha1.VidraResource{}
	for _, vr := range owned {
		if vr.Spec.Source != nil {
			byArtifact[vr.Spec.Source.ArtifactID] = vr
		}
	}

	contents, done := c.downloads(ctx, sync, artifacts, byArtifact, listOpts, cfg)
	if !done {
		return 0, workloop.ErrWaiting
	}

	var (
		changed  int
		problems []string
		notReady []string
		// errored are artifacts in Error whose last good content is applied.
		errored []string
		retry   bool
	)
	table := make([]v1alpha1.ArtifactStatus, 0, len(artifacts))
	present := map[string]bool{}
	// Downloads and writes of different artifacts are independent: run a
	// few at once so a large definition does not converge one by one.
	type outcome struct {
		wrote bool
		err   error
	}
	results := make([]outcome, len(artifacts))
	oversized := 0
	now := c.clock.Now()
	sem := make(chan struct{}, artifactParallelism)
	var wg gosync.WaitGroup
	for i, a := range artifacts {
		present[a.ID] = true
		if !a.HasContent() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			written, err := c.ensureResource(ctx, sync, a, ResourceName(sync.Name, a.ID), byArtifact[a.ID], contents, branch)
			if written != nil {
				c.written.record(written, now)
			}
			results[i] = outcome{written != nil, err}
		}()
	}
	wg.Wait()
	for i, a := range artifacts {
		row := v1alpha1.ArtifactStatus{ID: a.ID, Name: a.Name, Target: a.TargetLabel, Status: a.Status, Checksum: a.Checksum, StorageID: a.StorageID}
		if existing := byArtifact[a.ID]; existing != nil {
			row.VidraResource = existing.Name
		}
		switch {
		case !a.HasContent():
			notReady = append(notReady, fmt.Sprintf("%s is %s", artifactLabel(a), orUnknown(a.Status)))
		case results[i].err != nil && tooLarge(results[i].err):
			// Downloading it again changes nothing until Infrahub has new content.
			problems = append(problems, results[i].err.Error())
			oversized++
		case results[i].err != nil:
			problems = append(problems, results[i].err.Error())
			retry = true
		case results[i].wrote:
			changed++
			row.VidraResource = ResourceName(sync.Name, a.ID)
		}
		if a.HasContent() && !a.Ready() {
			errored = append(errored, artifactLabel(a))
		}
		table = append(table, row)
	}

	// Remove what left Infrahub, but only after a complete listing, and
	// never everything at once unless the user allowed an empty result.
	emptyGuard := len(artifacts) == 0 && len(owned) > 0 && !sync.Spec.AllowEmpty
	prune := sync.Spec.Prune == nil || *sync.Spec.Prune
	removed := map[string]bool{}
	if !emptyGuard && prune {
		for _, vr := range owned {
			if vr.Spec.Source != nil && present[vr.Spec.Source.ArtifactID] {
				continue
			}
			if vr.DeletionTimestamp != nil {
				continue
			}
			err := c.client.InfrahubV1alpha1().VidraResources().Delete(ctx, vr.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &vr.UID},
			})
			if err != nil && !apierrors.IsNotFound(err) {
				problems = append(problems, fmt.Sprintf("remove VidraResource %s: %v", vr.Name, err))
				retry = true
				continue
			}
			removed[vr.Name] = true
			c.writer().dropChunks(ctx, vr)
			c.written.drop(vr.Name, vr.UID)
			changed++
			c.event(sync, corev1.EventTypeNormal, "Pruned", "Delete", "Removed VidraResource %s: its artifact is no longer in Infrahub", vr.Name)
		}
	}

	sort.Slice(table, func(i, j int) bool {
		if table[i].Target != table[j].Target {
			return table[i].Target < table[j].Target
		}
		return table[i].ID < table[j].ID
	})
	result := c.summarize(sync, artifacts, owned, problems, notReady, errored, removed, emptyGuard, branch)
	if oversized > 0 && result.Reason == ReasonWriteFailed {
		result.Reason = ReasonArtifactTooLarge
		result.Stalled = !retry
		c.warnOnce(sync, ReasonArtifactTooLarge, result.Message)
	}
	if result.Reason == ReasonNoArtifacts {
		c.warnOnce(sync, ReasonNoArtifacts, result.Message)
	}
	if changed > 0 {
		what := fmt.Sprintf("%s created, updated or removed from %s", conditions.Count(changed, "VidraResource", ""), conditions.Count(len(artifacts), "artifact", ""))
		c.event(sync, corev1.EventTypeNormal, ReasonSynced, "Sync", "%s", what)
		logger.Info("InfrahubSync listed "+conditions.Count(len(artifacts), "artifact", ""), "sync", sync.Name, "changes", what)
	}
	if err := c.writeStatus(ctx, sync, table, result, requested, changed > 0); err != nil {
		return 0, err
	}
	if retry {
		return 0, fmt.Errorf("sync %s: %s", sync.Name, strings.Join(problems, "; "))
	}
	return c.untilNextPoll(sync), nil
}

// untilNextPoll is how long until the sync's listing is due again.
func (c *Controller) untilNextPoll(sync *v1alpha1.InfrahubSync) time.Duration {
	interval := c.interval(sync)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.polls[sync.Name]; ok {
		if d := st.at.Add(interval).Sub(c.clock.Now()); d > 0 && d < interval {
			return workloop.Jitter(d)
		}
	}
	return workloop.Jitter(interval)
}

func (c *Controller) interval(sync *v1alpha1.InfrahubSync) time.Duration {
	if sync.Spec.Interval != nil && sync.Spec.Interval.Duration > 0 {
		return sync.Spec.Interval.Duration
	}
	return c.opts.Interval
}

// list returns the sync's artifacts: from Infrahub when a poll is due (the
// interval passed, the spec or connection changed, or a trigger asked for
// it), else the last listing. It reports whether it asked Infrahub, and
// sets opts to the options of the listing (branch resolved). Infrahub is
// asked by a job off the worker pool: until it answers, list returns
// ErrWaiting and the answer brings the sync back.
func (c *Controller) list(ctx context.Context, sync *v1alpha1.InfrahubSync, cfg infrahub.Config, opts *infrahub.ListOptions, requested string) ([]infrahub.Artifact, bool, error) {
	cfgHash := configHash(cfg)
	now := c.clock.Now()
	c.mu.Lock()
	st := c.polls[sync.Name]
	triggers := c.triggers[sync.Name]
	asked := st == nil || st.triggers != triggers || st.uid != string(sync.UID) || st.generation != sync.Generation ||
		st.requested != requested || st.configHash != cfgHash
	due := asked || now.Sub(st.at) >= c.interval(sync)
	if !due {
		artifacts := st.artifacts
		*opts = st.opts
		c.mu.Unlock()
		return artifacts, false, nil
	}
	c.mu.Unlock()

	res, done := c.jobs.Poll(ctx, sync.Name, jobList, endpointOf(cfg), listFingerprint(sync, cfgHash, *opts),
		c.startListing(sync, cfg, *opts, !asked, triggers, requested, now))
	if !done {
		return nil, true, workloop.ErrWaiting
	}
	if res.Err != nil {
		c.mu.Lock()
		delete(c.polls, sync.Name)
		c.mu.Unlock()
		return nil, true, res.Err
	}
	l := res.Value.(*listing)
	*opts = l.opts
	c.mu.Lock()
	c.polls[sync.Name] = &pollState{
		uid: string(sync.UID), generation: sync.Generation, requested: l.requested, triggers: l.triggers,
		configHash: cfgHash, at: l.at, artifacts: l.artifacts, opts: l.opts,
	}
	stale := l.triggers != c.triggers[sync.Name] || l.requested != requested
	c.mu.Unlock()
	if stale {
		// Asked again while the listing was under way: this one may have
		// missed the change, list once more.
		c.queue.Add(sync.Name)
	}
	return l.artifacts, true, nil
}

func dedupe(in []infrahub.Artifact) []infrahub.Artifact {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, a := range in {
		if !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	return out
}

// ensureResource creates or updates the VidraResource of one Ready artifact
// through the shared unit writer. The content is downloaded only when the
// checksum or storage id differs from what the VidraResource holds.
func (c *Controller) ensureResource(ctx context.Context, sync *v1alpha1.InfrahubSync, a infrahub.Artifact, name string,
	existing *v1alpha1.VidraResource, contents map[string]fetched, branch string) (*v1alpha1.VidraResource, error) {
	want := desiredSpec(sync, a, branch)
	unit := Unit{Source: *want.Source, Label: artifactLabel(a), Content: func(context.Context) ([]byte, error) {
		// Downloaded off the worker pool before this pass (see jobs.go).
		got, ok := contents[contentKey(a)]
		if !ok {
			return nil, errors.New("not downloaded yet")
		}
		return got.content, got.err
	}}
	want.Source = nil
	owner := OwnerOf(sync, syncKind, want)
	owner.Labels = resourceLabels(sync, a)
	if _, ok := shard.Of(sync); !ok {
		// Moved to the main instance: the old shard's label goes.
		owner.Unset = []string{shard.Label}
	}
	return c.writer().Ensure(ctx, owner, unit, name, existing)
}

// writer is the unit writer of this controller's VidraResources.
func (c *Controller) writer() Writer {
	return Writer{Client: c.client, Resources: c.vrs, Manifests: c.opts.Manifests,
		Namespace: c.opts.Namespace, MaxManifestBytes: c.opts.MaxManifestBytes}
}

// specMap is the spec to apply. suspend is always present: while a sync is
// suspended the flag is patched onto its VidraResources, and an apply that
// merely left out "false" would not take that back.
func specMap(spec v1alpha1.VidraResourceSpec) (map[string]any, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	out["suspend"] = spec.Suspend
	return out, nil
}

// sameContent reports whether a VidraResource holds the content of a.
func sameContent(vr *v1alpha1.VidraResource, a infrahub.Artifact) bool {
	return vr.Spec.Source != nil && vr.Spec.Source.Checksum == a.Checksum && vr.Spec.Source.StorageID == a.StorageID &&
		manifestMatches(vr, a.Checksum)
}

// manifestMatches reports whether a VidraResource still holds the content
// of checksum: a manifest edited by hand no longer does, and is rewritten.
func manifestMatches(vr *v1alpha1.VidraResource, checksum string) bool {
	if vr.Spec.ManifestChunks != nil || len(vr.Spec.ManifestGzip) > 0 {
		return storedManifestMatches(vr, checksum)
	}
	return vr.Spec.Manifest != "" && strings.EqualFold(infrahub.Checksum([]byte(vr.Spec.Manifest)), checksum)
}

func desiredSpec(sync *v1alpha1.InfrahubSync, a infrahub.Artifact, branch string) v1alpha1.VidraResourceSpec {
	return v1alpha1.VidraResourceSpec{
		Destination: *sync.Spec.Destination.DeepCopy(),
		Source: &v1alpha1.ArtifactSource{
			Sync:         sync.Name,
			ArtifactID:   a.ID,
			ArtifactName: a.Name,
			Target:       a.TargetLabel,
			Branch:       branch,
			Checksum:     a.Checksum,
			StorageID:    a.StorageID,
		},
		Suspend:       sync.Spec.Suspend,
		Prune:         sync.Spec.Prune,
		AdoptExisting: sync.Spec.AdoptExisting,
		Wait:          sync.Spec.Wait.DeepCopy(),
	}
}

func resourceLabels(sync *v1alpha1.InfrahubSync, a infrahub.Artifact) map[string]string {
	l := UnitLabels(sync.Name, a.ID)
	if v, ok := shard.Of(sync); ok {
		// Its VidraResources go to the instance of its shard.
		l[shard.Label] = v
	}
	return l
}

// syncKind is the kind of the syncs of this controller.
const syncKind = "InfrahubSync"

// LabelSyncKey labels each VidraResource with its sync.
const LabelSyncKey = v1alpha1.LabelSync

// SyncLabelValue is the label value for a sync name; names longer than a
// label allows are shortened with a hash.
func SyncLabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.Trim(name[:40], "-.") + "-" + hex.EncodeToString(sum[:])[:16]
}

// ResourceName is the VidraResource name for an artifact of a sync. It
// includes the sync, so the same artifact synced by two syncs (two clusters,
// two branches, two points in time) never shares a VidraResource.
func ResourceName(syncName, artifactID string) string {
	sum := sha256.Sum256([]byte(syncName + "\x00" + artifactID))
	prefix := syncName
	if len(prefix) > 200 {
		prefix = strings.TrimRight(prefix[:200], "-.")
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:16]
}

// ownedResources lists the VidraResources controlled by this very sync,
// with the ones it just wrote as written.
func (c *Controller) ownedResources(sync *v1alpha1.InfrahubSync) ([]*v1alpha1.VidraResource, error) {
	owned, err := c.resourcesOf(sync.UID)
	if err != nil {
		return nil, err
	}
	return c.written.overlay(sync.UID, owned, c.clock.Now()), nil
}

func ownerUID(vr *v1alpha1.VidraResource) string {
	if ref := metav1.GetControllerOf(vr); ref != nil {
		return string(ref.UID)
	}
	return "none"
}

// branchOf returns the branch a sync reads, by the name Infrahub gives it,
// and remembers it for the webhook receiver. targetBranch "" or "main" (the
// API's default) means Infrahub's default branch unless a branch main
// exists. When Infrahub cannot be asked, targetBranch is used as it is
// ("" reads the default branch without knowing its name).
func (c *Controller) branchOf(ctx context.Context, sync *v1alpha1.InfrahubSync, cfg infrahub.Config) string {
	want := sync.Spec.Source.TargetBranch
	source, err := c.sources.Source(cfg)
	if err == nil {
		var name string
		if name, err = source.ResolveBranch(ctx, want); err == nil {
			c.rememberBranch(sync.Name, name)
			return name
		}
	}
	klog.FromContext(ctx).V(2).Info("Cannot ask Infrahub for its branches", "err", err)
	c.rememberBranch(sync.Name, want)
	return want
}

func (c *Controller) rememberBranch(name, branch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.branches[name] = branch
}

func (c *Controller) forgetBranch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.branches, name)
}

// BranchOf returns the Infrahub branch the named sync read last, its target
// branch or the default branch by name; "" when not known yet. The webhook
// receiver matches deliveries with it.
func (c *Controller) BranchOf(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.branches[name]
}

func branchText(branch string) string {
	if branch == "" {
		return "Infrahub's default branch"
	}
	return "branch " + branch
}

func artifactLabel(a infrahub.Artifact) string {
	if a.TargetLabel != "" {
		return fmt.Sprintf("artifact %s (%s)", a.ID, a.TargetLabel)
	}
	return "artifact " + a.ID
}

func orUnknown(s string) string {
	if s == "" {
		return "not ready"
	}
	return s
}

// classify maps an Infrahub error onto a condition reason, and whether the
// user must act (stalled) rather than wait for a retry.
func classify(err error) (string, bool) {
	var ie *infrahub.Error
	if !errors.As(err, &ie) {
		return ReasonInfrahubDown, false
	}
	switch ie.Kind {
	case infrahub.KindAuth:
		return ReasonAuthentication, true
	case infrahub.KindPermission:
		return ReasonPermission, true
	case infrahub.KindBadRequest, infrahub.KindNotFound:
		return ReasonBadRequest, true
	case infrahub.KindTransient:
		return ReasonInfrahubDown, false
	}
	return ReasonInfrahubError, false
}

// summarize turns a pass into conditions.
func (c *Controller) summarize(sync *v1alpha1.InfrahubSync, artifacts []infrahub.Artifact, owned []*v1alpha1.VidraResource,
	problems, notReady, errored []string, removed map[string]bool, emptyGuard bool, branch string) conditions.Result {
	switch {
	case emptyGuard:
		return conditions.Result{Stalled: true, Reason: ReasonEmptyListing, Message: fmt.Sprintf(
			"Infrahub returned no artifacts named %q on %s; the existing VidraResources were kept. Set spec.allowEmpty to remove them",
			sync.Spec.Source.ArtifactName, branchText(branch))}
	case len(artifacts) == 0 && len(owned) == len(removed):
		// Nothing of this name, and nothing kept from before: most likely
		// a misspelt artefactName or a definition not generated yet.
		return conditions.Result{Reason: ReasonNoArtifacts, Message: fmt.Sprintf(
			"Infrahub has no artifact named %q on %s; check spec.source.artefactName and that the artifact definition has generated its artifacts",
			sync.Spec.Source.ArtifactName, branchText(branch))}
	case len(problems) > 0:
		return conditions.Result{Reason: ReasonWriteFailed, Summary: conditions.Count(len(problems), "VidraResource write", "VidraResource writes") + " failed",
			Message: strings.Join(problems, "; ")}
	case len(notReady) > 0:
		return conditions.Result{Progressing: true, Reason: ReasonArtifactsNotReady, Summary: conditions.Count(len(notReady), "artifact", "") + " not ready in Infrahub",
			Message: "Keeping what was applied for artifacts not ready in Infrahub: " + strings.Join(notReady, "; ")}
	}
	// Read again: the VidraResources this pass wrote are not reconciled yet.
	owned, err := c.ownedResources(sync)
	if err != nil {
		return conditions.Result{Reason: ReasonWriteFailed, Message: err.Error()}
	}
	if r, waiting := ResourcesNotReady(owned, removed); waiting {
		return r
	}
	msg := "Synced " + conditions.Count(len(artifacts), "artifact", "")
	if len(errored) > 0 {
		sort.Strings(errored)
		msg += fmt.Sprintf("; %s in Error in Infrahub, their last good content is applied: %s", conditions.Count(len(errored), "artifact", ""), strings.Join(errored, "; "))
	}
	return conditions.Result{Ready: true, Reason: ReasonSynced, Message: msg}
}

// ResourcesNotReady is the Progressing result of a sync whose
// VidraResources (those not just removed) are not all reconciled and
// Ready, naming the first five; waiting is false when all are.
func ResourcesNotReady(owned []*v1alpha1.VidraResource, removed map[string]bool) (r conditions.Result, waiting bool) {
	var names []string
	for _, vr := range owned {
		if removed[vr.Name] {
			continue
		}
		cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case cond == nil || cond.ObservedGeneration != vr.Generation:
			names = append(names, vr.Name+": not reconciled yet")
		case cond.Status != metav1.ConditionTrue:
			names = append(names, vr.Name+": "+cond.Message)
		}
	}
	if len(names) == 0 {
		return conditions.Result{}, false
	}
	sort.Strings(names)
	shown := names
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	notReady := fmt.Sprintf("%d of %s not ready", len(names), conditions.Count(len(owned), "VidraResource", ""))
	return conditions.Result{Progressing: true, Reason: ReasonResourcesNotReady, Summary: notReady,
		Message: notReady + ": " + strings.Join(shown, "; ")}, true
}

// writeStatus writes the status only when it changed, so an idle resync
// costs no write.
func (c *Controller) writeStatus(ctx context.Context, sync *v1alpha1.InfrahubSync, table []v1alpha1.ArtifactStatus, r conditions.Result, requested string, changed bool) error {
	status := sync.Status.DeepCopy()
	status.ObservedGeneration = sync.Generation
	conditions.Apply(&status.Conditions, sync.Generation, r)
	if sync.Spec.Source.InsecureSkipTLSVerify {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: ConditionInsecureTLS, Status: metav1.ConditionTrue,
			Reason: "VerificationDisabled", Message: "Infrahub's TLS certificate is not verified (spec.source.insecureSkipTLSVerify)", ObservedGeneration: sync.Generation})
	} else {
		meta.RemoveStatusCondition(&status.Conditions, ConditionInsecureTLS)
	}
	status.Summary = conditions.Summary(r)
	if !r.Suspended {
		status.SyncState = conditions.State(r)
	}
	switch {
	case r.Ready:
		status.LastError = ""
	case !r.Suspended && !r.Progressing:
		status.LastError = conditions.Truncate(r.Message)
	}
	if table != nil {
		status.Artifacts = table
		status.ArtifactCount = int32(len(table))
		if changed || status.LastSyncTime == nil {
			now := metav1.NewTime(c.clock.Now())
			status.LastSyncTime = &now
		}
	}
	status.LastHandledReconcileAt = requested
	c.healthSummary(sync, status)
	if apiequality.Semantic.DeepEqual(*status, sync.Status) {
		return nil
	}
	sync.Status = *status
	body, err := statusapply.Body("InfrahubSync", sync.Name, sync.Status)
	if err != nil {
		return err
	}
	if _, err := c.client.InfrahubV1alpha1().InfrahubSyncs().Patch(ctx, sync.Name, types.ApplyPatchType, body, statusapply.Options(), "status"); err != nil {
		return fmt.Errorf("update status of %s: %w", sync.Name, err)
	}
	return nil
}

func (c *Controller) event(sync *v1alpha1.InfrahubSync, eventType, reason, action, note string, args ...any) {
	if c.recorder == nil {
		return
	}
	c.recorder.Eventf(sync, nil, eventType, reason, action, conditions.Truncate(fmt.Sprintf(note, args...)))
}

// warnOnce records a Warning event when the failure is new, not on every retry.
func (c *Controller) warnOnce(sync *v1alpha1.InfrahubSync, reason, msg string) {
	if cond := meta.FindStatusCondition(sync.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Reason == reason {
		return
	}
	c.event(sync, corev1.EventTypeWarning, reason, "Sync", "%s", msg)
}

func configHash(cfg infrahub.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%t\x00%s\x00", cfg.BaseURL, cfg.Username, cfg.Password, cfg.APIToken, cfg.InsecureSkipVerify, cfg.QueryName)
	h.Write(cfg.CABundle)
	return hex.EncodeToString(h.Sum(nil))
}

// connection builds the Infrahub connection of a sync: URL, credentials and
// TLS settings, read from Secrets in the operator's namespace only.
func (c *Controller) connection(sync *v1alpha1.InfrahubSync) (infrahub.Config, error) {
	base := infrahub.Config{
		QueryName: c.opts.QueryName,
		Timeout:   c.opts.Timeout,
		UserAgent: "vidra-operator",
		// One request lists up to this many artifacts: a resync of a large
		// definition stays a single request (Infrahub caps a page at 5000).
		PageSize: listPageSize,
		Observer: c.opts.RequestObserver,
		CABundle: c.opts.CABundle,
	}
	var secrets SecretGetter
	if c.secrets != nil {
		secrets = c.secrets
	}
	return ResolveConnection(base, sync.Spec.Source, c.opts.Namespace, secrets)
}
