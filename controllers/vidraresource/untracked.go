package vidraresource

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/ownership"
	"github.com/vidra-operator/vidra/controllers/watch"
)

// A pass records the objects it is about to apply before applying them,
// so that a crash in the middle leaves nothing untracked: the pass after a
// restart, even on another manifest, knows them and prunes what left.
//
// The first manifest of a VidraResource is the exception, for the cost of
// one status write per artifact at cold start. Until the manifest changes
// (the generation stays 1) every pass applies the same objects, so one
// that completes records whatever an interrupted one applied. Only when the
// manifest changed before any pass completed may objects be untracked; the
// first pass of that new manifest then finds them by their ownership record
// on the destination, once, and records them with its plan.

// recordsBeforeApplying reports whether a pass writes its plan before
// applying: always, except on the first manifest before it was applied.
func recordsBeforeApplying(vr *v1alpha1.VidraResource) bool {
	return vr.Generation > 1 || vr.Status.LastAppliedChecksum != ""
}

// mayHoldUntracked reports whether objects an interrupted pass of the first
// manifest applied may be missing from the inventory, and no pass of this
// process looked for them yet.
func (c *Controller) mayHoldUntracked(vr *v1alpha1.VidraResource) bool {
	if vr.Generation <= 1 || vr.Status.LastAppliedChecksum != "" {
		return false
	}
	c.searchedMu.Lock()
	defer c.searchedMu.Unlock()
	return c.searched[vr.Name] != vr.UID
}

// searchedOwned notes that what findOwned found is recorded: every later
// pass records its plan before applying.
func (c *Controller) searchedOwned(vr *v1alpha1.VidraResource) {
	c.searchedMu.Lock()
	defer c.searchedMu.Unlock()
	if c.searched == nil {
		c.searched = map[string]types.UID{}
	}
	c.searched[vr.Name] = vr.UID
}

func (c *Controller) forgetSearched(name string) {
	c.searchedMu.Lock()
	defer c.searchedMu.Unlock()
	delete(c.searched, name)
}

// findOwned lists, on the destination, the objects Vidra manages whose
// ownership record names this VidraResource: every listable resource,
// selected by Vidra's label. Resources the destination's identity may not
// list are skipped: it could not have written them either.
func (c *Controller) findOwned(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource) ([]v1alpha1.ManagedResource, error) {
	gvrs, err := target.Mapper.ListableResources(ctx)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.ManagedResource
	for _, gvr := range gvrs {
		list, err := target.Reader.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: watch.DefaultLabelSelector})
		switch {
		case apierrors.IsForbidden(err), apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("list %s: %w", gvr.GroupResource(), err)
		}
		for i := range list.Items {
			obj := &list.Items[i]
			claim, mine := ownership.ReadRecord(obj)[vr.Name]
			if !ownership.Managed(obj) || !mine || (claim.UID != "" && claim.UID != vr.UID) {
				continue
			}
			gvk := obj.GroupVersionKind()
			out = append(out, v1alpha1.ManagedResource{
				APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName(), Namespace: obj.GetNamespace(),
				Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource, Server: target.Server,
			})
		}
	}
	sortInventory(out)
	return out, nil
}

// firstApply reports whether a pass only created the objects of a manifest
// never applied before: its status says so, and it earns no Event (one
// per artifact at cold start); changes after that do.
func firstApply(vr *v1alpha1.VidraResource, out *outcome) bool {
	return vr.Status.LastAppliedChecksum == "" && len(vr.Status.ManagedResources) == 0 &&
		out.count(apply.Configured)+out.count(apply.Pruned)+out.count(apply.Released) == 0
}
