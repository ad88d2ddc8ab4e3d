// Package apply is Vidra's apply engine: it applies the objects one
// VidraResource declares with server-side apply, in stages, under the
// shared-ownership rules of package ownership, and releases or prunes the
// objects it no longer declares. Every call returns what happened to each
// object, decided from the API server's answers; writing status, events
// and metrics is left to the caller.
package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// Action is what happened to one object; its value is also the label of
// the apply metric.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	// Unchanged: nothing was written, or the server answered with the
	// version it already had.
	Unchanged Action = "unchanged"
	// Conflict: other owners declare other content; the content was left
	// as it is.
	Conflict Action = "conflict"
	// NotOwned: the object is not Vidra's, or the policy refuses it.
	NotOwned Action = "refused"
	Pruned   Action = "pruned"
	// Released: this owner let go of an object that stays.
	Released Action = "released"
	Failed   Action = "failed"
)

// Change is what happened to one object.
type Change struct {
	// Subject names the object for messages, never with its contents.
	Subject string
	Action  Action
	// Err says why for Conflict, NotOwned and Failed. Errors of the API
	// server are wrapped, so apierrors' predicates see through.
	Err error
	// Owners are the owners in the record of an object Created or
	// Configured: the others may have been waiting for this content.
	Owners []string
}

// ChangeSet is what one call did, one change per object in the order
// the objects were given.
type ChangeSet []Change

// Count returns how many changes are a.
func (cs ChangeSet) Count(a Action) int {
	n := 0
	for _, c := range cs {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Changed reports whether anything was written that a user should hear of.
func (cs ChangeSet) Changed() bool {
	for _, c := range cs {
		switch c.Action {
		case Created, Configured, Pruned, Released:
			return true
		}
	}
	return false
}

// Cache is the drift watch's cache of managed objects on a cluster.
type Cache interface {
	// Get returns the cached object, nil when it is not cached.
	Get(gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, bool)
	// BeginOwnWrite announces a write, so its watch event is not taken
	// for drift; done gets the written resourceVersion, "" when nothing
	// was written.
	BeginOwnWrite(gvr schema.GroupVersionResource, namespace, name string) (done func(resourceVersion string))
}

// Target is the cluster objects are written to.
type Target struct {
	// Client writes; Reader reads.
	Client, Reader dynamic.Interface
	// Cache may be nil.
	Cache Cache
	// CacheReads lets decisions start from the cache (never when the
	// target impersonates: RBAC must decide what it may see).
	CacheReads bool
}

func (t Target) cached(gvr schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	if t.Cache == nil || !t.CacheReads {
		return nil
	}
	obj, _ := t.Cache.Get(gvr, namespace, name)
	return obj
}

func (t Target) beginOwnWrite(gvr schema.GroupVersionResource, namespace, name string) func(string) {
	if t.Cache == nil {
		return func(string) {}
	}
	return t.Cache.BeginOwnWrite(gvr, namespace, name)
}

// Policy limits what any VidraResource may write.
type Policy struct {
	// DeniedKinds are never written: "Kind" or "group/Kind", e.g.
	// "rbac.authorization.k8s.io/ClusterRoleBinding".
	DeniedKinds []string
	// AllowedNamespaces, when not empty, are the only namespaces namespaced
	// objects may be written to.
	AllowedNamespaces []string
}

// Refuses returns why the policy forbids an object, or "".
func (p Policy) Refuses(gvk schema.GroupVersionKind, namespace string) string {
	for _, k := range p.DeniedKinds {
		if k == gvk.Kind || k == gvk.Group+"/"+gvk.Kind {
			return "the operator's policy forbids kind " + k
		}
	}
	if namespace != "" && len(p.AllowedNamespaces) > 0 {
		for _, ns := range p.AllowedNamespaces {
			if ns == namespace {
				return ""
			}
		}
		return "the operator's policy does not allow namespace " + namespace
	}
	return ""
}

// Engine applies and releases objects. Its zero value is not usable: Alive
// must be set.
type Engine struct {
	// Alive tells whether an owner named in a record still exists.
	Alive ownership.Alive
	// Policy is checked before every write.
	Policy Policy
	// Parallelism bounds the concurrent applies of one stage; 8 if unset.
	Parallelism int
}

// Object is one desired object.
type Object struct {
	// Object is the manifest's object, namespace resolved. It is not
	// changed.
	Object *unstructured.Unstructured
	// Resource is its resource on the target.
	Resource schema.GroupVersionResource
	// Recorded is set when the inventory held the object before: it most
	// likely exists and is read before it is applied. An object never
	// recorded is most likely new and is created without a read.
	Recorded bool
}

// Request is what one owner declares on one target.
type Request struct {
	Owner ownership.Owner
	// Adopt allows taking over objects Vidra did not create.
	Adopt   bool
	Objects []Object
}

// mustNotExist is a resourceVersion no stored object has (etcd numbers its
// first write 2). As an apply precondition it turns the apply into a create
// that fails with a conflict when the object exists, so an object believed
// absent is never changed without the ownership checks.
const mustNotExist = "1"

// maxAttempts bounds the decisions on fresh reads after the version read
// turned out stale; the work queue's backoff takes over from there.
const maxAttempts = 3

// Apply applies the objects in stages: CRDs, then Namespaces, then
// everything else in parallel (the API server does not care in which
// order a Deployment and its ServiceAccount arrive), then admission
// webhooks, which could otherwise reject the rest. One failure does not
// stop the others.
func (e *Engine) Apply(ctx context.Context, t Target, req Request) ChangeSet {
	out := make(ChangeSet, len(req.Objects))
	parallel := e.Parallelism
	if parallel <= 0 {
		parallel = 8
	}
	for _, stage := range Stages(req.Objects) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, parallel)
		for _, i := range stage {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				out[i] = e.ApplyOne(ctx, t, req.Owner, req.Adopt, req.Objects[i])
			}()
		}
		wg.Wait()
	}
	return out
}

var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// Stages groups object indexes (already in apply order) into the steps
// Apply takes one after the other.
func Stages(objs []Object) [][]int {
	stageOf := func(gk schema.GroupKind) int {
		switch {
		case gk == crdGroupKind:
			return 0
		case gk.Group == "" && gk.Kind == "Namespace":
			return 1
		case gk.Group == "admissionregistration.k8s.io":
			return 3
		}
		return 2
	}
	out := make([][]int, 4)
	for i, o := range objs {
		s := stageOf(o.Object.GroupVersionKind().GroupKind())
		out[s] = append(out[s], i)
	}
	return out
}

// ApplyOne applies one object, unless it already is as declared. It never
// takes over an object Vidra did not create (unless adopt), and never
// changes the content of an object another live owner declares
// differently.
func (e *Engine) ApplyOne(ctx context.Context, t Target, owner ownership.Owner, adopt bool, o Object) Change {
	subject := manifest.SecretSafe(o.Object)
	if why := e.Policy.Refuses(o.Object.GroupVersionKind(), o.Object.GetNamespace()); why != "" {
		return Change{Subject: subject, Action: NotOwned, Err: fmt.Errorf("%s was not written: %s", subject, why)}
	}
	a := attempt{e: e, t: t, owner: owner, adopt: adopt, o: o, subject: subject, hash: manifest.ContentHash(o.Object)}
	fresh := false
	for n := 1; ; n++ {
		action, err := a.run(ctx, fresh)
		if apierrors.IsConflict(err) && n < maxAttempts {
			// The version read was behind: decide again on a fresh read.
			fresh = true
			continue
		}
		ch := Change{Subject: subject, Action: action, Err: err}
		if action == Created || action == Configured {
			ch.Owners = a.owners
		}
		return ch
	}
}

// attempt is one object's apply, decided again on each fresh read.
type attempt struct {
	e       *Engine
	t       Target
	owner   ownership.Owner
	adopt   bool
	o       Object
	subject string
	hash    string
	// noCreatePrecondition is set once the server refused the
	// must-not-exist precondition for another reason than a conflict.
	noCreatePrecondition bool
	// owners are the names in the record last written.
	owners []string
}

func (a *attempt) client(c dynamic.Interface) dynamic.ResourceInterface {
	return resourceClient(c, a.o.Resource, a.o.Object.GetNamespace())
}

func resourceClient(c dynamic.Interface, gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return c.Resource(gvr)
	}
	return c.Resource(gvr).Namespace(namespace)
}

// read returns the live object, nil when it does not exist. Unless fresh
// is asked for, it comes from the drift watch's cache when that holds it,
// else from the API server's watch cache, which costs the server far less
// than a read from etcd and is at most milliseconds behind; every write
// is conditional on the version read, so a stale read costs a retry, never
// an owner.
func (a *attempt) read(ctx context.Context, fresh bool) (*unstructured.Unstructured, error) {
	ns, name := a.o.Object.GetNamespace(), a.o.Object.GetName()
	if !fresh {
		if obj := a.t.cached(a.o.Resource, ns, name); obj != nil {
			return obj, nil
		}
	}
	opts := metav1.GetOptions{}
	if !fresh {
		opts.ResourceVersion = "0"
	}
	obj, err := a.client(a.t.Reader).Get(ctx, name, opts)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.subject, err)
	}
	return obj, nil
}

func (a *attempt) run(ctx context.Context, fresh bool) (Action, error) {
	ns, name := a.o.Object.GetNamespace(), a.o.Object.GetName()
	var live *unstructured.Unstructured
	switch {
	case fresh || a.o.Recorded || !a.t.CacheReads:
		var err error
		if live, err = a.read(ctx, fresh); err != nil {
			return Failed, err
		}
	default:
		// Most likely new: rather than read it first, create it with a
		// precondition that fails when it exists, and decide on a fresh
		// read then.
		live = a.t.cached(a.o.Resource, ns, name)
	}

	d := ownership.Decide(live, a.owner, a.hash, a.adopt, a.e.Alive)
	switch d.Verdict {
	case ownership.NotOwned:
		return NotOwned, fmt.Errorf("%s already exists and is not managed by Vidra; it was left alone (set adoptExisting to take it over)", a.subject)
	case ownership.Conflict:
		conflict := fmt.Errorf("%s is declared differently by VidraResource %s; it was left as they declared it", a.subject, strings.Join(d.Disagreeing, ", "))
		if live.GetAnnotations()[v1alpha1.AnnotationContentHash] != a.hash {
			return a.claim(ctx, live, d, conflict)
		}
		// This owner declares the content the object holds: it keeps it
		// as declared (drift is repaired), which changes nothing the
		// others could dispute.
		if action, err := a.write(ctx, live, d); err != nil {
			return action, err
		}
		return Conflict, conflict
	}
	return a.write(ctx, live, d)
}

// write applies the declared content with the decided record, unless the
// object already is so.
func (a *attempt) write(ctx context.Context, live *unstructured.Unstructured, d ownership.Decision) (Action, error) {
	ns, name := a.o.Object.GetNamespace(), a.o.Object.GetName()
	obj := a.o.Object.DeepCopy()
	ownership.MarkRecord(obj, d.Record, a.hash)
	// Equivalent cannot see a field the manifest dropped; the content hash
	// can, and then the apply removes it.
	if live != nil && ownership.ReadRecord(live).Equal(d.Record) &&
		live.GetAnnotations()[v1alpha1.AnnotationContentHash] == a.hash && manifest.Equivalent(obj, live) {
		return Unchanged, nil
	}
	switch {
	case live != nil:
		// Whatever the cache showed, the record written must be the one
		// decided on: apply only on the version read.
		obj.SetResourceVersion(live.GetResourceVersion())
	case !a.noCreatePrecondition:
		obj.SetResourceVersion(mustNotExist)
	}
	a.owners = d.Record.Names()
	done := a.t.beginOwnWrite(a.o.Resource, ns, name)
	applied, err := a.client(a.t.Client).Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: v1alpha1.FieldManager, Force: true})
	if err != nil {
		done("")
		if live == nil && !a.noCreatePrecondition && refusedOtherwise(err) {
			// Some API servers refuse a resourceVersion on create: read
			// again and apply without it, still under the ownership rules.
			a.noCreatePrecondition = true
			return a.run(ctx, true)
		}
		return Failed, fmt.Errorf("apply %s: %w", a.subject, err)
	}
	switch {
	case live == nil:
		done(applied.GetResourceVersion())
		return Created, nil
	case applied.GetResourceVersion() == live.GetResourceVersion():
		done("") // nothing changed, no event comes
		return Unchanged, nil
	}
	done(applied.GetResourceVersion())
	return Configured, nil
}

// refusedOtherwise reports whether the server answered a create with
// another refusal than a conflict.
func refusedOtherwise(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && !apierrors.IsConflict(err)
}

// claim records this owner's claim on an object whose other owners
// declare other content, leaving the content alone: once they declare the
// same, whoever applies next sees agreement and applies it.
func (a *attempt) claim(ctx context.Context, live *unstructured.Unstructured, d ownership.Decision, conflict error) (Action, error) {
	if ownership.ReadRecord(live).Equal(d.Record) && live.GetAnnotations()[v1alpha1.AnnotationOwners] != "" {
		return Conflict, conflict
	}
	if err := a.writeRecord(ctx, live, d.Record); err != nil {
		if apierrors.IsConflict(err) {
			return Failed, err
		}
		return Failed, fmt.Errorf("record the claim of %s on %s: %w", a.owner.Name, a.subject, err)
	}
	return Conflict, conflict
}

func (a *attempt) writeRecord(ctx context.Context, live *unstructured.Unstructured, rec ownership.Record) error {
	done := a.t.beginOwnWrite(a.o.Resource, live.GetNamespace(), live.GetName())
	written, err := patchRecord(ctx, a.client(a.t.Client), live, rec)
	if err != nil {
		done("")
		return err
	}
	done(written.GetResourceVersion())
	return nil
}
