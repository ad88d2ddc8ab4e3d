package vidraresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
	"github.com/vidra-operator/vidra/controllers/internal/statusapply"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
)

// Condition reasons.
const (
	ReasonApplied            = "Applied"
	ReasonProgressing        = "Progressing"
	ReasonSuspended          = "Suspended"
	ReasonInvalidManifest    = "InvalidManifest"
	ReasonEmptyManifest      = "EmptyManifest"
	ReasonClusterUnavailable = "ClusterUnavailable"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonNotOwned           = "NotOwned"
	ReasonConflict           = "Conflict"
	ReasonPruneFailed        = "PruneFailed"
	ReasonDeletionFailed     = "DeletionFailed"
	ReasonWaitingForCRD      = "WaitingForCRD"
	ReasonInventoryTooLarge  = "InventoryTooLarge"
)

var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// desired is one object of the manifest on its way to the cluster.
type desired struct {
	doc     manifest.Document
	obj     *unstructured.Unstructured
	gvk     schema.GroupVersionKind
	mapping *meta.RESTMapping
	// waitingForCRD is set when the kind is defined by a CRD of the same
	// manifest that the cluster does not serve yet.
	waitingForCRD bool
	// recorded is set when the inventory held the object before this pass:
	// it most likely exists, and is read before it is applied.
	recorded bool
	err      error
}

func (d *desired) name() string { return describe(d.obj) }

// outcome collects what one pass did, for status, events and metrics.
type outcome struct {
	changes       []apply.Change // what was applied, pruned or released
	failures      []string       // apply errors, retried with backoff
	notOwned      []string       // foreign objects left alone
	conflicts     []string       // declared differently by another owner
	pruneFailures []string
	waiting       []string // CRs waiting for their CRD
	// applyErrs and pruneErrs are the errors behind failures and
	// pruneFailures, handed on to the work loop.
	applyErrs, pruneErrs []error
	retryable            bool
	conflictRetry        bool
}

func (o *outcome) count(a apply.Action) int { return apply.ChangeSet(o.changes).Count(a) }

func (o *outcome) changed() bool { return apply.ChangeSet(o.changes).Changed() }

// err is the error a failed pass hands to the work loop, wrapping the
// API server's errors so it can tell a routine write conflict. A conflict
// only counts as such when nothing else failed.
func (o *outcome) err(name string) error {
	all := append(append([]error{}, o.applyErrs...), o.pruneErrs...)
	var other []error
	for _, err := range all {
		if !apierrors.IsConflict(err) {
			other = append(other, err)
		}
	}
	if len(other) > 0 {
		all = other
	}
	return fmt.Errorf("%s: %w", name, errors.Join(all...))
}

// sync reconciles one VidraResource: apply every object of the manifest,
// record them, prune what left, and report.
func (c *Controller) sync(ctx context.Context, vr *v1alpha1.VidraResource) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	if vr.DeletionTimestamp != nil {
		return c.finalize(ctx, vr)
	}
	if !hasFinalizer(vr) {
		updated, err := c.addFinalizer(ctx, vr)
		if err != nil {
			return 0, err
		}
		vr = updated
	}
	requested := vr.Annotations[v1alpha1.AnnotationReconcileRequestedAt]

	if vr.Spec.Suspend {
		return 0, c.writeStatus(ctx, vr, conditions.Result{Suspended: true, Reason: ReasonSuspended, Message: "Suspended: objects are neither applied nor pruned"}, nil, requested)
	}

	docs, err := c.documents(ctx, vr)
	var unavailable *manifeststore.UnavailableError
	if errors.As(err, &unavailable) {
		// A chunk not written yet or damaged: nothing is applied or pruned
		// until the manifest reads back as recorded; the sync rewrites it.
		_ = c.writeStatus(ctx, vr, conditions.Result{Reason: manifeststore.ReasonUnavailable, Message: "Manifest unavailable, nothing applied: " + err.Error()}, nil, requested)
		return 0, fmt.Errorf("read manifest of %s: %w", vr.Name, err)
	}
	if err != nil {
		c.event(vr, corev1.EventTypeWarning, ReasonInvalidManifest, "Parse", "Manifest is invalid: %s", err)
		return 0, c.writeStatus(ctx, vr, conditions.Result{Stalled: true, Reason: ReasonInvalidManifest, Message: "Invalid manifest: " + err.Error()}, nil, requested)
	}
	if len(docs) == 0 {
		// An empty manifest would prune everything; that only happens by
		// deleting the VidraResource, never by an empty artifact.
		return 0, c.writeStatus(ctx, vr, conditions.Result{Stalled: true, Reason: ReasonEmptyManifest, Message: "The manifest holds no objects; nothing was applied or removed"}, nil, requested)
	}

	target, err := c.clusters.Target(ctx, c.destination(vr))
	if err == nil {
		err = target.Reachable(c.clock.Now())
	}
	if err != nil {
		_ = c.writeStatus(ctx, vr, targetFailure(c.destination(vr), err), nil, requested)
		return 0, fmt.Errorf("destination of %s: %w", vr.Name, err)
	}

	objs, err := c.resolve(ctx, target, vr, docs)
	if err != nil {
		c.event(vr, corev1.EventTypeWarning, ReasonInvalidManifest, "Parse", "Manifest is invalid: %s", err)
		return 0, c.writeStatus(ctx, vr, conditions.Result{Stalled: true, Reason: ReasonInvalidManifest, Message: "Invalid manifest: " + err.Error()}, nil, requested)
	}

	markRecorded(objs, vr.Status.ManagedResources, target.Server)
	known := vr.Status.ManagedResources
	searched := c.mayHoldUntracked(vr)
	if searched {
		// An earlier pass of the first manifest may have been interrupted
		// before it recorded what it applied, and the manifest changed
		// since: find those objects by their owner, so they are pruned.
		found, err := c.findOwned(ctx, target, vr)
		if err != nil {
			return 0, fmt.Errorf("find the objects of an interrupted pass of %s: %w", vr.Name, err)
		}
		known = mergeInventory(known, found)
	}
	// Record everything about to be applied before applying it, so a crash
	// in the middle leaves nothing untracked; the first manifest needs no
	// such write (see recordsBeforeApplying).
	planned := mergeInventory(known, inventoryOf(objs, target.Server))
	inventoryChanged := len(planned) != len(vr.Status.ManagedResources) || !apiequality.Semantic.DeepEqual(planned, vr.Status.ManagedResources)
	// An inventory already recorded fits; a new one is measured first.
	if inventoryChanged {
		if size, limit := storedSize(vr, planned), c.maxResourceBytes(); size > limit {
			// Applied, these objects could not all be recorded: the status
			// write would be refused and they would be left untracked.
			msg := fmt.Sprintf("Recording %d objects would make this VidraResource %d bytes, above the %d bytes it may take in the API server's storage; nothing was applied or pruned: split the artifact", len(planned), size, limit)
			c.event(vr, corev1.EventTypeWarning, ReasonInventoryTooLarge, "Apply", "%s", msg)
			return 0, c.writeStatus(ctx, vr, conditions.Result{Stalled: true, Reason: ReasonInventoryTooLarge, Message: msg}, nil, requested)
		}
	}
	if recordsBeforeApplying(vr) && inventoryChanged {
		vr.Status.ManagedResources = planned
		vr.Status.ObjectCount = int32(len(planned))
		conditions.Apply(&vr.Status.Conditions, vr.Generation, conditions.Result{Progressing: true, Reason: ReasonProgressing, Message: "Applying objects"})
		vr.Status.DeployState = v1alpha1.StateRunning
		if err := c.applyStatus(ctx, vr); err != nil {
			return 0, fmt.Errorf("record inventory: %w", err)
		}
	}
	if searched {
		c.searchedOwned(vr)
	}

	// Watch what we manage on this cluster (started before applying, so the
	// cache is warm sooner); other clusters are forgotten once their
	// objects are gone.
	c.watch(target, vr.Name, objs)
	var out outcome
	c.applyAll(ctx, target, vr, objs, &out)

	// Without pruning, everything tried stays recorded, applied or not.
	inventory := planned
	if len(out.failures) == 0 && len(out.waiting) == 0 {
		inventory = c.prune(ctx, target, vr, objs, &out)
	}
	if len(out.waiting) == 0 && len(out.pruneFailures) == 0 {
		for _, cl := range c.clusters.Clusters() {
			if cl != target.Cluster {
				cl.Watches.RemoveOwner(vr.Name)
			}
		}
	}
	c.metrics.SetManagedObjects(vr.Name, target.Name(), countByKind(inventory))

	result := summarize(&out, len(objs))
	clusterFailure, wholeCluster := destinationFailure(c.destination(vr), out.applyErrs, len(objs))
	if wholeCluster {
		result = clusterFailure
	}
	logChange(logger, vr, &out)
	if out.changed() && !firstApply(vr, &out) {
		c.event(vr, corev1.EventTypeNormal, ReasonApplied, "Apply", "%s", changeSummary(&out))
	}
	for _, msg := range append(append([]string{}, out.notOwned...), out.conflicts...) {
		c.event(vr, corev1.EventTypeWarning, result.Reason, "Apply", "%s", msg)
	}
	logger.V(2).Info("Reconciled", "created", out.count(apply.Created), "configured", out.count(apply.Configured), "unchanged", out.count(apply.Unchanged),
		"pruned", out.count(apply.Pruned), "failed", len(out.failures), "conflicts", len(out.conflicts), "notOwned", len(out.notOwned))

	applied := &appliedState{inventory: inventory, destination: vr.Spec.Destination.DeepCopy(), checksum: manifestChecksum(vr), changed: out.changed()}
	if err := c.writeStatus(ctx, vr, result, applied, requested); err != nil {
		return 0, err
	}
	switch {
	case wholeCluster:
		return 0, fmt.Errorf("%s: %s", vr.Name, clusterFailure.Message)
	case out.retryable:
		return 0, out.err(vr.Name)
	case len(out.notOwned) > 0:
		// Recheck with backoff: the owner may let go, or the user may label
		// the object, long before the interval.
		return 0, workloop.Expected(fmt.Errorf("%s: %s not owned by Vidra", vr.Name, conditions.Count(len(out.notOwned), "object", "")))
	case len(out.waiting) > 0:
		return c.opts.CRDWait, nil
	case out.conflictRetry:
		return workloop.Jitter(min(c.interval(vr), c.opts.ConflictRecheck)), nil
	}
	return workloop.Jitter(c.interval(vr)), nil
}

// documents reads and parses the manifest of vr, or takes what an earlier
// pass parsed when the manifest is large and unchanged.
func (c *Controller) documents(ctx context.Context, vr *v1alpha1.VidraResource) ([]manifest.Document, error) {
	large := vr.Spec.ManifestChunks != nil || len(vr.Spec.ManifestGzip) > 0
	var checksum string
	if large {
		checksum = manifestChecksum(vr)
		if docs, ok := c.parsed.get(vr.Name, checksum); ok {
			return docs, nil
		}
	}
	content, err := manifeststore.Read(ctx, &vr.Spec, c.opts.Manifests, c.opts.MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	docs, err := manifest.ParseWithOptions(content, manifest.ParseOptions{MaxBytes: int(c.maxManifestBytes())})
	if err == nil && large {
		c.parsed.put(vr.Name, checksum, int64(len(content)), docs)
	}
	return docs, err
}

func (c *Controller) interval(vr *v1alpha1.VidraResource) time.Duration {
	if vr.Spec.Interval != nil && vr.Spec.Interval.Duration > 0 {
		return vr.Spec.Interval.Duration
	}
	return c.opts.Interval
}

// resolve maps every document to its resource on the destination, defaults
// namespaces, and rejects the same object declared twice.
func (c *Controller) resolve(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, docs []manifest.Document) ([]*desired, error) {
	manifest.Sort(docs)
	crdKinds := map[schema.GroupKind]bool{}
	for _, d := range docs {
		if d.Object.GroupVersionKind().GroupKind() == crdGroupKind {
			group, _, _ := unstructured.NestedString(d.Object.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(d.Object.Object, "spec", "names", "kind")
			crdKinds[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	defaultNS := vr.Spec.Destination.Namespace
	if defaultNS == "" {
		defaultNS = metav1.NamespaceDefault
	}
	objs := make([]*desired, 0, len(docs))
	for _, d := range docs {
		obj := d.Object.DeepCopy()
		// Fields copied from `kubectl get -o yaml` belong to the server; a
		// resourceVersion would even turn the apply into a precondition.
		for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink"} {
			unstructured.RemoveNestedField(obj.Object, "metadata", f)
		}
		gvk := obj.GroupVersionKind()
		want := &desired{doc: d, obj: obj, gvk: gvk}
		mapping, err := target.Mapper.Mapping(ctx, gvk)
		var noKind *cluster.NoKindError
		switch {
		case errors.As(err, &noKind) && crdKinds[gvk.GroupKind()]:
			want.waitingForCRD = true
		case err != nil:
			want.err = err
		default:
			want.mapping = mapping
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				if obj.GetNamespace() == "" {
					obj.SetNamespace(defaultNS)
				}
			} else {
				obj.SetNamespace("")
			}
		}
		objs = append(objs, want)
	}
	withNS := make([]manifest.Document, len(objs))
	for i, o := range objs {
		withNS[i] = o.doc
		withNS[i].Object = o.obj
	}
	if err := manifest.Duplicates(withNS); err != nil {
		return nil, err
	}
	return objs, nil
}

// applyAll hands the objects ready to be applied to the engine and sorts
// its answers into the outcome. A CR whose CRD is not served yet waits for
// the next pass, which comes shortly and records it in the inventory before
// applying it.
func (c *Controller) applyAll(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, objs []*desired, out *outcome) {
	req := apply.Request{Owner: ownerOf(vr), Adopt: vr.Spec.AdoptExisting}
	var index []int // request position -> objs position
	for i, o := range objs {
		if o.err != nil || o.waitingForCRD {
			continue
		}
		req.Objects = append(req.Objects, apply.Object{Object: o.obj, Resource: o.mapping.Resource, Recorded: o.recorded})
		index = append(index, i)
	}
	changes := c.engine().Apply(ctx, applyTarget(target), req)
	results := make([]*apply.Change, len(objs))
	for j, ch := range changes {
		target.Observe(c.clock.Now(), ch.Err)
		results[index[j]] = &changes[j]
	}
	// Collected in document order, so the status reads the same every pass.
	for i, o := range objs {
		switch {
		case o.err != nil:
			out.failures = append(out.failures, fmt.Sprintf("%s: %v", o.name(), o.err))
			out.applyErrs = append(out.applyErrs, o.err)
			out.retryable = true
			c.metrics.ObserveApply(target.Name(), string(apply.Failed))
			continue
		case o.waitingForCRD:
			out.waiting = append(out.waiting, o.name())
			continue
		}
		ch := results[i]
		c.metrics.ObserveApply(target.Name(), string(ch.Action))
		switch ch.Action {
		case apply.Created, apply.Configured:
			out.changes = append(out.changes, *ch)
			c.wakeWaitingOwners(vr.Name, ch.Owners)
		case apply.Unchanged:
			out.changes = append(out.changes, *ch)
		case apply.NotOwned:
			out.notOwned = append(out.notOwned, ch.Err.Error())
		case apply.Conflict:
			out.conflicts = append(out.conflicts, ch.Err.Error())
			out.conflictRetry = true
		default:
			out.failures = append(out.failures, fmt.Sprintf("%s: %v", o.name(), ch.Err))
			out.applyErrs = append(out.applyErrs, ch.Err)
			out.retryable = true
		}
	}
	if len(out.waiting) > 0 {
		// The CRDs were just applied: see them on the next pass.
		target.Mapper.Refresh(ctx)
	}
}

// wakeWaitingOwners enqueues the other owners of a shared object that was
// just written and that report a conflict: the content they waited for
// may be the one applied, and they should not wait for their recheck to
// say so.
func (c *Controller) wakeWaitingOwners(self string, owners []string) {
	for _, name := range owners {
		if name == self {
			continue
		}
		vr, err := c.lister.Get(name)
		if err != nil {
			continue
		}
		if cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Reason == ReasonConflict {
			c.queue.Add(name)
		}
	}
}

// watch tells the destination's drift watches which resource types this
// VidraResource manages there.
func (c *Controller) watch(target *cluster.Target, owner string, objs []*desired) {
	seen := map[schema.GroupVersionResource]bool{}
	var gvrs []schema.GroupVersionResource
	for _, o := range objs {
		if o.mapping != nil && !seen[o.mapping.Resource] {
			seen[o.mapping.Resource] = true
			gvrs = append(gvrs, o.mapping.Resource)
		}
	}
	target.Watches.SetOwnerResources(owner, gvrs)
}

// summarize turns a pass into conditions. Apply errors are retried, foreign
// objects and conflicting declarations need the user.
func summarize(out *outcome, total int) conditions.Result {
	switch {
	case len(out.failures) > 0:
		failed := fmt.Sprintf("%d of %s failed", len(out.failures), conditions.Count(total, "object", ""))
		return conditions.Result{Reason: ReasonApplyFailed, Summary: failed, Message: failed + ": " + strings.Join(out.failures, "; ")}
	case len(out.notOwned) > 0:
		return conditions.Result{Stalled: true, Reason: ReasonNotOwned, Summary: conditions.Count(len(out.notOwned), "object", "") + " not managed by Vidra, left alone",
			Message: strings.Join(out.notOwned, "; ")}
	case len(out.conflicts) > 0:
		return conditions.Result{Stalled: true, Reason: ReasonConflict, Summary: conditions.Count(len(out.conflicts), "object", "") + " declared differently by another owner",
			Message: strings.Join(out.conflicts, "; ")}
	case len(out.waiting) > 0:
		return conditions.Result{Progressing: true, Reason: ReasonWaitingForCRD, Summary: conditions.Count(len(out.waiting), "object", "") + " waiting for CRDs",
			Message: "Waiting for CRDs to be established before applying: " + strings.Join(out.waiting, ", ")}
	case len(out.pruneFailures) > 0:
		return conditions.Result{Reason: ReasonPruneFailed, Summary: "Applied; removing " + conditions.Count(len(out.pruneFailures), "object", "") + " failed",
			Message: "Applied, but removing objects that left the manifest failed: " + strings.Join(out.pruneFailures, "; ")}
	}
	return conditions.Result{Ready: true, Reason: ReasonApplied, Message: "Applied " + conditions.Count(total, "object", "")}
}

func changeSummary(out *outcome) string {
	var parts []string
	for _, p := range []struct {
		n    int
		verb string
	}{{out.count(apply.Created), "created"}, {out.count(apply.Configured), "configured"}, {out.count(apply.Pruned), "pruned"}, {out.count(apply.Released), "released to other owners"}} {
		if p.n > 0 {
			parts = append(parts, conditions.Count(p.n, "object", "")+" "+p.verb)
		}
	}
	return strings.Join(parts, ", ")
}

// appliedState is what a completed pass leaves in status.
type appliedState struct {
	inventory   []v1alpha1.ManagedResource
	destination *v1alpha1.Destination
	checksum    string
	changed     bool
}

// writeStatus writes the status only when it differs from what is stored,
// so an idle resync costs no write.
func (c *Controller) writeStatus(ctx context.Context, vr *v1alpha1.VidraResource, r conditions.Result, applied *appliedState, requested string) error {
	status := vr.Status.DeepCopy()
	status.ObservedGeneration = vr.Generation
	conditions.Apply(&status.Conditions, vr.Generation, r)
	c.setWatchCondition(&status.Conditions, vr.Name, vr.Generation)
	status.Summary = conditions.Summary(r)
	if !r.Suspended {
		status.DeployState = conditions.State(r)
	}
	if r.Reason == ReasonPruneFailed {
		status.DeployState = v1alpha1.StateStale
	}
	if r.Ready {
		status.LastError = ""
	} else if !r.Suspended && !r.Progressing {
		status.LastError = conditions.Truncate(r.Message)
	}
	if applied != nil {
		status.ManagedResources = applied.inventory
		status.ObjectCount = int32(len(applied.inventory))
		if r.Ready || r.Reason == ReasonPruneFailed {
			status.AppliedDestination = applied.destination
			if applied.changed || status.LastAppliedChecksum != applied.checksum || status.LastSyncTime == nil {
				now := metav1.NewTime(c.clock.Now())
				status.LastSyncTime = &now
			}
			status.LastAppliedChecksum = applied.checksum
		}
	}
	status.LastHandledReconcileAt = requested
	c.applyHealth(vr, status)
	if apiequality.Semantic.DeepEqual(*status, vr.Status) {
		return nil
	}
	vr.Status = *status
	return c.applyStatus(ctx, vr)
}

func (c *Controller) applyStatus(ctx context.Context, vr *v1alpha1.VidraResource) error {
	body, err := statusapply.Body("VidraResource", vr.Name, vr.Status)
	if err != nil {
		return err
	}
	updated, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.ApplyPatchType, body, statusapply.Options(), "status")
	if err != nil {
		return fmt.Errorf("update status of %s: %w", vr.Name, err)
	}
	c.written.record(updated)
	return nil
}

func manifestChecksum(vr *v1alpha1.VidraResource) string {
	return manifeststore.Checksum(&vr.Spec)
}

func (c *Controller) maxManifestBytes() int64 {
	if c.opts.MaxManifestBytes > 0 {
		return c.opts.MaxManifestBytes
	}
	return manifeststore.DefaultMaxBytes
}

func (c *Controller) maxResourceBytes() int64 {
	if c.opts.MaxResourceBytes > 0 {
		return c.opts.MaxResourceBytes
	}
	return DefaultMaxResourceBytes
}

// storedSize is the size of the VidraResource as JSON once its status
// records inventory, leaving out its managed fields.
func storedSize(vr *v1alpha1.VidraResource, inventory []v1alpha1.ManagedResource) int64 {
	probe := *vr
	probe.ManagedFields = nil
	probe.Status.ManagedResources = inventory
	data, err := json.Marshal(&probe)
	if err != nil {
		// A VidraResource always encodes; were it not to, the write that
		// follows reports it.
		return 0
	}
	return int64(len(data))
}

func hasFinalizer(vr *v1alpha1.VidraResource) bool {
	for _, f := range vr.Finalizers {
		if f == v1alpha1.VidraResourceFinalizer {
			return true
		}
	}
	return false
}

func (c *Controller) event(vr *v1alpha1.VidraResource, eventType, reason, action, note string, args ...any) {
	if c.recorder == nil {
		return
	}
	c.recorder.Eventf(vr, nil, eventType, reason, action, conditions.Truncate(fmt.Sprintf(note, args...)))
}

// markRecorded flags the objects the inventory already holds.
func markRecorded(objs []*desired, inventory []v1alpha1.ManagedResource, server string) {
	recorded := make(map[string]bool, len(inventory))
	for _, e := range inventory {
		recorded[entryKey(e)] = true
	}
	for _, o := range objs {
		if o.mapping != nil {
			o.recorded = recorded[entryKey(entryFor(o.obj, o.mapping, server))]
		}
	}
}

// inventoryOf lists the objects that are ready to be applied.
func inventoryOf(objs []*desired, server string) []v1alpha1.ManagedResource {
	var out []v1alpha1.ManagedResource
	for _, o := range objs {
		if o.mapping == nil {
			continue
		}
		out = append(out, entryFor(o.obj, o.mapping, server))
	}
	return out
}

func entryFor(u *unstructured.Unstructured, mapping *meta.RESTMapping, server string) v1alpha1.ManagedResource {
	gvk := u.GroupVersionKind()
	return v1alpha1.ManagedResource{
		APIVersion: gvk.GroupVersion().String(),
		Kind:       gvk.Kind,
		Name:       u.GetName(),
		Namespace:  u.GetNamespace(),
		Group:      gvk.Group,
		Version:    gvk.Version,
		Resource:   mapping.Resource.Resource,
		Server:     server,
	}
}

// entryKey identifies an inventory entry independently of the API version,
// so an apiVersion change is the same object rather than a rename.
func entryKey(e v1alpha1.ManagedResource) string {
	return e.Server + "|" + e.Group + "|" + e.Kind + "|" + e.Namespace + "|" + e.Name
}

// mergeInventory returns old plus the entries of next that are new, with
// next's version of entries present in both (keeping the health old
// recorded), in a stable order.
func mergeInventory(old, next []v1alpha1.ManagedResource) []v1alpha1.ManagedResource {
	byKey := map[string]v1alpha1.ManagedResource{}
	for _, e := range old {
		byKey[entryKey(e)] = e
	}
	for _, e := range next {
		if was, ok := byKey[entryKey(e)]; ok {
			e.Health, e.HealthMessage = was.Health, was.HealthMessage
		}
		byKey[entryKey(e)] = e
	}
	out := make([]v1alpha1.ManagedResource, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	sortInventory(out)
	return out
}

func sortInventory(items []v1alpha1.ManagedResource) {
	sort.Slice(items, func(i, j int) bool { return entryKey(items[i]) < entryKey(items[j]) })
}

func countByKind(items []v1alpha1.ManagedResource) map[string]int {
	out := map[string]int{}
	for _, e := range items {
		out[e.Kind]++
	}
	return out
}

// describe names an object for messages without its contents.
func describe(u *unstructured.Unstructured) string {
	return manifest.SecretSafe(u)
}
