package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
)

const reconcileUsage = `Ask the operator to reconcile an InfrahubSync or a GitSync now: Infrahub or
the repository is read again and changed artifacts or directories are
written to their VidraResources. A sync is NAME (an InfrahubSync, else a
GitSync), infrahubsync/NAME or gitsync/NAME. The request is the
annotation ` + v1alpha1.AnnotationReconcileRequestedAt + `
set to the current time; the operator echoes it in status.lastHandledReconcileAt.

With --resources the sync's VidraResources are asked too, so their objects
are re-applied (drift repaired) even when no artifact changed.

With --wait the command waits until the request was handled and the sync
(and with --resources each VidraResource) is Ready for its current
generation. It fails at once with the condition's message when the object is
Stalled or failed, and after --timeout otherwise.

Usage:
  kubectl vidra reconcile <sync> [--resources] [--wait [--timeout 5m]]`

// waitPoll is how often --wait reads the objects.
const waitPoll = 250 * time.Millisecond

func runReconcile(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("reconcile", reconcileUsage)
	withResources := f.Bool("resources", false, "also ask each of the sync's VidraResources to reconcile")
	wait := f.Bool("wait", false, "wait until the request is handled and everything is Ready")
	timeout := f.Duration("timeout", 5*time.Minute, "how long --wait waits (implies --wait)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reconcile", "reconcile needs exactly one sync name")
	}
	if f.isSet("timeout") {
		*wait = true
	}
	if *timeout <= 0 {
		return usagef("reconcile", "--timeout must be positive")
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	sync, err := getSync(ctx, c, pos[0])
	if err != nil {
		return err
	}
	name := sync.Name
	requested := a.now().UTC().Format(time.RFC3339Nano)
	patch, err := annotationPatch(requested)
	if err != nil {
		return err
	}
	var resources []string
	if *withResources {
		// The VidraResources first, so a sync pass that rewrites them does
		// not race with the annotation.
		vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{
			LabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.LabelSync: infrahubsync.SyncLabelValue(name)}).String(),
		})
		if err != nil {
			return fmt.Errorf("list VidraResources of %s: %w", name, err)
		}
		for i := range vrs.Items {
			vr := &vrs.Items[i]
			if ref := metav1.GetControllerOf(vr); ref == nil || ref.UID != sync.UID || vr.DeletionTimestamp != nil {
				continue
			}
			if _, err := c.vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("annotate VidraResource %s: %w", vr.Name, err)
			}
			resources = append(resources, vr.Name)
		}
		sort.Strings(resources)
	}
	if err := sync.patch(ctx, c, patch); err != nil {
		return err
	}
	what := sync.String()
	if len(resources) > 0 {
		what += fmt.Sprintf(" and its %d VidraResources", len(resources))
	}
	fmt.Fprintf(a.stdout, "Reconcile of %s requested at %s\n", what, requested)
	if !*wait {
		return nil
	}

	waitCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var last string
	for {
		done, msg, err := reconcileDone(waitCtx, c, sync, requested, resources)
		if err != nil {
			return err
		}
		if done {
			fmt.Fprintln(a.stdout, msg)
			return nil
		}
		last = msg
		select {
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last == "" {
				return fmt.Errorf("timed out after %s waiting for %s", *timeout, what)
			}
			return fmt.Errorf("timed out after %s waiting for %s: %s", *timeout, what, last)
		case <-time.After(waitPoll):
		}
	}
}

func annotationPatch(value string) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{v1alpha1.AnnotationReconcileRequestedAt: value},
	}})
}

func syncGetError(name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("InfrahubSync %q not found", name)
	}
	return fmt.Errorf("InfrahubSync %s: %w", name, err)
}

// errFailed marks a reconcile that ended in failure rather than timing out.
var errFailed = errors.New("reconcile failed")

// reconcileDone reports whether the request was handled and all is Ready.
// A Stalled or failed object is an error carrying its condition message;
// otherwise msg says what is still awaited.
func reconcileDone(ctx context.Context, c *clients, target *syncObject, requested string, resources []string) (bool, string, error) {
	sync, err := getSync(ctx, c, strings.ToLower(target.Kind)+"/"+target.Name)
	if err != nil {
		if ctx.Err() != nil {
			return false, "", nil // the caller reports the timeout
		}
		return false, "", err
	}
	ok, msg, err := handled(sync.String(), sync.LastHandled, requested, sync.Conditions, sync.Generation)
	if err != nil || !ok {
		return false, msg, err
	}
	summary := msg
	var waiting []string
	for _, vrName := range resources {
		vr, err := c.vidra.InfrahubV1alpha1().VidraResources().Get(ctx, vrName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // pruned by this very reconcile
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, "", nil
			}
			return false, "", fmt.Errorf("VidraResource %s: %w", vrName, err)
		}
		ok, msg, err := handled("VidraResource "+vrName, vr.Status.LastHandledReconcileAt, requested, vr.Status.Conditions, vr.Generation)
		if err != nil {
			return false, "", err
		}
		if !ok {
			waiting = append(waiting, msg)
		}
	}
	if len(waiting) > 0 {
		return false, strings.Join(waiting, "; "), nil
	}
	return true, summary, nil
}

// handled judges one object: done when it echoed the request and is Ready
// for its generation; an error when it echoed it and is Stalled or failed
// without further progress coming.
func handled(what, lastHandled, requested string, conds []metav1.Condition, generation int64) (bool, string, error) {
	if lastHandled != requested {
		return false, what + " has not handled the request yet", nil
	}
	if meta.IsStatusConditionTrue(conds, v1alpha1.ConditionSuspended) {
		// Ready keeps its last value while suspended: waiting would not end.
		return false, "", &exitCodeError{code: exitFailure, err: fmt.Errorf("%w: %s is suspended (kubectl vidra resume)", errFailed, what)}
	}
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	if ready == nil || ready.ObservedGeneration != generation {
		return false, what + " has not reported on its current generation yet", nil
	}
	if ready.Status == metav1.ConditionTrue {
		return true, fmt.Sprintf("%s is Ready: %s", what, ready.Message), nil
	}
	if meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReconciling) && !meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled) {
		return false, fmt.Sprintf("%s is reconciling: %s", what, ready.Message), nil
	}
	return false, "", &exitCodeError{code: exitFailure, err: fmt.Errorf("%w: %s is not Ready (%s): %s", errFailed, what, ready.Reason, ready.Message)}
}
