package vidraresource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	gosync "sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
	"github.com/vidra-operator/vidra/controllers/internal/statusapply"
	"github.com/vidra-operator/vidra/controllers/internal/workloop"
	"github.com/vidra-operator/vidra/controllers/manifest"
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
)

// maxManifestBytes bounds what is parsed: etcd cannot store a larger
// VidraResource anyway.
const maxManifestBytes = 2 << 20

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
	created, configured, unchanged, pruned, released int
	failures                                         []string // apply errors, retried with backoff
	notOwned                                         []string // foreign objects left alone
	conflicts                                        []string // declared differently by another owner
	pruneFailures                                    []string
	waiting                                          []string // CRs waiting for their CRD
	retryable                                        bool
	conflictRetry                                    bool
}

func (o *outcome) changed() bool { return o.created+o.configured+o.pruned+o.released > 0 }

// sync reconciles one VidraResource: apply every object of the manifest,
// record them, prune what left, and report.
func (c *Controller) sync(ctx context.Context, vr *v1alpha1.VidraResource) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	if vr.DeletionTimestamp != nil {
		return c.finalize(ctx, vr)
	}
	if !hasFinalizer(vr) {
		vr.Finalizers = append(vr.Finalizers, v1alpha1.VidraResourceFinalizer)
		updated, err := c.client.InfrahubV1alpha1().VidraResources().Update(ctx, vr, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager})
		if err != nil {
			return 0, fmt.Errorf("add finalizer: %w", err)
		}
		vr = updated
	}
	requested := vr.Annotations[v1alpha1.AnnotationReconcileRequestedAt]

	if vr.Spec.Suspend {
		return 0, c.writeStatus(ctx, vr, conditions.Result{Reason: ReasonSuspended, Message: "Suspended: objects are neither applied nor pruned"}, nil, requested)
	}

	docs, err := manifest.ParseWithOptions([]byte(vr.Spec.Manifest), manifest.ParseOptions{MaxBytes: maxManifestBytes})
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
		_ = c.writeStatus(ctx, vr, conditions.Result{Reason: ReasonClusterUnavailable, Message: err.Error()}, nil, requested)
		return 0, fmt.Errorf("destination of %s: %w", vr.Name, err)
	}

	objs, err := c.resolve(ctx, target, vr, docs)
	if err != nil {
		c.event(vr, corev1.EventTypeWarning, ReasonInvalidManifest, "Parse", "Manifest is invalid: %s", err)
		return 0, c.writeStatus(ctx, vr, conditions.Result{Stalled: true, Reason: ReasonInvalidManifest, Message: "Invalid manifest: " + err.Error()}, nil, requested)
	}

	// Record everything about to be applied before applying it, so a crash
	// in the middle leaves nothing untracked.
	markRecorded(objs, vr.Status.ManagedResources, target.Server)
	planned := mergeInventory(vr.Status.ManagedResources, inventoryOf(objs, target.Server))
	if len(planned) != len(vr.Status.ManagedResources) || !apiequality.Semantic.DeepEqual(planned, vr.Status.ManagedResources) {
		vr.Status.ManagedResources = planned
		vr.Status.ObjectCount = int32(len(planned))
		conditions.Apply(&vr.Status.Conditions, vr.Generation, conditions.Result{Progressing: true, Reason: ReasonProgressing, Message: "Applying objects"})
		vr.Status.DeployState = v1alpha1.StateRunning
		if err := c.applyStatus(ctx, vr); err != nil {
			return 0, fmt.Errorf("record inventory: %w", err)
		}
	}

	// Watch what we manage on this cluster (started before applying, so the
	// cache is warm sooner); other clusters are forgotten once their
	// objects are gone.
	c.watch(target, vr.Name, objs)
	var out outcome
	c.applyAll(ctx, target, vr, objs, &out)

	inventory := vr.Status.ManagedResources
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
	if out.changed() {
		c.event(vr, corev1.EventTypeNormal, ReasonApplied, "Apply", "%s", changeSummary(&out))
	}
	for _, msg := range append(append([]string{}, out.notOwned...), out.conflicts...) {
		c.event(vr, corev1.EventTypeWarning, result.Reason, "Apply", "%s", msg)
	}
	logger.V(2).Info("Reconciled", "created", out.created, "configured", out.configured, "unchanged", out.unchanged,
		"pruned", out.pruned, "failed", len(out.failures), "conflicts", len(out.conflicts), "notOwned", len(out.notOwned))

	applied := &appliedState{inventory: inventory, destination: vr.Spec.Destination.DeepCopy(), checksum: manifestChecksum(vr), changed: out.changed()}
	if err := c.writeStatus(ctx, vr, result, applied, requested); err != nil {
		return 0, err
	}
	switch {
	case out.retryable:
		return 0, fmt.Errorf("%s: %s", vr.Name, strings.Join(append(out.failures, out.pruneFailures...), "; "))
	case len(out.waiting) > 0:
		return c.opts.CRDWait, nil
	case out.conflictRetry:
		return workloop.Jitter(min(c.interval(vr), c.opts.ConflictRecheck)), nil
	}
	return workloop.Jitter(c.interval(vr)), nil
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

// applyAll applies the objects phase by phase: CRDs, then Namespaces,
// then everything else in parallel (the API server does not care in which
// order a Deployment and its ServiceAccount arrive), then admission
// webhooks, which could otherwise reject the rest. One failure does not stop
// the others. A CR whose CRD is not served yet waits for the next pass,
// which comes shortly and records it in the inventory before applying it.
func (c *Controller) applyAll(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, objs []*desired, out *outcome) {
	type applied struct {
		result string
		err    error
	}
	results := make([]applied, len(objs))
	for _, phase := range phases(objs) {
		var wg gosync.WaitGroup
		sem := make(chan struct{}, applyParallelism)
		for _, i := range phase {
			o := objs[i]
			if o.err != nil || o.waitingForCRD {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				_, result, err := c.applyOne(ctx, target, vr, o)
				target.Observe(c.clock.Now(), err)
				results[i] = applied{result, err}
			}()
		}
		wg.Wait()
	}
	// Collected in document order, so the status reads the same every pass.
	for i, o := range objs {
		switch {
		case o.err != nil:
			out.failures = append(out.failures, fmt.Sprintf("%s: %v", o.name(), o.err))
			out.retryable = true
			c.metrics.ObserveApply(target.Name(), resultFailed)
			continue
		case o.waitingForCRD:
			out.waiting = append(out.waiting, o.name())
			continue
		}
		r := results[i]
		c.metrics.ObserveApply(target.Name(), r.result)
		switch r.result {
		case resultCreated:
			out.created++
		case resultConfigured:
			out.configured++
		case resultUnchanged:
			out.unchanged++
		case resultNotOwned:
			out.notOwned = append(out.notOwned, r.err.Error())
		case resultConflict:
			out.conflicts = append(out.conflicts, r.err.Error())
			out.conflictRetry = true
		default:
			out.failures = append(out.failures, fmt.Sprintf("%s: %v", o.name(), r.err))
			out.retryable = true
		}
	}
	if len(out.waiting) > 0 {
		// The CRDs were just applied: see them on the next pass.
		target.Mapper.Refresh(ctx)
	}
}

// applyParallelism bounds the concurrent applies of one VidraResource.
const applyParallelism = 8

// phases groups object indexes (already in apply order) into the steps
// applyAll takes one after the other.
func phases(objs []*desired) [][]int {
	phaseOf := func(gk schema.GroupKind) int {
		switch {
		case gk == crdGroupKind:
			return 0
		case gk.Group == "" && gk.Kind == "Namespace":
			return 1
		case gk.Group == "admissionregistration.k8s.io":
			return 3
		}
		return 2
	}
	out := make([][]int, 4)
	for i, o := range objs {
		p := phaseOf(o.gvk.GroupKind())
		out[p] = append(out[p], i)
	}
	return out
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
		return conditions.Result{Reason: ReasonApplyFailed, Message: fmt.Sprintf("%d of %d objects failed: %s", len(out.failures), total, strings.Join(out.failures, "; "))}
	case len(out.notOwned) > 0:
		return conditions.Result{Stalled: true, Reason: ReasonNotOwned, Message: strings.Join(out.notOwned, "; ")}
	case len(out.conflicts) > 0:
		return conditions.Result{Stalled: true, Reason: ReasonConflict, Message: strings.Join(out.conflicts, "; ")}
	case len(out.waiting) > 0:
		return conditions.Result{Progressing: true, Reason: ReasonWaitingForCRD, Message: "Waiting for CRDs to be established before applying: " + strings.Join(out.waiting, ", ")}
	case len(out.pruneFailures) > 0:
		return conditions.Result{Reason: ReasonPruneFailed, Message: "Applied, but removing objects that left the manifest failed: " + strings.Join(out.pruneFailures, "; ")}
	}
	return conditions.Result{Ready: true, Reason: ReasonApplied, Message: fmt.Sprintf("Applied %d objects", total)}
}

func changeSummary(out *outcome) string {
	var parts []string
	for _, p := range []struct {
		n    int
		verb string
	}{{out.created, "created"}, {out.configured, "configured"}, {out.pruned, "pruned"}, {out.released, "released to other owners"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.verb))
		}
	}
	return "Objects " + strings.Join(parts, ", ")
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
	status.DeployState = conditions.State(r)
	if r.Reason == ReasonPruneFailed {
		status.DeployState = v1alpha1.StateStale
	}
	if r.Ready {
		status.LastError = ""
	} else if r.Reason != ReasonSuspended && !r.Progressing {
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
	if _, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.ApplyPatchType, body, statusapply.Options(), "status"); err != nil {
		return fmt.Errorf("update status of %s: %w", vr.Name, err)
	}
	return nil
}

func manifestChecksum(vr *v1alpha1.VidraResource) string {
	sum := sha256.Sum256([]byte(vr.Spec.Manifest))
	return hex.EncodeToString(sum[:])
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
