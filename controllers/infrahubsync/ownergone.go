package infrahubsync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

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

	var (
		mu      gosync.Mutex
		wg      gosync.WaitGroup
		errs    []error
		deleted int
	)
	sem := make(chan struct{}, artifactParallelism)
	for _, vr := range candidates {
		if !ownedByGone(vr) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := w.removeIfStillOwned(ctx, vr, kind, name, ownedByGone)
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

// removeIfStillOwned deletes vr if it is as cached; if it changed since,
// it reads it again and deletes it only if ownedByGone still holds.
func (w Writer) removeIfStillOwned(ctx context.Context, vr *v1alpha1.VidraResource, kind, name string, ownedByGone func(*v1alpha1.VidraResource) bool) (bool, error) {
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
		if fresh.UID != vr.UID || !ownedByGone(fresh) {
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
