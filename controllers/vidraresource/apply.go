package vidraresource

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/cluster"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// What happened to one object; also the label of the apply metric.
const (
	resultCreated    = "created"
	resultConfigured = "configured"
	resultUnchanged  = "unchanged"
	resultFailed     = "failed"
	resultNotOwned   = "refused"
	resultConflict   = "conflict"
	resultPruned     = "pruned"
	resultReleased   = "released"
)

func resourceClient(client dynamic.Interface, gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return client.Resource(gvr)
	}
	return client.Resource(gvr).Namespace(namespace)
}

// current returns the live object. A nil object means it does not exist.
// Unless fresh is asked for, it comes from the drift watch's cache when that
// holds it, else from the API server's watch cache, which costs the server
// far less than a read from etcd and is at most milliseconds behind; a
// write that depends on the version read is retried after a fresh read.
func current(ctx context.Context, target *cluster.Target, gvr schema.GroupVersionResource, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	// An impersonated destination reads as its service account, so RBAC
	// decides what it may see; the operator's cache would bypass that.
	if !target.Impersonating() && !fresh {
		if obj, _ := target.Watches.Get(gvr, namespace, name); obj != nil {
			return obj, nil
		}
	}
	opts := metav1.GetOptions{}
	if !fresh {
		opts.ResourceVersion = "0"
	}
	obj, err := resourceClient(target.Reader, gvr, namespace).Get(ctx, name, opts)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	return obj, nil
}

// applyOne applies one object with server-side apply, unless it already is
// as declared. It never takes over an object Vidra did not create (unless
// the VidraResource adopts), and never overwrites an object another owner
// declares differently.
func (c *Controller) applyOne(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, o *desired) (*unstructured.Unstructured, string, error) {
	if why := c.opts.Policy.refuses(o.gvk, o.obj.GetNamespace()); why != "" {
		return nil, resultNotOwned, fmt.Errorf("%s was not written: %s", o.name(), why)
	}
	applied, result, err := c.applyFrom(ctx, target, vr, o, false)
	if apierrors.IsConflict(err) {
		// The version read was behind: decide again on a fresh read.
		applied, result, err = c.applyFrom(ctx, target, vr, o, true)
	}
	return applied, result, err
}

// mustNotExist is a resourceVersion no stored object has (etcd numbers its
// first write 2). As an apply precondition it turns the apply into a create
// that fails with a conflict when the object exists, so an object believed
// absent is never changed without the ownership checks.
const mustNotExist = "1"

// applyFrom is one attempt of applyOne, on a cached or a fresh read of the
// live object.
func (c *Controller) applyFrom(ctx context.Context, target *cluster.Target, vr *v1alpha1.VidraResource, o *desired, fresh bool) (*unstructured.Unstructured, string, error) {
	obj := o.obj.DeepCopy()
	gvr := o.mapping.Resource
	ns, name := obj.GetNamespace(), obj.GetName()
	contentHash := manifest.ContentHash(obj)

	// An object this VidraResource never recorded is most likely new, and
	// the drift watch only holds Vidra's objects: rather than read it
	// first, create it with a precondition that fails when it exists, and
	// decide on a fresh read then (applyOne retries on the conflict).
	var live *unstructured.Unstructured
	if fresh || o.recorded || target.Impersonating() {
		var err error
		if live, err = current(ctx, target, gvr, ns, name, fresh); err != nil {
			return nil, resultFailed, err
		}
	} else {
		live, _ = target.Watches.Get(gvr, ns, name) // nil unless cached
	}
	owners := []string{}
	if live != nil {
		owners = ownership.Owners(live)
		switch {
		case !ownership.Managed(live) && !vr.Spec.AdoptExisting:
			return nil, resultNotOwned, fmt.Errorf("%s already exists and is not managed by Vidra; it was left alone (set adoptExisting to take it over)", o.name())
		case len(ownership.Without(owners, vr.Name)) > 0 && live.GetAnnotations()[v1alpha1.AnnotationContentHash] != contentHash:
			// Shared with others who declared other content: the first
			// declaration stands until its owners agree or let go.
			return nil, resultConflict, fmt.Errorf("%s is declared differently by VidraResource %s; it was left as they declared it",
				o.name(), strings.Join(ownership.Without(owners, vr.Name), ", "))
		}
	}
	newOwners := ownership.With(owners, vr.Name)
	ownership.Mark(obj, newOwners, contentHash)

	// Equivalent cannot see a field the manifest dropped; the content hash
	// can, and then the apply removes it.
	if live != nil && ownership.Same(owners, newOwners) &&
		live.GetAnnotations()[v1alpha1.AnnotationContentHash] == contentHash && manifest.Equivalent(obj, live) {
		return live, resultUnchanged, nil
	}
	switch {
	case live == nil:
		obj.SetResourceVersion(mustNotExist)
	case !ownership.Same(owners, newOwners):
		// Joining the owners of an existing object: apply only on the
		// version we read, so two owners joining at once cannot lose one.
		obj.SetResourceVersion(live.GetResourceVersion())
	}
	// The watch event of this write is not drift.
	done := target.Watches.BeginOwnWrite(gvr, ns, name)
	applied, err := resourceClient(target.Client, gvr, ns).Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: v1alpha1.FieldManager, Force: true})
	if err != nil {
		done("")
		return nil, resultFailed, fmt.Errorf("apply: %w", err)
	}
	if live != nil && applied.GetResourceVersion() == live.GetResourceVersion() {
		done("") // nothing changed, no event comes
	} else {
		done(applied.GetResourceVersion())
	}
	if live == nil {
		return applied, resultCreated, nil
	}
	return applied, resultConfigured, nil
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
			result, err := c.release(ctx, t, vr.Name, e, prune)
			t.Observe(c.clock.Now(), err)
			if err != nil {
				out.pruneFailures = append(out.pruneFailures, fmt.Sprintf("%s: %v", describeEntry(e), err))
				out.retryable = true
				keep = append(keep, e)
				continue
			}
			c.metrics.ObserveApply(t.Name(), result)
			switch result {
			case resultPruned:
				out.pruned++
			case resultReleased:
				out.released++
			}
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

// release gives up this owner's claim on an object: it is deleted when no
// other VidraResource still declares it, otherwise only this owner leaves
// its owner list. Objects that are not Vidra's, or no longer list this
// owner, are left alone. With remove false, the object always stays.
func (c *Controller) release(ctx context.Context, target *cluster.Target, owner string, e v1alpha1.ManagedResource, remove bool) (string, error) {
	gvr, err := c.resourceOf(ctx, target, e)
	if err != nil {
		return "", err
	}
	// The writes below are conditional on the version read; when the object
	// changed in between (another owner joined, a controller wrote), read
	// it again and decide again.
	var result string
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		result, err = c.releaseOnce(ctx, resourceClient(target.Reader, gvr, e.Namespace), resourceClient(target.Client, gvr, e.Namespace), owner, e, remove)
		return err
	})
	return result, err
}

func (c *Controller) releaseOnce(ctx context.Context, reader, client dynamic.ResourceInterface, owner string, e v1alpha1.ManagedResource, remove bool) (string, error) {
	live, err := reader.Get(ctx, e.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return resultPruned, nil
	}
	if err != nil {
		return "", fmt.Errorf("get: %w", err)
	}
	owners := ownership.Owners(live)
	if !ownership.Managed(live) || !ownership.Has(owners, owner) {
		return resultReleased, nil
	}
	others := c.liveOwners(ownership.Without(owners, owner))
	if len(others) > 0 || !remove {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": live.GetResourceVersion(),
			"annotations":     map[string]any{v1alpha1.AnnotationOwnedBy: strings.Join(others, ",")},
		}})
		if err != nil {
			return "", err
		}
		if _, err := client.Patch(ctx, e.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: v1alpha1.FieldManager}); err != nil && !apierrors.IsNotFound(err) {
			if apierrors.IsConflict(err) {
				return "", err
			}
			return "", fmt.Errorf("remove owner: %w", err)
		}
		return resultReleased, nil
	}
	uid, rv := live.GetUID(), live.GetResourceVersion()
	policy := metav1.DeletePropagationBackground
	err = client.Delete(ctx, e.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		PropagationPolicy: &policy,
	})
	if err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsConflict(err) {
			return "", err
		}
		return "", fmt.Errorf("delete: %w", err)
	}
	return resultPruned, nil
}

// liveOwners drops owners whose VidraResource no longer exists, so an owner
// deleted without cleanup cannot pin an object forever.
func (c *Controller) liveOwners(owners []string) []string {
	out := owners[:0:0]
	for _, o := range owners {
		if _, err := c.lister.Get(o); err == nil || !apierrors.IsNotFound(err) {
			out = append(out, o)
		}
	}
	return out
}

// resourceOf returns an entry's resource, asking discovery only for entries
// recorded without one.
func (c *Controller) resourceOf(ctx context.Context, target *cluster.Target, e v1alpha1.ManagedResource) (schema.GroupVersionResource, error) {
	if e.Resource != "" {
		version := e.Version
		if version == "" {
			if gv, err := schema.ParseGroupVersion(e.APIVersion); err == nil {
				version = gv.Version
			}
		}
		return schema.GroupVersionResource{Group: e.Group, Version: version, Resource: e.Resource}, nil
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
