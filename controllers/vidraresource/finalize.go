package vidraresource

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/internal/conditions"
)

// finalize runs when a VidraResource is being deleted: every object it
// manages is deleted, or released when another owner still declares it,
// and then the finalizer lets the VidraResource go. The orphan annotation
// skips the cleanup, for destinations that are gone for good.
func (c *Controller) finalize(ctx context.Context, vr *v1alpha1.VidraResource) (time.Duration, error) {
	if !hasFinalizer(vr) {
		c.forget(vr.Name)
		return 0, nil
	}
	logger := klog.FromContext(ctx)
	orphan := vr.Annotations[v1alpha1.AnnotationDeletionPolicy] == v1alpha1.DeletionPolicyOrphan
	if !orphan {
		var failures []string
		remaining := c.cleanup(ctx, vr, &failures)
		if len(failures) > 0 {
			msg := fmt.Sprintf("Deleting: %d objects could not be removed yet: %s. To let go without removing them, annotate the VidraResource with %s=%s",
				len(remaining), strings.Join(failures, "; "), v1alpha1.AnnotationDeletionPolicy, v1alpha1.DeletionPolicyOrphan)
			c.event(vr, corev1.EventTypeWarning, ReasonDeletionFailed, "Delete", "%s", msg)
			vr.Status.ManagedResources = remaining
			vr.Status.ObjectCount = int32(len(remaining))
			_ = c.writeStatus(ctx, vr, conditions.Result{Reason: ReasonDeletionFailed, Message: msg}, nil, vr.Status.LastHandledReconcileAt)
			return 0, fmt.Errorf("clean up %s: %s", vr.Name, strings.Join(failures, "; "))
		}
	} else {
		logger.Info("Orphaning managed objects as asked", "objects", len(vr.Status.ManagedResources))
	}

	finalizers := vr.Finalizers[:0:0]
	for _, f := range vr.Finalizers {
		if f != v1alpha1.VidraResourceFinalizer {
			finalizers = append(finalizers, f)
		}
	}
	vr.Finalizers = finalizers
	if _, err := c.client.InfrahubV1alpha1().VidraResources().Update(ctx, vr, metav1.UpdateOptions{FieldManager: v1alpha1.FieldManager}); err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("remove finalizer from %s: %w", vr.Name, err)
	}
	if !orphan {
		logger.Info("VidraResource deleted, its objects removed or released", "vidraResource", vr.Name, "objects", len(vr.Status.ManagedResources))
	}
	c.forget(vr.Name)
	return 0, nil
}

// cleanup releases every inventory entry and returns those it could not.
func (c *Controller) cleanup(ctx context.Context, vr *v1alpha1.VidraResource, failures *[]string) []v1alpha1.ManagedResource {
	var remaining []v1alpha1.ManagedResource
	byServer := map[string][]v1alpha1.ManagedResource{}
	for _, e := range vr.Status.ManagedResources {
		byServer[e.Server] = append(byServer[e.Server], e)
	}
	current, currentErr := c.clusters.Target(ctx, c.destination(vr))
	for server, entries := range byServer {
		var err error
		target := current
		if currentErr != nil || target.Server != server {
			if currentErr == nil {
				target, err = c.targetFor(ctx, vr, current, server)
			} else {
				err = currentErr
			}
		}
		if err == nil {
			err = target.Reachable(c.clock.Now())
		}
		if err != nil {
			*failures = append(*failures, fmt.Sprintf("%s: %v", serverName(server), err))
			remaining = append(remaining, entries...)
			continue
		}
		for _, e := range sortForDeletion(entries) {
			result, err := c.release(ctx, target, vr.Name, e, true)
			target.Observe(c.clock.Now(), err)
			if err != nil {
				*failures = append(*failures, fmt.Sprintf("%s: %v", describeEntry(e), err))
				remaining = append(remaining, e)
				continue
			}
			c.metrics.ObserveApply(target.Name(), result)
		}
	}
	return remaining
}
