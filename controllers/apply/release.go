package apply

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// Ref names an object to release.
type Ref struct {
	Resource        schema.GroupVersionResource
	Namespace, Name string
	// Subject names it for messages.
	Subject string
}

// Release gives up owner's claim on an object it no longer declares: the
// object is deleted (Pruned) when remove is set and no other live owner
// still declares it; otherwise only this owner leaves its record
// (Released). Objects that are not Vidra's, or whose record does not name
// this owner, are left alone (Released). The decision starts from the drift
// watch's cache when it holds the object, with no read; every write is
// conditional on the version (and uid) decided on, so when the object
// changed in between (another owner joined, a controller wrote) it is read
// again and decided again.
func (e *Engine) Release(ctx context.Context, t Target, owner ownership.Owner, ref Ref, remove bool) Change {
	reader := resourceClient(t.Reader, ref.Resource, ref.Namespace)
	client := resourceClient(t.Client, ref.Resource, ref.Namespace)
	var (
		action Action
		err    error
	)
	for n := 1; n <= maxAttempts; n++ {
		var cached *unstructured.Unstructured
		if n == 1 {
			cached = t.cached(ref.Resource, ref.Namespace, ref.Name)
		}
		action, err = e.releaseOnce(ctx, t, reader, client, cached, owner, ref, remove)
		if !apierrors.IsConflict(err) {
			break
		}
	}
	if err != nil {
		return Change{Subject: ref.Subject, Action: Failed, Err: err}
	}
	return Change{Subject: ref.Subject, Action: action}
}

// releaseOnce decides on cached, or on a fresh read when it is nil.
func (e *Engine) releaseOnce(ctx context.Context, t Target, reader, client dynamic.ResourceInterface, cached *unstructured.Unstructured, owner ownership.Owner, ref Ref, remove bool) (Action, error) {
	live := cached
	if live == nil {
		var err error
		live, err = reader.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return Pruned, nil
		}
		if err != nil {
			return Failed, fmt.Errorf("read %s: %w", ref.Subject, err)
		}
	}
	rec := ownership.ReadRecord(live)
	if _, mine := rec[owner.Name]; !ownership.Managed(live) || !mine {
		if cached != nil {
			// Leaving without a write needs more than the cache: it may
			// not have seen this owner's claim yet.
			return e.releaseOnce(ctx, t, reader, client, nil, owner, ref, remove)
		}
		return Released, nil
	}
	others := ownership.Record{}
	for name, c := range rec.Without(owner.Name) {
		if e.Alive(name, c.UID) {
			others[name] = c
		}
	}
	if len(others) > 0 || !remove {
		done := t.beginOwnWrite(ref.Resource, ref.Namespace, ref.Name)
		written, err := patchRecord(ctx, client, live, others)
		switch {
		case apierrors.IsNotFound(err):
			done("")
			return Released, nil
		case apierrors.IsConflict(err):
			done("")
			return Failed, err
		case err != nil:
			done("")
			return Failed, fmt.Errorf("remove owner %s from %s: %w", owner.Name, ref.Subject, err)
		}
		done(written.GetResourceVersion())
		return Released, nil
	}
	uid, rv := live.GetUID(), live.GetResourceVersion()
	policy := metav1.DeletePropagationBackground
	err := client.Delete(ctx, ref.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		PropagationPolicy: &policy,
	})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return Pruned, nil
	case apierrors.IsConflict(err):
		return Failed, err
	}
	return Failed, fmt.Errorf("delete %s: %w", ref.Subject, err)
}

// patchRecord replaces the ownership record of live, on the version read.
func patchRecord(ctx context.Context, client dynamic.ResourceInterface, live *unstructured.Unstructured, rec ownership.Record) (*unstructured.Unstructured, error) {
	annotations := map[string]any{}
	for k, v := range rec.Annotations() {
		annotations[k] = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": live.GetResourceVersion(),
		"annotations":     annotations,
	}})
	if err != nil {
		return nil, fmt.Errorf("encode ownership patch: %w", err)
	}
	return client.Patch(ctx, live.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
}
