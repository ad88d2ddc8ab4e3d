package vidraresource

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/health"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
)

// Reasons of the wait (Ready) and of the Healthy condition.
const (
	// ReasonWaitingForHealth: applied, waiting for the objects to become
	// healthy (spec.wait).
	ReasonWaitingForHealth = "WaitingForHealth"
	// ReasonHealthCheckFailed: an object Failed, or the wait timed out.
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonHealthy and ReasonUnhealthy are the events of Healthy turning
	// True, or False because an object Failed.
	ReasonHealthy   = "Healthy"
	ReasonUnhealthy = "Unhealthy"
)

// maxNamed bounds how many objects a message names.
const maxNamed = 5

// healthState is what the controller remembers between passes to serve
// health changes without a full reconcile: which VidraResources have a
// health change waiting, which need a full pass anyway, and when each is
// due for its next full pass or the end of its wait.
type healthState struct {
	mu       sync.Mutex
	pending  map[string]bool
	full     map[string]bool
	nextFull map[string]time.Time
	deadline map[string]time.Time
}

func newHealthState() *healthState {
	return &healthState{pending: map[string]bool{}, full: map[string]bool{}, nextFull: map[string]time.Time{}, deadline: map[string]time.Time{}}
}

func (h *healthState) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, name)
	delete(h.full, name)
	delete(h.nextFull, name)
	delete(h.deadline, name)
}

// OnManagedObjectHealthChange is called by the drift watches when the health
// of a managed object may have changed. Its owners get a health pass: their
// status is brought up to date from the watch caches without applying
// anything, whatever reconcileOnEvents says.
func (c *Controller) OnManagedObjectHealthChange(owners []string) {
	c.health.mu.Lock()
	for _, name := range owners {
		c.health.pending[name] = true
	}
	c.health.mu.Unlock()
	for _, name := range owners {
		if _, err := c.lister.Get(name); err == nil {
			c.queue.Add(name)
		}
	}
}

// wantFull records that the next pass of name must be a full reconcile.
func (c *Controller) wantFull(name string) {
	c.health.mu.Lock()
	c.health.full[name] = true
	c.health.mu.Unlock()
}

// healthOnly decides, when a pass starts, whether a health pass is enough:
// only a health change is waiting, the last full pass succeeded and is not
// due again, and nothing in the VidraResource asks for a reconcile.
func (c *Controller) healthOnly(vr *v1alpha1.VidraResource) bool {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	pending, full := c.health.pending[vr.Name], c.health.full[vr.Name]
	delete(c.health.pending, vr.Name)
	delete(c.health.full, vr.Name)
	next, ok := c.health.nextFull[vr.Name]
	return pending && !full && ok && c.clock.Now().Before(next) &&
		vr.DeletionTimestamp == nil && hasFinalizer(vr) &&
		vr.Status.ObservedGeneration == vr.Generation &&
		vr.Status.LastHandledReconcileAt == vr.Annotations[v1alpha1.AnnotationReconcileRequestedAt] &&
		vr.Status.LastAppliedChecksum == manifestChecksum(vr)
}

// afterFull records when the VidraResource is due for its next full pass
// and shortens requeueAfter to the end of a running wait.
func (c *Controller) afterFull(name string, requeueAfter time.Duration, err error) time.Duration {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	now := c.clock.Now()
	if err != nil {
		delete(c.health.nextFull, name)
		return requeueAfter
	}
	if d, ok := c.health.deadline[name]; ok && d.After(now) && (requeueAfter <= 0 || d.Sub(now) < requeueAfter) {
		requeueAfter = d.Sub(now)
	}
	if requeueAfter > 0 {
		c.health.nextFull[name] = now.Add(requeueAfter)
	} else {
		// No periodic pass (suspended, invalid manifest): health passes
		// may run until something else asks for a reconcile.
		c.health.nextFull[name] = now.Add(100 * 365 * 24 * time.Hour)
	}
	return requeueAfter
}

// syncHealth is the health pass: per-object health, the summary, Healthy
// and, with spec.wait, Ready, written only when they changed. The write is
// conditional on the resourceVersion read, so a status the lister has not
// caught up with is never written back; a conflict brings a full pass.
// It returns the time left until the next full pass is due.
func (c *Controller) syncHealth(ctx context.Context, vr *v1alpha1.VidraResource) (time.Duration, error) {
	status := vr.Status.DeepCopy()
	c.applyHealth(vr, status)
	c.health.mu.Lock()
	next := c.health.nextFull[vr.Name]
	c.health.mu.Unlock()
	requeue := next.Sub(c.clock.Now())
	if requeue < 0 {
		requeue = 0
	}
	if apiequality.Semantic.DeepEqual(*status, vr.Status) {
		return requeue, nil
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(),
		"kind":       "VidraResource",
		"metadata":   map[string]any{"name": vr.Name, "resourceVersion": c.written.statusVersion(vr)},
		"status":     status,
	})
	if err != nil {
		return 0, fmt.Errorf("encode status of %s: %w", vr.Name, err)
	}
	force := true
	updated, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force}, "status")
	if err != nil {
		c.wantFull(vr.Name)
		if apierrors.IsConflict(err) {
			// The lister was behind (usually our own last write): a full
			// pass follows at once, and this is no error worth counting.
			c.queue.Add(vr.Name)
			return 0, nil
		}
		return 0, fmt.Errorf("update health of %s: %w", vr.Name, err)
	}
	c.written.record(updated)
	return requeue, nil
}

// applyHealth sets, in status, the health of every inventory entry from the
// watch caches, the summary, the Healthy condition and, with spec.wait, the
// Ready condition of a VidraResource whose objects were applied. It emits
// the events of the transitions from vr.Status.
func (c *Controller) applyHealth(vr *v1alpha1.VidraResource, status *v1alpha1.VidraResourceStatus) {
	watches := map[string]func(schema.GroupVersionResource, string, string) (health.Result, bool){}
	for _, cl := range c.clusters.Clusters() {
		watches[cl.Server] = cl.Watches.Health
	}
	entries := make([]v1alpha1.ManagedResource, len(status.ManagedResources))
	copy(entries, status.ManagedResources)
	sum := v1alpha1.HealthSummary{Status: v1alpha1.HealthCurrent}
	var failed, waiting []string
	for i := range entries {
		e := &entries[i]
		r := health.Result{Status: health.Unknown, Message: "not observed yet"}
		if get := watches[e.Server]; get != nil && e.Resource != "" {
			r, _ = get(schema.GroupVersionResource{Group: e.Group, Version: e.Version, Resource: e.Resource}, e.Namespace, e.Name)
		}
		e.Health, e.HealthMessage = string(r.Status), r.Message
		switch r.Status {
		case health.Current:
			sum.Current++
		case health.InProgress:
			sum.InProgress++
		case health.Failed:
			sum.Failed++
		default:
			sum.Unknown++
		}
		if health.Worse(r.Status, health.Status(sum.Status)) {
			sum.Status = string(r.Status)
		}
		if r.Status != health.Current {
			line := fmt.Sprintf("%s (%s", entryName(*e), r.Status)
			if r.Message != "" {
				line += ": " + r.Message
			}
			line += ")"
			if r.Status == health.Failed {
				failed = append(failed, line)
			} else {
				waiting = append(waiting, line)
			}
		}
	}
	status.ManagedResources = entries
	status.Health = &sum

	unhealthy := append(append([]string{}, failed...), waiting...)
	healthy := metav1.Condition{Type: v1alpha1.ConditionHealthy, ObservedGeneration: vr.Generation, Reason: sum.Status}
	switch sum.Status {
	case v1alpha1.HealthCurrent:
		healthy.Status, healthy.Message = metav1.ConditionTrue, fmt.Sprintf("All %d objects are healthy", len(entries))
	case v1alpha1.HealthUnknown:
		healthy.Status, healthy.Message = metav1.ConditionUnknown, fmt.Sprintf("%d of %d objects not observed yet: %s", len(unhealthy), len(entries), named(unhealthy))
	default:
		healthy.Status, healthy.Message = metav1.ConditionFalse, fmt.Sprintf("%d of %d objects not healthy: %s", len(unhealthy), len(entries), named(unhealthy))
	}
	healthy.Message = conditions.Truncate(healthy.Message)
	meta.SetStatusCondition(&status.Conditions, healthy)
	c.waitFor(vr, status, failed, unhealthy)
	keepTransitionTimes(vr.Status.Conditions, status.Conditions)

	before := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionHealthy)
	switch {
	case before != nil && before.Status == healthy.Status && before.Reason == healthy.Reason:
	case healthy.Status == metav1.ConditionTrue:
		// Only a recovery is news: objects healthy from the start say so
		// in the condition, without an Event each (one per artifact at
		// cold start).
		if before != nil && before.Status == metav1.ConditionFalse {
			c.event(vr, corev1.EventTypeNormal, ReasonHealthy, "HealthCheck", "%s", healthy.Message)
		}
	case sum.Status == v1alpha1.HealthFailed:
		c.event(vr, corev1.EventTypeWarning, ReasonUnhealthy, "HealthCheck", "%s", healthy.Message)
	}
}

// waitFor turns Ready into "applied and healthy" when spec.wait is set and
// the objects were applied: Ready stays False (WaitingForHealth) until every
// object is Current, and turns False with HealthCheckFailed when one Failed
// or the timeout, counted from the last apply, passed first.
func (c *Controller) waitFor(vr *v1alpha1.VidraResource, status *v1alpha1.VidraResourceStatus, failed, unhealthy []string) {
	c.health.mu.Lock()
	delete(c.health.deadline, vr.Name)
	c.health.mu.Unlock()
	ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	if vr.Spec.Wait == nil || ready == nil || ready.ObservedGeneration != vr.Generation {
		return
	}
	switch ready.Reason {
	case ReasonApplied, ReasonWaitingForHealth, ReasonHealthCheckFailed:
	default:
		return // not applied: that problem is what Ready reports
	}
	timeout := vr.Spec.Wait.TimeoutOrDefault()
	since := c.clock.Now()
	if status.LastSyncTime != nil {
		since = status.LastSyncTime.Time
	}
	deadline := since.Add(timeout)
	var r conditions.Result
	switch {
	case len(unhealthy) == 0:
		r = conditions.Result{Ready: true, Reason: ReasonApplied, Message: fmt.Sprintf("Applied %d objects, all healthy", len(status.ManagedResources))}
	case len(failed) > 0:
		r = conditions.Result{Reason: ReasonHealthCheckFailed, Message: fmt.Sprintf("Health check failed for %d objects: %s", len(failed), named(failed))}
	case !c.clock.Now().Before(deadline):
		r = conditions.Result{Reason: ReasonHealthCheckFailed, Message: fmt.Sprintf("Timed out after %s waiting for %d objects to become healthy: %s", timeout, len(unhealthy), named(unhealthy))}
	default:
		c.health.mu.Lock()
		c.health.deadline[vr.Name] = deadline
		c.health.mu.Unlock()
		r = conditions.Result{Progressing: true, Reason: ReasonWaitingForHealth, Message: fmt.Sprintf("Applied; waiting up to %s for %d objects to become healthy: %s", timeout, len(unhealthy), named(unhealthy))}
	}
	conditions.Apply(&status.Conditions, vr.Generation, r)
	status.DeployState = conditions.State(r)
	if r.Ready {
		status.LastError = ""
	} else if !r.Progressing {
		status.LastError = conditions.Truncate(r.Message)
	}
	if r.Reason == ReasonHealthCheckFailed {
		if before := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady); before == nil || before.Reason != ReasonHealthCheckFailed {
			c.event(vr, corev1.EventTypeWarning, ReasonHealthCheckFailed, "HealthCheck", "%s", r.Message)
		}
	}
}

// entryName names an inventory entry in health messages.
func entryName(e v1alpha1.ManagedResource) string {
	if e.Namespace == "" {
		return e.Kind + " " + e.Name
	}
	return e.Kind + " " + e.Namespace + "/" + e.Name
}

// keepTransitionTimes gives the conditions whose status did not change
// their previous transition time back: the Ready and Reconciling
// conditions are recomputed after the apply's, and a status that did not
// change must not cost a write.
func keepTransitionTimes(before, after []metav1.Condition) {
	for i := range after {
		if old := meta.FindStatusCondition(before, after[i].Type); old != nil && old.Status == after[i].Status {
			after[i].LastTransitionTime = old.LastTransitionTime
		}
	}
}

// named lists the first objects of a list and counts the rest.
func named(items []string) string {
	if len(items) <= maxNamed {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:maxNamed], "; ") + fmt.Sprintf("; and %d more", len(items)-maxNamed)
}
