package vidraresource

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/apply"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// engine returns the apply engine, bound to this controller's policy and
// its view of which owners are alive.
func (c *Controller) engine() *apply.Engine {
	return &apply.Engine{Alive: c.alive, Policy: c.opts.Policy, Parallelism: applyParallelism}
}

// applyParallelism bounds the concurrent applies of one VidraResource.
const applyParallelism = 8

// alive reports whether an owner named in an ownership record still
// holds its claim. An owner deleted without cleanup (orphan policy) must
// not pin an object forever, nor may a VidraResource recreated under its
// name inherit its claims. An owner being deleted lets go too, unless it
// asked to leave its objects behind: two owners of a shared object deleted
// together must not each leave it to the other. When the cache cannot
// tell, the owner counts as alive.
func (c *Controller) alive(name string, uid types.UID) bool {
	vr, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		return true
	}
	if uid != "" && vr.UID != uid {
		return false
	}
	return vr.DeletionTimestamp == nil || vr.Annotations[v1alpha1.AnnotationDeletionPolicy] == v1alpha1.DeletionPolicyOrphan
}

func ownerOf(vr *v1alpha1.VidraResource) ownership.Owner {
	return ownership.Owner{Name: vr.Name, UID: vr.UID}
}

// applyTarget is the engine's view of a destination.
func applyTarget(t *cluster.Target) apply.Target {
	return apply.Target{Client: t.Client, Reader: t.Reader, Cache: t.Watches, CacheReads: !t.Impersonating()}
}

// prune removes or releases the inventory entries that left the manifest,
// on this destination and on the one the objects were applied to before.
// It returns the inventory left afterwards: the desired objects plus
// whatever could not be removed yet.
func (c *Controller) prune(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, objs []*desired, out *outcome) []v1alpha1.ManagedResource {
	wanted := map[string]bool{}
	var keep []v1alpha1.ManagedResource
	for _, e := range inventoryOf(objs, target.Server) {
		wanted[entryKey(e)] = true
		keep = append(keep, e)
	}
	prune := vr.Spec.Prune == nil || *vr.Spec.Prune
	stale := map[string][]v1alpha1.ManagedResource{} // by server
	for _, e := range vr.Status.ManagedResources {
		if !wanted[entryKey(e)] {
			stale[e.Server] = append(stale[e.Server], e)
		}
	}
	for server, entries := range stale {
		t, err := c.targetFor(ctx, vr, target, server)
		if err == nil {
			err = t.Reachable(c.clock.Now())
		}
		if err != nil {
			out.pruneFailures = append(out.pruneFailures, fmt.Sprintf("%d objects on %s: %v", len(entries), serverName(server), err))
			out.retryable = true
			keep = append(keep, entries...)
			continue
		}
		for _, e := range sortForDeletion(entries) {
			change := c.release(ctx, t, vr, e, prune)
			t.Observe(c.clock.Now(), change.Err)
			c.metrics.ObserveApply(t.Name(), string(change.Action))
			if change.Err != nil {
				out.pruneFailures = append(out.pruneFailures, fmt.Sprintf("%s: %v", describeEntry(e), change.Err))
				out.pruneErrs = append(out.pruneErrs, change.Err)
				out.retryable = true
				keep = append(keep, e)
				continue
			}
			out.changes = append(out.changes, change)
		}
	}
	sortInventory(keep)
	return keep
}

// targetFor returns the cluster an inventory entry lives on: the current
// destination, or the one the objects were applied to before it changed.
func (c *Controller) targetFor(ctx context.Context, vr *v1alpha1.VidraResource, current *cluster.Target, server string) (*cluster.Target, error) {
	if server == current.Server {
		return current, nil
	}
	if prev := vr.Status.AppliedDestination; prev != nil && cluster.NormalizeServer(prev.Server) == server {
		dest := *prev
		if dest.ServiceAccount == nil {
			dest.ServiceAccount = c.opts.DefaultServiceAccount
		}
		return c.clusters.Target(ctx, dest)
	}
	return c.clusters.Target(ctx, v1alpha1.Destination{Server: server, ServiceAccount: c.destination(vr).ServiceAccount})
}

func serverName(server string) string {
	if server == "" {
		return "the local cluster"
	}
	return server
}

// release gives up the VidraResource's claim on an inventory entry, and
// deletes the object when remove is set and no other owner declares it.
func (c *Controller) release(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, e v1alpha1.ManagedResource, remove bool) apply.Change {
	gvr, err := c.resourceOf(ctx, target, e)
	if err != nil {
		return apply.Change{Subject: describeEntry(e), Action: apply.Failed, Err: err}
	}
	ref := apply.Ref{Resource: gvr, Namespace: e.Namespace, Name: e.Name, Subject: describeEntry(e)}
	return c.engine().Release(ctx, applyTarget(target), ownerOf(vr), ref, remove)
}

// resourceOf returns an entry's resource, asking discovery only for entries
// recorded without one.
func (c *Controller) resourceOf(ctx context.Context, target *cluster.Target, e v1alpha1.ManagedResource) (schema.GroupVersionResource, error) {
	if gvr, ok := e.RecordedResource(); ok {
		return gvr, nil
	}
	gv, err := schema.ParseGroupVersion(e.APIVersion)
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("apiVersion %q: %w", e.APIVersion, err)
	}
	mapping, err := target.Mapper.Mapping(ctx, gv.WithKind(e.Kind))
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	if mapping.Scope.Name() == meta.RESTScopeNameRoot && e.Namespace != "" {
		return schema.GroupVersionResource{}, fmt.Errorf("%s is cluster-scoped but recorded with namespace %s", e.Kind, e.Namespace)
	}
	return mapping.Resource, nil
}

func describeEntry(e v1alpha1.ManagedResource) string {
	if e.Namespace == "" {
		return e.Kind + " " + e.Name
	}
	return e.Kind + " " + e.Namespace + "/" + e.Name
}

// sortForDeletion orders entries so that what was applied last goes first
// (workloads before their Namespace, CRs before their CRD).
func sortForDeletion(entries []v1alpha1.ManagedResource) []v1alpha1.ManagedResource {
	out := append([]v1alpha1.ManagedResource(nil), entries...)
	docs := make([]manifest.Document, len(out))
	index := map[*unstructured.Unstructured]v1alpha1.ManagedResource{}
	for i, e := range out {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(e.APIVersion)
		u.SetKind(e.Kind)
		u.SetNamespace(e.Namespace)
		u.SetName(e.Name)
		docs[i] = manifest.Document{Object: u, Index: i + 1}
		index[u] = e
	}
	manifest.SortForDeletion(docs)
	for i, d := range docs {
		out[i] = index[d.Object]
	}
	return out
}
