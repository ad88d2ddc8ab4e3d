package infrahubsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// OwnerLookup reads a sync from the API server, not from a cache: a sync
// missing from an informer may only have left this shard. It returns the
// UID of the sync of that name, "" when there is none.
type OwnerLookup func(ctx context.Context, name string) (types.UID, error)

// LookupBy makes an OwnerLookup of a typed client's Get.
func LookupBy[T metav1.Object](get func(ctx context.Context, name string, opts metav1.GetOptions) (T, error)) OwnerLookup {
	return func(ctx context.Context, name string) (types.UID, error) {
		obj, err := get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return obj.GetUID(), nil
	}
}

// RemoveOwnedByGone deletes the VidraResources controlled by a sync of the
// given kind and name that no longer exists, the way the garbage collector
// would, without waiting for it: the collector deletes at the controller
// manager's request rate (20 a second by default), so a sync of thousands
// of artifacts would take minutes to go.
//
// Each deletion is conditional on the UID and resourceVersion the cache
// holds. A VidraResource changed since (the collector orphaning it, for
// `kubectl delete --cascade=orphan`) is read again and deleted only if it
// is still controlled by the sync that is gone. It returns how many it
// deleted.
func (w Writer) RemoveOwnedByGone(ctx context.Context, kind, name string, lookup OwnerLookup) (int, error) {
	selector := labels.SelectorFromSet(labels.Set{LabelSyncKey: SyncLabelValue(name)})
	cached, err := w.Resources.List(selector)
	if err != nil {
		return 0, fmt.Errorf("list the VidraResources of %s %s: %w", kind, name, err)
	}
	var candidates []*v1alpha1.VidraResource
	for _, vr := range cached {
		if vr.DeletionTimestamp == nil && controlledBy(vr, kind, name) {
			candidates = append(candidates, vr)
		}
	}
	if len(candidates) == 0 {
		return 0, nil
	}
	live, err := lookup(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("look up %s %s: %w", kind, name, err)
	}
	// ownedByGone holds for a VidraResource still to be deleted: not on
	// its way out, and controlled by a sync of that name that is not the
	// live one.
	ownedByGone := func(vr *v1alpha1.VidraResource) bool {
		return vr.DeletionTimestamp == nil && controlledBy(vr, kind, name) && metav1.GetControllerOf(vr).UID != live
	}

	return w.deleteEach(ctx, candidates, kind, name, ownedByGone)
}

// deleteEach deletes, in parallel, each of vrs for which due holds, and
// returns how many it deleted.
func (w Writer) deleteEach(ctx context.Context, vrs []*v1alpha1.VidraResource, kind, name string, due func(*v1alpha1.VidraResource) bool) (int, error) {
	var (
		mu      gosync.Mutex
		wg      gosync.WaitGroup
		errs    []error
		deleted int
	)
	sem := make(chan struct{}, artifactParallelism)
	for _, vr := range vrs {
		if !due(vr) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := w.removeIfStillOwned(ctx, vr, kind, name, due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				deleted++
			}
		}()
	}
	wg.Wait()
	return deleted, errors.Join(errs...)
}

// MetadataPatch writes a JSON merge patch to a sync's metadata.
type MetadataPatch func(ctx context.Context, name string, patch []byte) error

// PatchBy makes a MetadataPatch of a typed client's Patch.
func PatchBy[T any](patch func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)) MetadataPatch {
	return func(ctx context.Context, name string, data []byte) error {
		_, err := patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
		return err
	}
}

// EnsureSyncFinalizer puts SyncFinalizer on a sync that lacks it: one
// write in the life of a sync.
func EnsureSyncFinalizer(ctx context.Context, sync metav1.Object, patch MetadataPatch) error {
	if slices.Contains(sync.GetFinalizers(), v1alpha1.SyncFinalizer) {
		return nil
	}
	finalizers := append(slices.Clone(sync.GetFinalizers()), v1alpha1.SyncFinalizer)
	if err := patchFinalizers(ctx, sync, finalizers, patch); err != nil {
		return fmt.Errorf("add finalizer to %s: %w", sync.GetName(), err)
	}
	return nil
}

// ReleaseDeleted deletes the VidraResources of a sync on its way out and,
// once none is left, takes SyncFinalizer off so that the sync goes. The
// garbage collector then finds no dependent left: without the finalizer it
// would read and delete every VidraResource itself, at the controller
// manager's request rate, while this controller deletes them too.
//
// While the sync carries the "orphan" finalizer (`kubectl delete
// --cascade=orphan`) it deletes nothing: the collector first takes the
// owner references off, then that finalizer, and the VidraResources are
// no longer this sync's. owned are the VidraResources the sync controls,
// as its controller knows them. While VidraResources are on their way out
// it returns when to look again; their deletion events usually come first.
func (w Writer) ReleaseDeleted(ctx context.Context, kind string, sync metav1.Object, owned []*v1alpha1.VidraResource, patch MetadataPatch) (time.Duration, error) {
	finalizers := sync.GetFinalizers()
	if !slices.Contains(finalizers, v1alpha1.SyncFinalizer) || slices.Contains(finalizers, metav1.FinalizerOrphanDependents) {
		return 0, nil
	}
	name, uid := sync.GetName(), sync.GetUID()
	// due also decides again for a VidraResource re-read after a conflict.
	due := func(vr *v1alpha1.VidraResource) bool {
		return vr.DeletionTimestamp == nil && controlledBy(vr, kind, name) && metav1.GetControllerOf(vr).UID == uid
	}
	leaving := 0
	for _, vr := range owned {
		if vr.DeletionTimestamp != nil {
			leaving++
		}
	}
	deleted, err := w.deleteEach(ctx, owned, kind, name, due)
	leaving += deleted
	if leaving > 0 {
		klog.FromContext(ctx).V(1).Info("Waiting for the VidraResources of a deleted sync to go", "count", leaving)
		return leavingRecheck, err
	}
	if err != nil {
		return 0, err
	}
	if err := patchFinalizers(ctx, sync, slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == v1alpha1.SyncFinalizer }), patch); err != nil {
		return 0, fmt.Errorf("remove the finalizer of %s %s: %w", kind, name, err)
	}
	return 0, nil
}

// DeletionMoved reports whether a sync's update matters to its deletion:
// the deletion began, or a finalizer left (the garbage collector's
// "orphan" one, after it orphaned the VidraResources).
func DeletionMoved(old, cur metav1.Object) bool {
	return cur.GetDeletionTimestamp() != nil &&
		(old.GetDeletionTimestamp() == nil || !slices.Equal(old.GetFinalizers(), cur.GetFinalizers()))
}

// leavingRecheck is how soon a deleted sync is looked at again while its
// VidraResources are going; their deletion events usually come first.
const leavingRecheck = 10 * time.Second

// patchFinalizers sets a sync's finalizers, on the resourceVersion read:
// a finalizer another party added or removed since is never overwritten.
func patchFinalizers(ctx context.Context, sync metav1.Object, finalizers []string, patch MetadataPatch) error {
	if finalizers == nil {
		finalizers = []string{}
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers":      finalizers,
		"resourceVersion": sync.GetResourceVersion(),
	}})
	if err != nil {
		return err
	}
	return patch(ctx, sync.GetName(), body)
}

// removeIfStillOwned deletes vr if it is as cached; if it changed since,
// it reads it again and deletes it only if due still holds.
func (w Writer) removeIfStillOwned(ctx context.Context, vr *v1alpha1.VidraResource, kind, name string, due func(*v1alpha1.VidraResource) bool) (bool, error) {
	client := w.Client.InfrahubV1alpha1().VidraResources()
	for attempt := 0; attempt < 3; attempt++ {
		uid, rv := vr.UID, vr.ResourceVersion
		err := client.Delete(ctx, vr.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case !apierrors.IsConflict(err):
			return false, fmt.Errorf("delete VidraResource %s of %s %s: %w", vr.Name, kind, name, err)
		}
		fresh, err := client.Get(ctx, vr.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read VidraResource %s of %s %s: %w", vr.Name, kind, name, err)
		}
		if fresh.UID != vr.UID || !due(fresh) {
			return false, nil
		}
		vr = fresh
	}
	return false, fmt.Errorf("delete VidraResource %s of %s %s: it kept changing", vr.Name, kind, name)
}

// controlledBy reports whether vr's controller is the sync of that kind and
// name.
func controlledBy(vr *v1alpha1.VidraResource, kind, name string) bool {
	ref := metav1.GetControllerOf(vr)
	return ref != nil && ref.Kind == kind && ref.Name == name && ref.APIVersion == v1alpha1.SchemeGroupVersion.String()
}
