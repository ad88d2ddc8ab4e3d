package apply

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifest"
	"github.com/vidra-operator/vidra/controllers/ownership"
)

// The fixture: a fake dynamic client whose reactors keep a small store
// with the API server's preconditions (resourceVersion, UID, must-not-
// exist), informer indexers seeded with what the drift watch's cache
// shows, and a list of live owners.

var (
	gvrNamespace = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

type fixture struct {
	t      *testing.T
	client *dynamicfake.FakeDynamicClient
	mu     sync.Mutex
	store  map[string]*unstructured.Unstructured // resource/namespace/name
	rv     int
	// rejectCreateVersion makes the server refuse a resourceVersion on
	// create, as some aggregated API servers do.
	rejectCreateVersion bool
	// noop makes the server answer an apply with the object unchanged.
	noop bool
	// beforeWrite runs before each write is decided: another client
	// writing in between.
	beforeWrite func(f *fixture)
	caches      map[schema.GroupVersionResource]cache.Indexer
	ownWrites   []string
	owners      map[string]types.UID // live VidraResources
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		t:      t,
		store:  map[string]*unstructured.Unstructured{},
		rv:     100,
		caches: map[schema.GroupVersionResource]cache.Indexer{},
		owners: map[string]types.UID{},
	}
	f.client = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	f.client.PrependReactor("*", "*", f.react)
	return f
}

func storeKey(resource, ns, name string) string { return resource + "/" + ns + "/" + name }

// seed stores an object on the server and returns a copy.
func (f *fixture) seed(gvr schema.GroupVersionResource, u *unstructured.Unstructured) *unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	u = u.DeepCopy()
	f.rv++
	u.SetResourceVersion(strconv.Itoa(f.rv))
	if u.GetUID() == "" {
		u.SetUID(types.UID("uid-" + u.GetName()))
	}
	f.store[storeKey(gvr.Resource, u.GetNamespace(), u.GetName())] = u
	return u.DeepCopy()
}

// live returns the object as stored.
func (f *fixture) live(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.store[storeKey(gvr.Resource, ns, name)]
	if u == nil {
		return nil
	}
	return u.DeepCopy()
}

// cacheShows seeds the drift watch's indexer.
func (f *fixture) cacheShows(gvr schema.GroupVersionResource, u *unstructured.Unstructured) {
	idx := f.caches[gvr]
	if idx == nil {
		idx = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
		f.caches[gvr] = idx
	}
	if err := idx.Add(u.DeepCopy()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) Get(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, bool) {
	idx := f.caches[gvr]
	if idx == nil {
		return nil, false
	}
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, _ := idx.GetByKey(key)
	if !ok {
		return nil, true
	}
	return obj.(*unstructured.Unstructured).DeepCopy(), true
}

func (f *fixture) BeginOwnWrite(gvr schema.GroupVersionResource, ns, name string) func(string) {
	return func(rv string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ownWrites = append(f.ownWrites, fmt.Sprintf("%s %s=%q", gvr.Resource, name, rv))
	}
}

func (f *fixture) alive(name string, uid types.UID) bool {
	have, ok := f.owners[name]
	return ok && (uid == "" || uid == have)
}

func (f *fixture) engine() *Engine {
	return &Engine{Alive: f.alive, Parallelism: 1}
}

func (f *fixture) target() Target {
	return Target{Client: f.client, Reader: f.client, Cache: f, CacheReads: true}
}

func (f *fixture) react(action clienttesting.Action) (bool, runtime.Object, error) {
	if f.beforeWrite != nil && (action.GetVerb() == "patch" || action.GetVerb() == "delete") {
		hook := f.beforeWrite
		f.beforeWrite = nil
		hook(f)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	gr := action.GetResource().GroupResource()
	switch a := action.(type) {
	case clienttesting.PatchAction:
		return f.patch(gr, a)
	case clienttesting.DeleteAction:
		key := storeKey(gr.Resource, a.GetNamespace(), a.GetName())
		u := f.store[key]
		if u == nil {
			return true, nil, apierrors.NewNotFound(gr, a.GetName())
		}
		if p := a.GetDeleteOptions().Preconditions; p != nil {
			if (p.UID != nil && *p.UID != u.GetUID()) || (p.ResourceVersion != nil && *p.ResourceVersion != u.GetResourceVersion()) {
				return true, nil, apierrors.NewConflict(gr, a.GetName(), fmt.Errorf("precondition failed"))
			}
		}
		delete(f.store, key)
		return true, nil, nil
	case clienttesting.GetAction:
		u := f.store[storeKey(gr.Resource, a.GetNamespace(), a.GetName())]
		if u == nil {
			return true, nil, apierrors.NewNotFound(gr, a.GetName())
		}
		return true, u.DeepCopy(), nil
	}
	return true, nil, fmt.Errorf("fixture: unexpected %s", action.GetVerb())
}

func (f *fixture) patch(gr schema.GroupResource, a clienttesting.PatchAction) (bool, runtime.Object, error) {
	key := storeKey(gr.Resource, a.GetNamespace(), a.GetName())
	live := f.store[key]
	body := map[string]any{}
	if err := json.Unmarshal(a.GetPatch(), &body); err != nil {
		return true, nil, apierrors.NewBadRequest(err.Error())
	}
	sent := &unstructured.Unstructured{Object: body}
	rv := sent.GetResourceVersion()
	switch {
	case live == nil && a.GetPatchType() != types.ApplyPatchType:
		return true, nil, apierrors.NewNotFound(gr, a.GetName())
	case rv == mustNotExist && f.rejectCreateVersion:
		// Refused before the store is even looked at.
		return true, nil, apierrors.NewBadRequest("resourceVersion can not be set for create requests")
	case live == nil:
		unstructured.RemoveNestedField(body, "metadata", "resourceVersion")
		f.rv++
		sent.SetResourceVersion(strconv.Itoa(f.rv))
		sent.SetUID(types.UID("uid-" + a.GetName()))
		f.store[key] = sent
		return true, sent.DeepCopy(), nil
	case rv != "" && rv != live.GetResourceVersion():
		return true, nil, apierrors.NewConflict(gr, a.GetName(), fmt.Errorf("the object has been modified"))
	}
	unstructured.RemoveNestedField(body, "metadata", "resourceVersion")
	merged := live.DeepCopy()
	if !f.noop {
		merged.Object = mergeMaps(merged.Object, body)
	}
	if !equalContent(merged, live) {
		f.rv++
		merged.SetResourceVersion(strconv.Itoa(f.rv))
	}
	f.store[key] = merged
	return true, merged.DeepCopy(), nil
}

// mergeMaps overlays patch on base, as both a merge patch and (for the
// fields one manager sets) an apply do.
func mergeMaps(base, patch map[string]any) map[string]any {
	for k, v := range patch {
		if pm, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = mergeMaps(bm, pm)
				continue
			}
		}
		base[k] = v
	}
	return base
}

func equalContent(a, b *unstructured.Unstructured) bool {
	x, _ := json.Marshal(a.Object)
	y, _ := json.Marshal(b.Object)
	return string(x) == string(y)
}

// actions lists what was sent to the server, one line per request: the
// verb, the object, the resourceVersion precondition and the owner
// record the request writes.
func (f *fixture) actions() []string {
	var out []string
	for _, action := range f.client.Actions() {
		gr := action.GetResource().Resource
		// Patches and deletes carry a name too: match them first.
		switch a := action.(type) {
		case clienttesting.DeleteAction:
			p := a.GetDeleteOptions().Preconditions
			out = append(out, fmt.Sprintf("delete %s/%s uid=%s rv=%s", gr, a.GetName(), *p.UID, *p.ResourceVersion))
		case clienttesting.PatchAction:
			u := &unstructured.Unstructured{}
			_ = json.Unmarshal(a.GetPatch(), &u.Object)
			verb := "apply"
			if a.GetPatchType() != types.ApplyPatchType {
				verb = "record"
			}
			line := fmt.Sprintf("%s %s/%s rv=%s owners=%s", verb, gr, a.GetName(), u.GetResourceVersion(), claims(u))
			if verb == "apply" {
				line += " content=" + shortHash(u.GetAnnotations()[v1alpha1.AnnotationContentHash])
			}
			out = append(out, line)
		case clienttesting.GetAction:
			out = append(out, fmt.Sprintf("get %s/%s", gr, a.GetName()))
		}
	}
	f.client.ClearActions()
	return out
}

// claims renders an object's record as "name:hash,..." with hashes
// shortened to the names the tests gave them.
func claims(u *unstructured.Unstructured) string {
	if _, ok := u.GetAnnotations()[v1alpha1.AnnotationOwners]; !ok {
		return "-"
	}
	rec := ownership.ReadRecord(u)
	var parts []string
	for _, name := range rec.Names() {
		parts = append(parts, name+":"+shortHash(rec[name].Hash))
	}
	return strings.Join(parts, ",")
}

// hashNames maps content hashes back to the label of the content.
var hashNames = map[string]string{}

func shortHash(h string) string {
	if n, ok := hashNames[h]; ok {
		return n
	}
	return h
}

// namespaceWith returns a Namespace declaring label tier=value, its hash
// named after the value.
func namespaceWith(name, tier string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	u.SetLabels(map[string]string{"tier": tier})
	hashNames[manifest.ContentHash(u)] = tier
	return u
}

func configMapWith(ns, name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(ns)
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, value, "data", "v")
	hashNames[manifest.ContentHash(u)] = value
	return u
}

// applied returns what Vidra leaves on the server for content declared by
// the owners of rec.
func applied(content *unstructured.Unstructured, rec ownership.Record) *unstructured.Unstructured {
	u := content.DeepCopy()
	ownership.MarkRecord(u, rec, manifest.ContentHash(content))
	return u
}

func hashOf(u *unstructured.Unstructured) string { return manifest.ContentHash(u) }

// label reads tier off a live Namespace.
func label(u *unstructured.Unstructured) string { return u.GetLabels()["tier"] }
