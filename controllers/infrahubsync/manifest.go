package infrahubsync

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/infrahub"
)

// ReasonArtifactTooLarge is the sync's condition reason when an artifact is
// above the operator's --max-manifest-bytes: it is not written, and what
// was applied from it before stays.
const ReasonArtifactTooLarge = "ArtifactTooLarge"

// ManifestChunkStore writes and removes the ConfigMaps holding manifests
// too large for a VidraResource (manifeststore.ClientStore).
type ManifestChunkStore interface {
	Write(ctx context.Context, chunks []*corev1.ConfigMap) error
	Prune(ctx context.Context, namespace, vrName, keep string) error
}

// storeManifest puts the layout's manifest into want. Chunks are written
// first: a VidraResource never names a chunk that does not exist yet.
func (w Writer) storeManifest(ctx context.Context, owner Owner, name string, layout manifeststore.Layout, want *v1alpha1.VidraResourceSpec) error {
	layout.SetOn(want, w.Namespace, name)
	if len(layout.Parts) == 0 {
		return nil
	}
	if w.Manifests == nil {
		return errors.New("the manifest needs ConfigMaps to be stored and this operator cannot write them")
	}
	// Owned by the sync, which exists before the VidraResource does, so
	// the chunks go with it; the sync removes them with its VidraResource.
	ref := metav1.OwnerReference{APIVersion: owner.Ref.APIVersion, Kind: owner.Ref.Kind, Name: owner.Ref.Name, UID: owner.Ref.UID}
	return w.Manifests.Write(ctx, layout.ChunkObjects(w.Namespace, name, ref))
}

// pruneChunks removes the chunks of a manifest the VidraResource no longer
// names, once the write that replaced it succeeded.
func (w Writer) pruneChunks(ctx context.Context, before, after *v1alpha1.VidraResource) {
	if w.Manifests == nil || before == nil || before.Spec.ManifestChunks == nil {
		return
	}
	keep := ""
	if after.Spec.ManifestChunks != nil {
		keep = after.Spec.ManifestChunks.SHA256
		if keep == before.Spec.ManifestChunks.SHA256 {
			return
		}
	}
	if err := w.Manifests.Prune(ctx, before.Spec.ManifestChunks.Namespace, after.Name, keep); err != nil {
		// Left over chunks cost space only; they go with the sync.
		klog.FromContext(ctx).Error(err, "Removing old manifest chunks failed", "vidraresource", after.Name)
	}
}

// dropChunks removes the chunks of a VidraResource the sync removed.
func (w Writer) dropChunks(ctx context.Context, vr *v1alpha1.VidraResource) {
	if w.Manifests == nil || vr.Spec.ManifestChunks == nil {
		return
	}
	if err := w.Manifests.Prune(ctx, vr.Spec.ManifestChunks.Namespace, vr.Name, ""); err != nil {
		klog.FromContext(ctx).Error(err, "Removing manifest chunks failed", "vidraresource", vr.Name)
	}
}

// storedManifestMatches is manifestMatches for a compressed or chunked
// manifest. Chunks are not read here (they are checked against their
// SHA-256 before every apply); a VidraResource that reported them
// unreadable is written again, which rewrites them.
func storedManifestMatches(vr *v1alpha1.VidraResource, checksum string) bool {
	if cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady); cond != nil &&
		cond.Reason == manifeststore.ReasonUnavailable && cond.ObservedGeneration == vr.Generation {
		return false
	}
	if vr.Spec.ManifestChunks != nil {
		return true
	}
	data, err := manifeststore.Read(context.Background(), &vr.Spec, nil, 4*manifeststore.DefaultMaxBytes)
	return err == nil && strings.EqualFold(infrahub.Checksum(data), checksum)
}

// tooLarge reports whether err is an artifact above the size limit.
func tooLarge(err error) bool {
	var tl *manifeststore.TooLargeError
	return errors.As(err, &tl)
}
