package bench

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The model floors: bare loops doing, per artifact, the writes Vidra's
// design cannot do without (one VidraResource per artifact holding its
// manifest and its status, a finalizer, Vidra's markers on the objects),
// and nothing else: no operator, no watch, no decision. Vidra against its
// model floor tells what the operator costs; the model floor against the
// floor tells what the design costs.

// modelConvergeLoop creates, per artifact, the VidraResource, applies its 4
// objects (with Vidra's markers when marked) and writes its status once,
// from `parallelism` workers, and returns how long it took. Unmarked, it
// is the issue's own model: the floor plus one VidraResource write and one
// status write per artifact.
func modelConvergeLoop(ctx context.Context, b *testing.B, c clients, ns string, n int, marked bool) time.Duration {
	start := time.Now()
	inParallel(b, n, func(i int) error {
		if err := createResource(ctx, c, ns, i); err != nil {
			return err
		}
		applyObjects := func() error { return applyArtifact(ctx, c, ns, i, "") }
		if marked {
			applyObjects = func() error { return applyMarkedArtifact(ctx, c, ns, i) }
		}
		if err := applyObjects(); err != nil {
			return err
		}
		return applyResourceStatus(ctx, c, ns, i)
	})
	return time.Since(start)
}

// modelTeardownLoop deletes, per artifact, the VidraResource (which its
// finalizer keeps), its 4 objects, then takes the finalizer off, from
// `parallelism` workers, and returns how long it took. Without finalizer,
// the finalizers are taken off before the clock starts, and the loop only
// deletes the VidraResource and its 4 objects: the least any design with
// one VidraResource per artifact can do.
func modelTeardownLoop(ctx context.Context, b *testing.B, c clients, ns string, n int, finalizer bool) time.Duration {
	vrs := c.vidra.InfrahubV1alpha1().VidraResources()
	if !finalizer {
		inParallel(b, n, func(i int) error {
			_, err := vrs.Patch(ctx, costResourceName(ns, i), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			return err
		})
	}
	policy := metav1.DeletePropagationBackground
	start := time.Now()
	inParallel(b, n, func(i int) error {
		name := costResourceName(ns, i)
		if err := vrs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return err
		}
		for _, o := range artifactObjects(ns, i) {
			if err := c.dyn.Resource(o.gvr).Namespace(ns).Delete(ctx, o.obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
				return err
			}
		}
		if !finalizer {
			return nil
		}
		_, err := vrs.Patch(ctx, name, types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{})
		return err
	})
	return time.Since(start)
}

// deleteModelResources removes the VidraResources a model loop left.
func deleteModelResources(ctx context.Context, b *testing.B, c clients, ns string, n int) {
	vrs := c.vidra.InfrahubV1alpha1().VidraResources()
	inParallel(b, n, func(i int) error {
		name := costResourceName(ns, i)
		_, err := vrs.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err == nil {
			err = vrs.Delete(ctx, name, metav1.DeleteOptions{})
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}
