package infrahubsync

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/shard"
)

// takeOver runs once per sync this sharded instance starts handling: the
// sync's VidraResources that still carry another shard's label (the sync
// was moved here) are invisible to this instance's caches, so they are
// found with a live list and relabelled, which hands them, and their
// objects, over from the previous instance without deleting anything. It
// returns how many were relabelled.
func (c *Controller) takeOver(ctx context.Context, sync *v1alpha1.InfrahubSync) (int, error) {
	if !c.opts.Shard.Sharded() {
		return 0, nil
	}
	c.mu.Lock()
	done := c.adopted[sync.Name] == sync.UID
	c.mu.Unlock()
	if done {
		return 0, nil
	}
	if !c.missingFromCache(sync) {
		// Every VidraResource its status names is in this shard already
		// (e.g. this instance restarted): no need to look further.
		c.mu.Lock()
		c.adopted[sync.Name] = sync.UID
		c.mu.Unlock()
		return 0, nil
	}
	list, err := c.client.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{
		LabelSelector: LabelSyncKey + "=" + SyncLabelValue(sync.Name),
	})
	if err != nil {
		return 0, fmt.Errorf("list the VidraResources of InfrahubSync %s: %w", sync.Name, err)
	}
	relabelled := 0
	for i := range list.Items {
		vr := &list.Items[i]
		if !ownedBy(vr, sync.UID) || shard.Same(vr, sync) {
			continue
		}
		from, _ := shard.Of(vr)
		written, err := c.relabel(ctx, vr, sync)
		if err != nil {
			return relabelled, err
		}
		// The next pass must not take the cache's lag for a missing
		// VidraResource and download it again.
		c.written.record(written, c.clock.Now())
		relabelled++
		klog.FromContext(ctx).Info("Took over VidraResource from another shard", "vidraresource", vr.Name, "fromShard", from)
	}
	c.mu.Lock()
	c.adopted[sync.Name] = sync.UID
	c.mu.Unlock()
	return relabelled, nil
}

// relabel gives a VidraResource its sync's shard label, or removes it when
// the sync has none. A merge patch, not an apply: it must also remove a
// label an earlier relabelling set. The uid makes it a precondition.
func (c *Controller) relabel(ctx context.Context, vr *v1alpha1.VidraResource, sync *v1alpha1.InfrahubSync) (*v1alpha1.VidraResource, error) {
	var value any // nil removes the label
	if v, ok := shard.Of(sync); ok {
		value = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":    vr.UID,
		"labels": map[string]any{shard.Label: value},
	}})
	if err != nil {
		return nil, err
	}
	written, err := c.client.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: v1alpha1.FieldManager})
	if err != nil {
		return nil, fmt.Errorf("move VidraResource %s to the shard of InfrahubSync %s: %w", vr.Name, sync.Name, err)
	}
	return written, nil
}

// missingFromCache reports whether the sync's status names a VidraResource
// this instance's cache does not hold: the sign of a sync that was moved
// here with its VidraResources still labelled for the previous shard.
func (c *Controller) missingFromCache(sync *v1alpha1.InfrahubSync) bool {
	for _, row := range sync.Status.Artifacts {
		if row.VidraResource == "" {
			continue
		}
		if _, err := c.vrs.Get(row.VidraResource); err != nil {
			return true
		}
	}
	return false
}
