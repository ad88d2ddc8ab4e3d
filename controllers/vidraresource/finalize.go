package vidraresource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
		var errs []error
		remaining := c.cleanup(ctx, vr, &failures, &errs)
		if len(failures) > 0 {
			msg := fmt.Sprintf("Deleting: %d objects could not be removed yet: %s. To let go without removing them, annotate the VidraResource with %s=%s",
				len(remaining), strings.Join(failures, "; "), v1alpha1.AnnotationDeletionPolicy, v1alpha1.DeletionPolicyOrphan)
			c.event(vr, corev1.EventTypeWarning, ReasonDeletionFailed, "Delete", "%s", msg)
			vr.Status.ManagedResources = remaining
			vr.Status.ObjectCount = int32(len(remaining))
			_ = c.writeStatus(ctx, vr, conditions.Result{Reason: ReasonDeletionFailed, Message: msg}, nil, vr.Status.LastHandledReconcileAt)
			return 0, fmt.Errorf("clean up %s: %w", vr.Name, errors.Join(errs...))
		}
	} else {
		logger.Info("Orphaning managed objects as asked", "objects", len(vr.Status.ManagedResources))
	}

	if err := c.removeFinalizer(ctx, vr); err != nil {
		return 0, err
	}
	if !orphan {
		logger.Info("VidraResource deleted, its objects removed or released", "vidraResource", vr.Name, "objects", len(vr.Status.ManagedResources))
	}
	c.forget(vr.Name)
	return 0, nil
}

// addFinalizer adds Vidra's finalizer with a JSON patch on metadata, so it
// neither rewrites the spec nor loses a concurrent change: the patch
// carries the resourceVersion read, which the server turns into a
// precondition (a conflict, retried, when the object changed meanwhile).
func (c *Controller) addFinalizer(ctx context.Context, vr *v1alpha1.VidraResource) (*v1alpha1.VidraResource, error) {
	add := map[string]any{"op": "add", "path": "/metadata/finalizers/-", "value": v1alpha1.VidraResourceFinalizer}
	if len(vr.Finalizers) == 0 {
		add = map[string]any{"op": "add", "path": "/metadata/finalizers", "value": []string{v1alpha1.VidraResourceFinalizer}}
	}
	updated, err := c.patchMetadata(ctx, vr, add)
	if err != nil {
		return nil, fmt.Errorf("add finalizer to %s: %w", vr.Name, err)
	}
	return updated, nil
}

// removeFinalizer removes Vidra's finalizer with a JSON patch on metadata,
// on the version read.
func (c *Controller) removeFinalizer(ctx context.Context, vr *v1alpha1.VidraResource) error {
	for i, f := range vr.Finalizers {
		if f != v1alpha1.VidraResourceFinalizer {
			continue
		}
		path := "/metadata/finalizers/" + strconv.Itoa(i)
		_, err := c.patchMetadata(ctx, vr,
			map[string]any{"op": "test", "path": path, "value": f},
			map[string]any{"op": "remove", "path": path})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove finalizer from %s: %w", vr.Name, err)
		}
		return nil
	}
	return nil
}

// patchMetadata applies JSON patch operations to a VidraResource's
// metadata, conditional on the resourceVersion it was read at.
func (c *Controller) patchMetadata(ctx context.Context, vr *v1alpha1.VidraResource, ops ...map[string]any) (*v1alpha1.VidraResource, error) {
	ops = append([]map[string]any{{"op": "replace", "path": "/metadata/resourceVersion", "value": vr.ResourceVersion}}, ops...)
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	return c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
}

// cleanup releases every inventory entry and returns those it could not.
func (c *Controller) cleanup(ctx context.Context, vr *v1alpha1.VidraResource, failures *[]string, errs *[]error) []v1alpha1.ManagedResource {
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
			*errs = append(*errs, err)
			remaining = append(remaining, entries...)
			continue
		}
		for _, e := range sortForDeletion(entries) {
			change := c.release(ctx, target, vr, e, true)
			target.Observe(c.clock.Now(), change.Err)
			c.metrics.ObserveApply(target.Name(), string(change.Action))
			if change.Err != nil {
				*failures = append(*failures, fmt.Sprintf("%s: %v", describeEntry(e), change.Err))
				*errs = append(*errs, change.Err)
				remaining = append(remaining, e)
				continue
			}
		}
	}
	return remaining
}
