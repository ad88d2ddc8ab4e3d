package watch_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/watch"
	"github.com/vidra-operator/vidra/test/controlplane"
)

var cp *controlplane.ControlPlane

// TestMain starts one real control plane for the package.
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(controlplane.RunMain(m, controlplane.Config{Name: "watch"}, &cp))
}

var (
	configMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secrets     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

const waitTimeout = 30 * time.Second

func restConfig(t testing.TB) *rest.Config {
	t.Helper()
	return cp.RESTConfig()
}

func clients(t testing.TB) (*rest.Config, kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cfg := restConfig(t)
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, kc, dc
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createNamespace(t testing.TB, kc kubernetes.Interface, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kc.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = kc.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// managedMeta is the metadata Vidra puts on an object declared by owners.
func managedMeta(name, owners string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra},
		Annotations: map[string]string{v1alpha1.AnnotationManagedBy: v1alpha1.ManagedByVidra, v1alpha1.AnnotationOwnedBy: owners},
	}
}

// change is one OnChange call.
type change struct {
	Owners    []string
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
}

func (c change) String() string {
	return fmt.Sprintf("%s %s/%s owners=%q", c.GVR.Resource, c.Namespace, c.Name, c.Owners)
}

// recorder collects OnChange calls. Every manager watches all namespaces, so
// tests look only at the calls in their own namespace.
type recorder struct {
	mu      sync.Mutex
	changes []change
}

func (r *recorder) onChange(owners []string, gvr schema.GroupVersionResource, namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, change{owners, gvr, namespace, name})
}

func (r *recorder) in(namespace string) []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []change
	for _, c := range r.changes {
		if c.Namespace == namespace {
			out = append(out, c)
		}
	}
	return out
}

// mark returns a position to compare later calls against.
func (r *recorder) mark(namespace string) int { return len(r.in(namespace)) }

// expectNext waits for a call about name in namespace after mark and
// checks that the calls since mark, up to that one, are exactly want. This
// is how the tests prove an earlier action caused no call: events of one
// informer arrive in order, so a call for the earlier action would come
// first.
func (r *recorder) expectNext(t testing.TB, namespace string, mark int, want ...change) {
	t.Helper()
	last := want[len(want)-1]
	var since []change
	eventually(t, "OnChange for "+last.String(), func() bool {
		all := r.in(namespace)
		for i := mark; i < len(all); i++ {
			if all[i].GVR == last.GVR && all[i].Name == last.Name {
				since = all[mark : i+1]
				return true
			}
		}
		return false
	})
	if !reflect.DeepEqual(since, want) {
		t.Fatalf("OnChange calls since mark:\n  got  %v\n  want %v", since, want)
	}
}

// seenValue reports whether the cache holds ConfigMap pre with data.k.
func seenValue(m *watch.Manager, ns, value string) bool {
	obj, _ := m.Get(configMaps, ns, "pre")
	if obj == nil {
		return false
	}
	v, _, _ := unstructured.NestedString(obj.Object, "data", "k")
	return v == value
}

func newManager(t testing.TB, dc dynamic.Interface, opts watch.Options) *watch.Manager {
	t.Helper()
	m := watch.NewManager(dc, opts)
	t.Cleanup(m.Stop)
	return m
}

func waitSynced(t testing.TB, m *watch.Manager, gvrs ...schema.GroupVersionResource) {
	t.Helper()
	for _, gvr := range gvrs {
		eventually(t, gvr.String()+" informer synced", func() bool { return m.HasSynced(gvr) })
	}
}

func TestConfigMapEvents(t *testing.T) {
	_, kc, dc := clients(t)
	ctx := t.Context()
	ns := createNamespace(t, kc, "cm-events")
	cms := kc.CoreV1().ConfigMaps(ns)

	// Objects that exist before the informer starts: the initial list must
	// not report them.
	pre := &corev1.ConfigMap{ObjectMeta: managedMeta("pre", "b,a"), Data: map[string]string{"k": "v1"}}
	if _, err := cms.Create(ctx, pre, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unlabelled := &corev1.ConfigMap{ObjectMeta: managedMeta("unlabelled", "a"), Data: map[string]string{"k": "v1"}}
	unlabelled.Labels = nil
	if _, err := cms.Create(ctx, unlabelled, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	m := newManager(t, dc, watch.Options{OnChange: rec.onChange})
	m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps})
	waitSynced(t, m, configMaps)
	preChange := change{[]string{"a", "b"}, configMaps, ns, "pre"}

	t.Run("Get", func(t *testing.T) {
		obj, synced := m.Get(configMaps, ns, "pre")
		if !synced || obj == nil {
			t.Fatalf("Get(pre) = %v, %v; want the object, true", obj, synced)
		}
		if obj.GetManagedFields() != nil {
			t.Error("cached object has managedFields")
		}
		if v, _, _ := unstructured.NestedString(obj.Object, "data", "k"); v != "v1" {
			t.Errorf("data.k = %q, want v1", v)
		}
		// Get returns a copy: changing it must not change the cache.
		obj.SetLabels(nil)
		if again, _ := m.Get(configMaps, ns, "pre"); again.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByVidra {
			t.Error("modifying Get's result changed the cache")
		}
		if obj, synced := m.Get(configMaps, ns, "unlabelled"); !synced || obj != nil {
			t.Errorf("Get(unlabelled) = %v, %v; want nil, true", obj, synced)
		}
		if obj, synced := m.Get(secrets, ns, "pre"); synced || obj != nil {
			t.Errorf("Get on an unwatched type = %v, %v; want nil, false", obj, synced)
		}
	})

	updateData := func(t *testing.T, name, value string) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := cms.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Data["k"] = value
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("updating %s: %v", name, err)
		}
	}

	t.Run("initial list is silent, data update is reported", func(t *testing.T) {
		updateData(t, "pre", "v2")
		rec.expectNext(t, ns, 0, preChange)
	})

	t.Run("managedFields-only write is not reported, a label is", func(t *testing.T) {
		mark := rec.mark(ns)
		before, err := cms.Get(ctx, "pre", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The same content applied by a second field manager changes only
		// managedFields (and resourceVersion).
		apply := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "ConfigMap",
			"metadata":   map[string]any{"name": "pre", "namespace": ns, "labels": map[string]any{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra}},
			"data":       map[string]any{"k": "v2"},
		}}
		after, err := dc.Resource(configMaps).Namespace(ns).Apply(ctx, "pre", apply, metav1.ApplyOptions{FieldManager: "someone-else"})
		if err != nil {
			t.Fatal(err)
		}
		if after.GetResourceVersion() == before.ResourceVersion {
			t.Fatal("the apply wrote nothing, so it tests nothing")
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := cms.Get(ctx, "pre", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Labels["extra"] = "yes"
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.expectNext(t, ns, mark, preChange)
	})

	t.Run("an announced own write is not reported, a foreign one is", func(t *testing.T) {
		mark := rec.mark(ns)
		for i := range 10 {
			done := m.BeginOwnWrite(configMaps, ns, "pre")
			cm, err := cms.Get(ctx, "pre", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cm.Data["k"] = fmt.Sprintf("own-%d", i)
			written, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Let the event arrive before the write is known, as it can.
			eventually(t, "own write cached", func() bool { return seenValue(m, ns, cm.Data["k"]) })
			done(written.ResourceVersion)
		}
		// A foreign write while an own write is in flight is reported once
		// the own write returns.
		done := m.BeginOwnWrite(configMaps, ns, "pre")
		updateData(t, "pre", "foreign")
		eventually(t, "foreign write cached", func() bool { return seenValue(m, ns, "foreign") })
		if got := rec.in(ns)[mark:]; len(got) != 0 {
			t.Fatalf("reported while a write was in flight or for own writes: %v", got)
		}
		done("")
		rec.expectNext(t, ns, mark, preChange)
	})

	t.Run("unlabelled object is never seen", func(t *testing.T) {
		mark := rec.mark(ns)
		updateData(t, "unlabelled", "v2")
		if err := cms.Delete(ctx, "unlabelled", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		updateData(t, "pre", "v3")
		rec.expectNext(t, ns, mark, preChange)
	})

	t.Run("create after sync is reported", func(t *testing.T) {
		mark := rec.mark(ns)
		late := &corev1.ConfigMap{ObjectMeta: managedMeta("late", "c"), Data: map[string]string{"k": "v1"}}
		if _, err := cms.Create(ctx, late, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rec.expectNext(t, ns, mark, change{[]string{"c"}, configMaps, ns, "late"})
	})

	t.Run("owners are the union of old and new", func(t *testing.T) {
		mark := rec.mark(ns)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := cms.Get(ctx, "late", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Annotations[v1alpha1.AnnotationOwnedBy] = "d"
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.expectNext(t, ns, mark, change{[]string{"c", "d"}, configMaps, ns, "late"})
	})

	t.Run("losing the label is reported as a deletion", func(t *testing.T) {
		mark := rec.mark(ns)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := cms.Get(ctx, "late", metav1.GetOptions{})
			if err != nil {
				return err
			}
			delete(cm.Labels, v1alpha1.LabelManagedBy)
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.expectNext(t, ns, mark, change{[]string{"d"}, configMaps, ns, "late"})
		if obj, synced := m.Get(configMaps, ns, "late"); !synced || obj != nil {
			t.Errorf("Get(late) = %v, %v; want nil, true", obj, synced)
		}
	})

	t.Run("delete is reported", func(t *testing.T) {
		mark := rec.mark(ns)
		if err := cms.Delete(ctx, "pre", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		rec.expectNext(t, ns, mark, preChange)
	})
}

func TestDeploymentEvents(t *testing.T) {
	_, kc, dc := clients(t)
	ctx := t.Context()
	ns := createNamespace(t, kc, "deploy-events")
	deps := kc.AppsV1().Deployments(ns)

	d := &appsv1.Deployment{
		ObjectMeta: managedMeta("web", "a"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}}},
			},
		},
	}
	rec := &recorder{}
	m := newManager(t, dc, watch.Options{OnChange: rec.onChange})
	m.SetOwnerResources("a", []schema.GroupVersionResource{deployments})
	waitSynced(t, m, deployments)

	// Created after the informer synced: reported. The deployment
	// controller then stamps its revision annotation and writes status;
	// neither is drift, and neither is reported.
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var settledRV string
	eventually(t, "deployment controller to settle", func() bool {
		live, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || live.Annotations["deployment.kubernetes.io/revision"] == "" || live.Status.ObservedGeneration != live.Generation {
			return false
		}
		obj, _ := m.Get(deployments, ns, "web")
		if obj == nil || obj.GetResourceVersion() != live.ResourceVersion {
			return false
		}
		settledRV = obj.GetResourceVersion()
		return true
	})
	if obj, _ := m.Get(deployments, ns, "web"); obj.GetAnnotations()["deployment.kubernetes.io/revision"] != "" {
		t.Error("the revision annotation is cached")
	}
	eventually(t, "the creation reported", func() bool { return rec.mark(ns) > 0 })
	mark := rec.mark(ns)
	if mark != 1 {
		t.Fatalf("OnChange calls for the creation and the deployment controller's writes: %v, want only the creation", rec.in(ns))
	}

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Conditions = append(cur.Status.Conditions, appsv1.DeploymentCondition{
			Type: "VidraTest", Status: corev1.ConditionTrue, Reason: "Test", Message: "status only",
		})
		_, err = deps.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating status: %v", err)
	}
	// Let the informer handle the status write (or a later one) before the
	// spec change, so both really are separate events.
	eventually(t, "status write cached", func() bool {
		obj, _ := m.Get(deployments, ns, "web")
		return obj != nil && obj.GetResourceVersion() != settledRV
	})

	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Replicas = ptr.To[int32](2)
		_, err = deps.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating replicas: %v", err)
	}
	rec.expectNext(t, ns, mark, change{[]string{"a"}, deployments, ns, "web"})

	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if obj, _ := m.Get(deployments, ns, "web"); obj == nil {
				b.Fatal("not cached")
			}
		}
	})
	t.Logf("Get (deep copy) of a cached Deployment: %s %s", res, res.MemString())
}

func TestSharedResourceLifecycle(t *testing.T) {
	_, _, dc := clients(t)
	m := newManager(t, dc, watch.Options{})

	m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps})
	m.SetOwnerResources("b", []schema.GroupVersionResource{secrets, configMaps, configMaps})
	if got, want := m.Resources(), []schema.GroupVersionResource{configMaps, secrets}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Resources() = %v, want %v", got, want)
	}
	waitSynced(t, m, configMaps, secrets)

	m.RemoveOwner("a")
	if got, want := m.Resources(), []schema.GroupVersionResource{configMaps, secrets}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after RemoveOwner(a): Resources() = %v, want %v", got, want)
	}
	// Still synced at once: the informer kept running rather than restarting.
	if !m.HasSynced(configMaps) {
		t.Error("configmaps informer restarted when one of its two owners left")
	}
	st := m.Stats()
	if st.Informers != 2 || st.Resources[0].Resource != configMaps || st.Resources[0].Owners != 1 || !st.Resources[0].Synced {
		t.Errorf("Stats() = %+v; want 2 informers, configmaps with 1 owner, synced", st)
	}

	m.SetOwnerResources("b", []schema.GroupVersionResource{secrets})
	if got, want := m.Resources(), []schema.GroupVersionResource{secrets}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after dropping configmaps: Resources() = %v, want %v", got, want)
	}
	if obj, synced := m.Get(configMaps, "kube-system", "x"); synced || obj != nil {
		t.Errorf("Get on a stopped type = %v, %v; want nil, false", obj, synced)
	}

	m.RemoveOwner("b")
	if got := m.Resources(); len(got) != 0 {
		t.Fatalf("after RemoveOwner(b): Resources() = %v, want none", got)
	}
	if st := m.Stats(); st.Informers != 0 || st.Objects != 0 || len(st.Resources) != 0 {
		t.Errorf("Stats() = %+v, want zero", st)
	}
	if m.HasSynced(secrets) {
		t.Error("HasSynced(secrets) after its last owner left")
	}

	m.Stop()
	m.Stop() // idempotent
	m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps})
	if got := m.Resources(); len(got) != 0 {
		t.Errorf("SetOwnerResources after Stop started %v", got)
	}
}

// TestDeletedResourceType checks that a type whose CRD disappears, or that
// never existed, does not wedge the manager.
func TestDeletedResourceType(t *testing.T) {
	_, kc, dc := clients(t)
	ctx := t.Context()
	ns := createNamespace(t, kc, "crd-gone")
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	widgets := schema.GroupVersionResource{Group: "watchtest.vidra.io", Version: "v1", Resource: "widgets"}
	never := schema.GroupVersionResource{Group: "nope.vidra.io", Version: "v1", Resource: "things"}

	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.watchtest.vidra.io"},
		"spec": map[string]any{
			"group": "watchtest.vidra.io",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	if _, err := dc.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dc.Resource(crdGVR).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	widget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "watchtest.vidra.io/v1",
		"kind":       "Widget",
		"metadata": map[string]any{
			"name":        "w1",
			"namespace":   ns,
			"labels":      map[string]any{v1alpha1.LabelManagedBy: v1alpha1.ManagedByVidra},
			"annotations": map[string]any{v1alpha1.AnnotationOwnedBy: "a"},
		},
		"spec": map[string]any{"size": int64(1)},
	}}
	eventually(t, "widget created once the CRD is served", func() bool {
		_, err := dc.Resource(widgets).Namespace(ns).Create(ctx, widget, metav1.CreateOptions{})
		return err == nil
	})

	rec := &recorder{}
	m := newManager(t, dc, watch.Options{OnChange: rec.onChange})
	m.SetOwnerResources("a", []schema.GroupVersionResource{widgets})
	m.SetOwnerResources("b", []schema.GroupVersionResource{configMaps})
	m.SetOwnerResources("c", []schema.GroupVersionResource{never})
	waitSynced(t, m, widgets, configMaps)

	mark := rec.mark(ns)
	if err := dc.Resource(crdGVR).Delete(ctx, crd.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.expectNext(t, ns, mark, change{[]string{"a"}, widgets, ns, "w1"})

	statsOf := func(gvr schema.GroupVersionResource) watch.ResourceStats {
		for _, rs := range m.Stats().Resources {
			if rs.Resource == gvr {
				return rs
			}
		}
		return watch.ResourceStats{}
	}
	eventually(t, "list error recorded for the deleted type", func() bool { return statsOf(widgets).LastError != "" })
	eventually(t, "list error recorded for the unknown type", func() bool { return statsOf(never).LastError != "" })
	t.Logf("deleted type: %s", statsOf(widgets).LastError)
	if m.HasSynced(never) {
		t.Error("HasSynced(unknown type) = true")
	}
	if obj, synced := m.Get(never, ns, "x"); synced || obj != nil {
		t.Errorf("Get(unknown type) = %v, %v; want nil, false", obj, synced)
	}

	// Other types keep working.
	mark = rec.mark(ns)
	cm := &corev1.ConfigMap{ObjectMeta: managedMeta("alive", "b")}
	if _, err := kc.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.expectNext(t, ns, mark, change{[]string{"b"}, configMaps, ns, "alive"})

	m.RemoveOwner("a")
	m.RemoveOwner("c")
	if got, want := m.Resources(), []schema.GroupVersionResource{configMaps}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Resources() = %v, want %v", got, want)
	}
	stopped := make(chan struct{})
	go func() { m.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatal("Stop did not return")
	}
}

// leakedStacks returns the stacks of goroutines running informer or
// manager code.
func leakedStacks() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "k8s.io/client-go/tools/cache.") ||
			strings.Contains(g, "k8s.io/client-go/dynamic/dynamicinformer.") ||
			strings.Contains(g, "vidra/controllers/watch.") {
			out = append(out, g)
		}
	}
	return out
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	_, _, dc := clients(t)
	// Warm up the client's connection so its goroutines are in the baseline.
	if _, err := dc.Resource(configMaps).List(t.Context(), metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	m := watch.NewManager(dc, watch.Options{OnChange: func([]string, schema.GroupVersionResource, string, string) {}})
	serviceAccounts := schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps, secrets})
	m.SetOwnerResources("b", []schema.GroupVersionResource{deployments, serviceAccounts})
	m.SetOwnerResources("c", []schema.GroupVersionResource{{Group: "nope.vidra.io", Version: "v1", Resource: "things"}})
	waitSynced(t, m, configMaps, secrets, deployments, serviceAccounts)
	if running := runtime.NumGoroutine(); running <= baseline {
		t.Fatalf("%d goroutines with 5 informers, baseline %d: the check would prove nothing", running, baseline)
	}
	m.RemoveOwner("a") // stopped in the background, still waited for by Stop
	m.Stop()

	if leaked := leakedStacks(); len(leaked) > 0 {
		t.Fatalf("informer goroutines still running after Stop:\n%s", strings.Join(leaked, "\n\n"))
	}
	// Watch streams close asynchronously; allow a little slack for the
	// HTTP client's own goroutines.
	const slack = 3
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > baseline+slack {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Stop, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMemoryPerObject measures the heap an informer holds per cached
// ConfigMap, with and without the default transform.
func TestMemoryPerObject(t *testing.T) {
	const count = 1000
	_, kc, dc := clients(t)
	ctx := t.Context()
	ns := createNamespace(t, kc, "memory")

	// Objects as Vidra writes them: server-side applied, so managedFields
	// are realistic, with Vidra's markers and a few data keys.
	value := strings.Repeat("x", 60)
	work := make(chan int)
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				obj := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "v1",
					"kind":       "ConfigMap",
					"metadata": map[string]any{
						"name":      fmt.Sprintf("cm-%04d", i),
						"namespace": ns,
						"labels": map[string]any{
							v1alpha1.LabelManagedBy:  v1alpha1.ManagedByVidra,
							"vidra-test":             "memory",
							"app.kubernetes.io/name": "demo",
						},
						"annotations": map[string]any{
							v1alpha1.AnnotationManagedBy:   v1alpha1.ManagedByVidra,
							v1alpha1.AnnotationOwnedBy:     "artifact-0123456789abcdef",
							v1alpha1.AnnotationContentHash: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
						},
					},
					"data": map[string]any{"a": value, "b": value, "c": value, "d": value},
				}}
				_, err := dc.Resource(configMaps).Namespace(ns).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: v1alpha1.FieldManager})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating ConfigMaps: %v", err)
	}
	sample, err := kc.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kc.CoreV1().RESTClient().Get().Namespace(ns).Resource("configmaps").Name(sample.Name).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one ConfigMap is %d bytes of JSON as served, managedFields included", len(raw))

	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	measure := func(name string, transform cache.TransformFunc) float64 {
		before := heap()
		m := watch.NewManager(dc, watch.Options{LabelSelector: "managed-by=vidra,vidra-test=memory", Transform: transform})
		defer m.Stop()
		m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps})
		waitSynced(t, m, configMaps)
		if got := m.Stats().Objects; got != count {
			t.Fatalf("%s: %d objects cached, want %d", name, got, count)
		}
		after := heap()
		per := float64(int64(after)-int64(before)) / count
		t.Logf("%s: heap %.0f bytes per cached ConfigMap (%.2f MiB for %d)", name, per, per*count/(1<<20), count)
		runtime.KeepAlive(m)
		return per
	}
	cached := measure("cache", nil)
	// The same objects held as the maps the dynamic client decodes, with
	// what the transform strips already gone: what the cache held before
	// it kept objects encoded.
	before := heap()
	asMaps := make([]*unstructured.Unstructured, count)
	for i := range asMaps {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		if _, err := watch.HealthTransform(u); err != nil {
			t.Fatal(err)
		}
		asMaps[i] = u
	}
	perMap := float64(int64(heap())-int64(before)) / count
	runtime.KeepAlive(asMaps)
	t.Logf("as maps: heap %.0f bytes per ConfigMap", perMap)
	if cached >= perMap {
		t.Errorf("the cache keeps a ConfigMap in %.0f bytes, no less than the %.0f bytes of its maps", cached, perMap)
	}

	m := watch.NewManager(dc, watch.Options{LabelSelector: "managed-by=vidra,vidra-test=memory"})
	defer m.Stop()
	m.SetOwnerResources("a", []schema.GroupVersionResource{configMaps})
	waitSynced(t, m, configMaps)
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if obj, _ := m.Get(configMaps, ns, "cm-0000"); obj == nil {
				b.Fatal("not cached")
			}
		}
	})
	t.Logf("Get (deep copy) of a cached ConfigMap: %s %s", res, res.MemString())
}
