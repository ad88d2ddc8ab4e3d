package infrahubsync

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
)

// The pipeline that turns what a source lists into VidraResources is shared
// by every kind of sync. A source (Infrahub, a Git repository, next an
// HTTP URL, an OCI artifact or a Helm chart) lists Units; each Unit becomes
// one VidraResource, written by Writer only when its checksum or settings
// changed, and content is fetched only then. What a sync kind adds is its
// listing, its status table and its conditions.

// Unit is one thing a source serves to one VidraResource: an Infrahub
// artifact, a directory or a file of a Git repository.
type Unit struct {
	// Source is what the VidraResource records about the unit. ArtifactID
	// is the unit's id, stable across listings and unique in its sync;
	// Checksum is the MD5 of its manifest; StorageID, when set, is a
	// second key the content is compared on.
	Source v1alpha1.ArtifactSource
	// Label names the unit in messages, e.g. "artifact 18a… (web-1)".
	Label string
	// Content fetches the manifest. The writer calls it only when the
	// VidraResource does not already hold this checksum.
	Content func(ctx context.Context) ([]byte, error)
}

// Owner is the sync writing a unit's VidraResource.
type Owner struct {
	// Ref is the controller reference set on the VidraResource.
	Ref metav1.OwnerReference
	// Spec carries the settings copied onto every VidraResource of the
	// sync (destination, suspend, prune, adoptExisting, wait); Source and
	// Manifest are filled per unit.
	Spec v1alpha1.VidraResourceSpec
	// Labels are set on every VidraResource besides the unit's own (e.g.
	// the sync's shard); Unset are labels to remove where present.
	Labels map[string]string
	Unset  []string
}

// OwnerOf is the Owner for a sync object of kind.
func OwnerOf(obj metav1.Object, kind string, spec v1alpha1.VidraResourceSpec) Owner {
	return Owner{Ref: *metav1.NewControllerRef(obj, v1alpha1.SchemeGroupVersion.WithKind(kind)), Spec: spec}
}

// Writer writes and removes the VidraResources of units.
type Writer struct {
	Client    versioned.Interface
	Resources listers.VidraResourceLister
	// Manifests stores manifests too large for a VidraResource in
	// ConfigMaps of Namespace; without it such units fail to write.
	Manifests ManifestChunkStore
	Namespace string
	// MaxManifestBytes is the largest manifest written; 0 means
	// manifeststore.DefaultMaxBytes.
	MaxManifestBytes int64
}

// Ensure creates or updates the VidraResource name of one unit. The content
// is fetched only when the checksum or storage id differs from what the
// VidraResource holds, or its manifest was edited. It returns what it
// wrote, nil when nothing needed writing.
func (w Writer) Ensure(ctx context.Context, owner Owner, u Unit, name string, existing *v1alpha1.VidraResource) (*v1alpha1.VidraResource, error) {
	if existing != nil && existing.DeletionTimestamp != nil {
		// On its way out (e.g. the unit came back while it was being
		// cleaned up); it is written again once it is gone.
		return nil, nil
	}
	if existing == nil {
		if other, err := w.Resources.Get(name); err == nil {
			// Same name, another owner: most likely the leftover of a sync
			// that was deleted and recreated, on its way out through GC.
			return nil, fmt.Errorf("VidraResource %s exists but belongs to another %s (uid %s); waiting for it to go", name, owner.Ref.Kind, ownerUID(other))
		}
	}
	want := *owner.Spec.DeepCopy()
	src := u.Source
	want.Source = &src
	labels := UnitLabels(src.Sync, src.ArtifactID)
	for k, v := range owner.Labels {
		labels[k] = v
	}
	if existing != nil && existing.Spec.Source != nil &&
		existing.Spec.Source.Checksum == src.Checksum && existing.Spec.Source.StorageID == src.StorageID &&
		manifestMatches(existing, src.Checksum) {
		// Same content: keep the manifest, update only settings that changed.
		manifeststore.SameStorage(&want, &existing.Spec)
		if apiequality.Semantic.DeepEqual(existing.Spec, want) && hasLabels(existing, labels) {
			return w.unsetLabels(ctx, existing, owner.Unset)
		}
	} else {
		content, err := u.Content(ctx)
		if err != nil {
			return nil, fmt.Errorf("download %s: %v", u.Label, err)
		}
		if strings.TrimSpace(string(content)) == "" {
			return nil, fmt.Errorf("%s is empty; keeping what was applied before", u.Label)
		}
		layout, err := manifeststore.Plan(content, w.MaxManifestBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; keeping what was applied before", u.Label, err)
		}
		if err := w.storeManifest(ctx, owner, name, layout, &want); err != nil {
			return nil, fmt.Errorf("%s: %w", u.Label, err)
		}
	}

	// Server-side apply: create or update in one call, with no
	// resourceVersion to conflict with the status writes of the
	// VidraResource controller. Fields the sync stops setting go away.
	spec, err := specMap(want)
	if err != nil {
		return nil, err
	}
	patch, err := json.Marshal(map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(),
		"kind":       "VidraResource",
		"metadata": map[string]any{
			"name":            name,
			"labels":          labels,
			"ownerReferences": []metav1.OwnerReference{owner.Ref},
			// Set at creation so the objects are cleaned up even if the
			// VidraResource is deleted before its first reconcile.
			"finalizers": []string{v1alpha1.VidraResourceFinalizer},
		},
		"spec": spec,
	})
	if err != nil {
		return nil, fmt.Errorf("encode VidraResource %s: %w", name, err)
	}
	force := true
	written, err := w.Client.InfrahubV1alpha1().VidraResources().Patch(ctx, name, types.ApplyPatchType, patch,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force})
	if err != nil {
		return nil, fmt.Errorf("write VidraResource %s for %s: %v", name, u.Label, err)
	}
	w.pruneChunks(ctx, existing, written)
	return written, nil
}

// unsetLabels removes the labels of keys an unchanged VidraResource still
// carries, with a merge patch: they may have been set by one.
func (w Writer) unsetLabels(ctx context.Context, vr *v1alpha1.VidraResource, keys []string) (*v1alpha1.VidraResource, error) {
	remove := map[string]any{}
	for _, k := range keys {
		if _, ok := vr.Labels[k]; ok {
			remove[k] = nil
		}
	}
	if len(remove) == 0 {
		return nil, nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": vr.UID, "labels": remove}})
	if err != nil {
		return nil, err
	}
	written, err := w.Client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
	if err != nil {
		return nil, fmt.Errorf("relabel VidraResource %s: %w", vr.Name, err)
	}
	return written, nil
}

// Remove deletes a VidraResource whose unit left its source, if it is still
// the object that was listed. Gone already counts as removed.
func (w Writer) Remove(ctx context.Context, vr *v1alpha1.VidraResource) error {
	err := w.Client.InfrahubV1alpha1().VidraResources().Delete(ctx, vr.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &vr.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove VidraResource %s: %v", vr.Name, err)
	}
	w.dropChunks(ctx, vr)
	return nil
}

// UnitLabels are the labels of a unit's VidraResource: its sync, and the
// unit's id when it makes a valid label value.
func UnitLabels(syncName, unitID string) map[string]string {
	l := map[string]string{LabelSyncKey: SyncLabelValue(syncName)}
	if len(validation.IsValidLabelValue(unitID)) == 0 {
		l[v1alpha1.LabelArtifact] = unitID
	}
	return l
}

func hasLabels(vr *v1alpha1.VidraResource, want map[string]string) bool {
	for k, v := range want {
		if vr.Labels[k] != v {
			return false
		}
	}
	return true
}

// WrittenResources remembers the VidraResources a sync pass wrote until the
// informer has seen them, for sync kinds outside this package.
type WrittenResources struct{ w *writtenResources }

// NewWrittenResources returns an empty WrittenResources.
func NewWrittenResources() *WrittenResources {
	return &WrittenResources{w: newWrittenResources()}
}

// Record keeps the object the API server returned for a write.
func (w *WrittenResources) Record(vr *v1alpha1.VidraResource, now time.Time) { w.w.record(vr, now) }

// Overlay returns cached with the owner's own newer writes in place.
func (w *WrittenResources) Overlay(owner types.UID, cached []*v1alpha1.VidraResource, now time.Time) []*v1alpha1.VidraResource {
	return w.w.overlay(owner, cached, now)
}

// Drop forgets a deleted VidraResource.
func (w *WrittenResources) Drop(name string, uid types.UID) { w.w.drop(name, uid) }

// Forget drops what was written for an owner that is gone.
func (w *WrittenResources) Forget(owner types.UID) { w.w.forget(owner) }
