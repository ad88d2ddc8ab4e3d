package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// newResource creates a VidraResource directly: the kind works on its own.
func (e *env) newResource(name, manifest string, tune ...func(*v1alpha1.VidraResource)) {
	e.t.Helper()
	vr := &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: manifest, Destination: v1alpha1.Destination{ReconcileOnEvents: true}},
	}
	for _, f := range tune {
		f(vr)
	}
	_, err := e.vidra.InfrahubV1alpha1().VidraResources().Create(e.ctx, vr, metav1.CreateOptions{})
	assert.NilError(e.t, err)
}

func (e *env) setManifest(name, manifest string) {
	e.t.Helper()
	// The operator writes status at any time (health follows the objects):
	// an update retries on conflict, as kubectl edit would.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		vr.Spec.Manifest = manifest
		_, err = e.vidra.InfrahubV1alpha1().VidraResources().Update(e.ctx, vr, metav1.UpdateOptions{})
		return err
	})
	assert.NilError(e.t, err)
}

func (e *env) deleteResource(name string) {
	e.t.Helper()
	err := e.vidra.InfrahubV1alpha1().VidraResources().Delete(e.ctx, name, metav1.DeleteOptions{})
	assert.NilError(e.t, err)
	e.eventually("VidraResource "+name+" gone", func() (bool, error) {
		_, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func configMap(ns, name string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if ns != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", ns)
	}
	b.WriteString("data:\n")
	for k, v := range data {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	return b.String()
}

func namespace(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name)
}

// Two owners share a Namespace: deleting one keeps the Namespace and the
// other's objects; deleting the last removes it (real namespace deletion).
func TestSharedNamespace(t *testing.T) {
	e := newEnv(t)
	e.newResource("team-a", namespace("shared-ns")+"---\n"+configMap("shared-ns", "a", map[string]string{"k": "a"}))
	e.newResource("team-b", namespace("shared-ns")+"---\n"+configMap("shared-ns", "b", map[string]string{"k": "b"}))
	e.waitResourceReason("team-a", vidraresource.ReasonApplied)
	e.waitResourceReason("team-b", vidraresource.ReasonApplied)
	ns := e.waitExists(gvrNamespace, "", "shared-ns")
	assert.DeepEqual(t, ownersOf(ns), []string{"team-a", "team-b"})

	// Resyncs never grow the owner list.
	for _, name := range []string{"team-a", "team-b", "team-a"} {
		e.op.Resources.Enqueue(name)
	}
	e.waitResourceReason("team-a", vidraresource.ReasonApplied)
	ns = e.waitExists(gvrNamespace, "", "shared-ns")
	assert.DeepEqual(t, ownersOf(ns), []string{"team-a", "team-b"})

	e.deleteResource("team-a")
	e.waitGone(gvrConfigMap, "shared-ns", "a")
	ns = e.waitExists(gvrNamespace, "", "shared-ns")
	assert.Assert(t, ns.GetDeletionTimestamp() == nil, "the shared Namespace is being deleted")
	assert.DeepEqual(t, ownersOf(ns), []string{"team-b"})
	e.waitExists(gvrConfigMap, "shared-ns", "b")

	e.deleteResource("team-b")
	e.waitGone(gvrNamespace, "", "shared-ns")
}

// The same object declared differently by two owners is a conflict: no
// tug of war. The second owner's claim is recorded, the content stays the
// first's.
func TestConflictingDeclarationsDoNotFlipFlop(t *testing.T) {
	e := newEnv(t)
	e.newResource("first", configMap("default", "contested", map[string]string{"v": "first"}))
	e.waitResourceReason("first", vidraresource.ReasonApplied)
	e.newResource("second", configMap("default", "contested", map[string]string{"v": "second"}))
	vr := e.waitResourceReason("second", vidraresource.ReasonConflict)
	assert.Assert(t, meta.IsStatusConditionTrue(vr.Status.Conditions, v1alpha1.ConditionStalled))
	assert.Assert(t, is.Contains(vr.Status.LastError, "first"))
	for i := 0; i < 3; i++ {
		e.op.Resources.Enqueue("first")
		e.op.Resources.Enqueue("second")
	}
	e.waitResourceReason("second", vidraresource.ReasonConflict)
	cm := e.waitExists(gvrConfigMap, "default", "contested")
	v, _, _ := unstructured.NestedString(cm.Object, "data", "v")
	assert.Equal(t, v, "first")
	assert.DeepEqual(t, ownersOf(cm), []string{"first", "second"})

	// Once the first owner lets go, the second takes the object.
	e.deleteResource("first")
	e.op.Resources.Enqueue("second")
	e.waitResourceReason("second", vidraresource.ReasonApplied)
	cm = e.waitExists(gvrConfigMap, "default", "contested")
	v, _, _ = unstructured.NestedString(cm.Object, "data", "v")
	assert.Equal(t, v, "second")
}

// An object that exists and is not Vidra's is not taken over, not even on
// later passes (the earlier operator took it on its first retry).
func TestUnmanagedObjectIsNotTakenOver(t *testing.T) {
	e := newEnv(t)
	_, err := e.kube.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "precious"}, Data: map[string]string{"owner": "someone-else"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	e.newResource("grabber", configMap("default", "precious", map[string]string{"owner": "vidra"})+"---\n"+configMap("default", "mine", map[string]string{"x": "y"}))
	vr := e.waitResourceReason("grabber", vidraresource.ReasonNotOwned)
	assert.Assert(t, is.Contains(vr.Status.LastError, "precious"))
	for i := 0; i < 3; i++ {
		e.op.Resources.Enqueue("grabber")
		vr = e.waitResourceReason("grabber", vidraresource.ReasonNotOwned)
	}
	cm, err := e.kube.CoreV1().ConfigMaps("default").Get(e.ctx, "precious", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["owner"], "someone-else")
	assert.Equal(t, cm.Labels[v1alpha1.LabelManagedBy], "")
	e.waitExists(gvrConfigMap, "default", "mine")

	events, err := e.kube.EventsV1().Events("default").List(e.ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	found := false
	for _, ev := range events.Items {
		if ev.Regarding.Name == "grabber" && ev.Reason == vidraresource.ReasonNotOwned {
			found = true
		}
	}
	assert.Assert(t, found, "no NotOwned event")

	// Deleting the VidraResource leaves the foreign object alone.
	e.deleteResource("grabber")
	_, err = e.kube.CoreV1().ConfigMaps("default").Get(e.ctx, "precious", metav1.GetOptions{})
	assert.NilError(t, err)
	e.waitGone(gvrConfigMap, "default", "mine")

	// Opting in adopts it.
	e.newResource("adopter", configMap("default", "precious", map[string]string{"owner": "vidra"}), func(vr *v1alpha1.VidraResource) { vr.Spec.AdoptExisting = true })
	e.waitResourceReason("adopter", vidraresource.ReasonApplied)
	cm, err = e.kube.CoreV1().ConfigMaps("default").Get(e.ctx, "precious", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["owner"], "vidra")
}

// In event mode a hand-edited Deployment and a hand-deleted Service are
// repaired right away, without waiting for the (hour-long) interval.
func TestDriftRepairInEventMode(t *testing.T) {
	e := newEnv(t)
	e.newResource("drift", string(webserver("drifty", "drift-ns", 2)))
	e.waitResourceReason("drift", vidraresource.ReasonApplied)
	e.waitExists(gvrDeployment, "drift-ns", "drifty")

	start := time.Now()
	_, err := e.dyn.Resource(gvrDeployment).Namespace("drift-ns").Patch(e.ctx, "drifty", types.MergePatchType,
		[]byte(`{"spec":{"replicas":7}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	assert.NilError(t, err)
	e.eventually("replicas restored", func() (bool, error) {
		d, err := e.get(gvrDeployment, "drift-ns", "drifty")
		return err == nil && nestedInt(d, "spec", "replicas") == 2, err
	})
	t.Logf("Deployment edit repaired in %v", time.Since(start))

	start = time.Now()
	assert.NilError(t, e.dyn.Resource(gvrService).Namespace("drift-ns").Delete(e.ctx, "drifty", metav1.DeleteOptions{}))
	e.waitExists(gvrService, "drift-ns", "drifty")
	t.Logf("Service deletion repaired in %v", time.Since(start))

	// Status-only changes made by others are not drift: Vidra does not
	// apply the object again, and the VidraResource changes only in the
	// health it records (the Deployment controller keeps writing status).
	vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, "drift", metav1.GetOptions{})
	assert.NilError(t, err)
	applyTime := func() string {
		d, err := e.get(gvrDeployment, "drift-ns", "drifty")
		assert.NilError(t, err)
		for _, f := range d.GetManagedFields() {
			if f.Manager == v1alpha1.FieldManager && f.Operation == metav1.ManagedFieldsOperationApply {
				return f.Time.String()
			}
		}
		return ""
	}
	applied := applyTime()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := e.kube.AppsV1().Deployments("drift-ns").Get(e.ctx, "drifty", metav1.GetOptions{})
		if err != nil {
			return err
		}
		dep.Status.ObservedGeneration = dep.Generation
		dep.Status.Replicas = 2
		_, err = e.kube.AppsV1().Deployments("drift-ns").UpdateStatus(e.ctx, dep, metav1.UpdateOptions{})
		return err
	})
	assert.NilError(t, err)
	e.op.Resources.Enqueue("drift")
	e.waitResourceReason("drift", vidraresource.ReasonApplied)
	after, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, "drift", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, withoutHealth(after.Status), withoutHealth(vr.Status))
	assert.Equal(t, applyTime(), applied, "a status change made Vidra apply the Deployment again")
}

// withoutHealth is a status without what follows the objects' health.
func withoutHealth(s v1alpha1.VidraResourceStatus) v1alpha1.VidraResourceStatus {
	s = *s.DeepCopy()
	s.Health = nil
	meta.RemoveStatusCondition(&s.Conditions, v1alpha1.ConditionHealthy)
	for i := range s.ManagedResources {
		s.ManagedResources[i].Health, s.ManagedResources[i].HealthMessage = "", ""
	}
	return s
}

// A CRD and its CR in one manifest: the CRD goes first and the CR follows
// once the CRD is Established.
func TestCRDAndItsCRInOneManifest(t *testing.T) {
	e := newEnv(t)
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.vidra.io
spec:
  group: example.vidra.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`
	cr := "apiVersion: example.vidra.io/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n"
	// The CR comes first in the document: order is Vidra's job.
	e.newResource("widgets", cr+"---\n"+crd, func(vr *v1alpha1.VidraResource) { vr.Spec.Destination.Namespace = "default" })
	e.waitResourceReason("widgets", vidraresource.ReasonApplied)
	w := e.waitExists(schema.GroupVersionResource{Group: "example.vidra.io", Version: "v1", Resource: "widgets"}, "default", "w1")
	assert.Equal(t, nestedInt(w, "spec", "size"), int64(3))
	e.deleteResource("widgets")
	e.waitGone(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "", "widgets.example.vidra.io")
}

// KubeVirt and VirtRigaud VirtualMachines (both "vm") and a Crossplane
// Object, with their real CRDs, and the 330 KB KubeVirt CRD itself as a
// managed object.
func TestVirtualMachinesAndCrossplaneWithRealCRDs(t *testing.T) {
	e := newEnv(t)
	crds := filepath.Join("..", "testdata", "crds")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	assert.NilError(t, cp.InstallCRDs(ctx,
		filepath.Join(crds, "infra.virtrigaud.io_virtualmachines.yaml"),
		filepath.Join(crds, "kubernetes.crossplane.io_objects.yaml"),
	))
	artifacts := filepath.Join("..", "testdata", "artifacts")
	kubevirtCRD := string(readTestdata(t, filepath.Join(crds, "kubevirt.io_virtualmachines.yaml")))

	// The KubeVirt CRD is managed by Vidra itself, then its VM is applied.
	e.newResource("kubevirt-crd", kubevirtCRD)
	e.newResource("vm-db01", string(readTestdata(t, filepath.Join(artifacts, "vm-db01.yaml"))))
	e.newResource("virtrigaud-app01", string(readTestdata(t, filepath.Join(artifacts, "virtrigaud-app01.yaml"))))
	e.newResource("crossplane-object", string(readTestdata(t, filepath.Join(artifacts, "crossplane-object.yaml"))))
	for _, name := range []string{"kubevirt-crd", "vm-db01", "virtrigaud-app01", "crossplane-object"} {
		e.waitResourceReason(name, vidraresource.ReasonApplied)
	}
	for _, name := range []string{"vm-db01", "virtrigaud-app01", "crossplane-object"} {
		vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		assert.NilError(t, err)
		for _, m := range vr.Status.ManagedResources {
			_, err := e.get(schema.GroupVersionResource{Group: m.Group, Version: m.Version, Resource: m.Resource}, m.Namespace, m.Name)
			assert.NilError(t, err, "%s %s/%s", m.Kind, m.Namespace, m.Name)
		}
		if name == "vm-db01" {
			assert.Assert(t, hasEntry(vr.Status.ManagedResources, "kubevirt.io", "VirtualMachine"))
		}
		if name == "virtrigaud-app01" {
			assert.Assert(t, hasEntry(vr.Status.ManagedResources, "infra.virtrigaud.io", "VirtualMachine"))
		}
	}
	for _, name := range []string{"vm-db01", "virtrigaud-app01", "crossplane-object", "kubevirt-crd"} {
		e.deleteResource(name)
	}
}

func hasEntry(items []v1alpha1.ManagedResource, group, kind string) bool {
	for _, m := range items {
		if m.Group == group && m.Kind == kind {
			return true
		}
	}
	return false
}

// readyWebserverSync serves a webserver artifact for the sync of that name,
// its Deployment named alike in the namespace <name>-ns, and waits until
// the sync is Ready and the Deployment exists.
func (e *env) readyWebserverSync(name string) {
	e.t.Helper()
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: name + "_Manifest", TargetLabel: name, Content: webserver(name, name+"-ns", 1)})
	e.newSync(name, name+"_Manifest")
	e.waitReady(name)
	e.waitExists(gvrDeployment, name+"-ns", name)
}

// Deleting an InfrahubSync deletes its VidraResources (the operator does,
// while its finalizer keeps the sync, so the garbage collector finds none
// left), whose finalizers delete the objects; the Namespace goes through
// real namespace deletion.
func TestDeletingSyncRemovesEverything(t *testing.T) {
	e := newEnv(t)
	e.readyWebserverSync("gone")
	e.deleteSyncAndWait("gone", metav1.DeletePropagationBackground)
	e.waitGone(gvrDeployment, "gone-ns", "gone")
	e.waitGone(gvrNamespace, "", "gone-ns")
}

// Foreground deletion (`kubectl delete --cascade=foreground`): the
// garbage collector deletes the VidraResources too; either way their
// finalizers delete the objects, and the sync goes last.
func TestForegroundDeletionOfSyncRemovesEverything(t *testing.T) {
	e := newEnv(t)
	e.readyWebserverSync("fore")
	e.deleteSyncAndWait("fore", metav1.DeletePropagationForeground)
	e.waitGone(gvrDeployment, "fore-ns", "fore")
}

// deleteSyncAndWait deletes a Ready sync, which carries the operator's
// finalizer, and waits until it is gone, checking all along that it never
// goes while one of its VidraResources is left.
func (e *env) deleteSyncAndWait(name string, policy metav1.DeletionPropagation) {
	e.t.Helper()
	syncs := e.vidra.InfrahubV1alpha1().InfrahubSyncs()
	sync, err := syncs.Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	assert.Assert(e.t, slices.Contains(sync.Finalizers, v1alpha1.SyncFinalizer), "finalizers: %v", sync.Finalizers)
	assert.NilError(e.t, syncs.Delete(e.ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}))
	var left []v1alpha1.VidraResource
	e.eventually("sync gone", func() (bool, error) {
		_, err := syncs.Get(e.ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		// Read after the sync was seen gone: its VidraResources went first.
		left = e.resourcesOf(name)
		return true, nil
	})
	assert.Equal(e.t, len(left), 0, "sync %s went before its VidraResources", name)
}

// `kubectl delete --cascade=orphan` on a sync: the garbage collector takes
// the owner reference off its VidraResources before the sync goes, and the
// operator, which deletes the VidraResources of a deleted sync itself,
// keeps them and their objects.
func TestOrphanCascadeKeepsVidraResources(t *testing.T) {
	e := newEnv(t)
	e.readyWebserverSync("kept")
	orphan := metav1.DeletePropagationOrphan
	assert.NilError(t, e.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(e.ctx, "kept", metav1.DeleteOptions{PropagationPolicy: &orphan}))
	e.eventually("sync gone", func() (bool, error) {
		_, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(e.ctx, "kept", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	// The sync's deletion reaches the operator within moments; whatever
	// it does about it, the VidraResource and its objects must stay.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		vrs := e.resourcesOf("kept")
		assert.Equal(t, len(vrs), 1, "the orphaned VidraResource was deleted")
		assert.Assert(t, vrs[0].DeletionTimestamp == nil, "the orphaned VidraResource is being deleted")
		assert.Equal(t, len(vrs[0].OwnerReferences), 0)
		time.Sleep(200 * time.Millisecond)
	}
	e.waitExists(gvrDeployment, "kept-ns", "kept")
	for _, vr := range e.resourcesOf("kept") {
		e.deleteResource(vr.Name)
	}
}

// The orphan annotation lets a VidraResource go without touching its objects.
func TestOrphanDeletionPolicy(t *testing.T) {
	e := newEnv(t)
	e.newResource("orphaner", configMap("default", "left-behind", map[string]string{"a": "b"}))
	e.waitResourceReason("orphaner", vidraresource.ReasonApplied)
	_, err := e.vidra.InfrahubV1alpha1().VidraResources().Patch(e.ctx, "orphaner", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationDeletionPolicy+`":"orphan"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	e.deleteResource("orphaner")
	e.waitExists(gvrConfigMap, "default", "left-behind")
	assert.NilError(t, e.kube.CoreV1().ConfigMaps("default").Delete(e.ctx, "left-behind", metav1.DeleteOptions{}))
}

// A bad manifest is reported with the document it is in, and nothing that
// was applied is lost.
func TestInvalidManifestKeepsObjects(t *testing.T) {
	e := newEnv(t)
	e.newResource("bad", configMap("default", "keep-me", map[string]string{"a": "b"}))
	e.waitResourceReason("bad", vidraresource.ReasonApplied)
	e.setManifest("bad", configMap("default", "keep-me", map[string]string{"a": "b"})+"---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
	vr := e.waitResourceReason("bad", vidraresource.ReasonInvalidManifest)
	assert.Assert(t, is.Contains(vr.Status.LastError, "document 2 (line 11): metadata.name is missing"))
	e.waitExists(gvrConfigMap, "default", "keep-me")

	// Namespaced objects without a namespace get the destination's, and
	// "default" when it names none.
	e.setManifest("bad", configMap("", "defaulted", map[string]string{"a": "b"}))
	e.waitResourceReason("bad", vidraresource.ReasonApplied)
	e.waitExists(gvrConfigMap, "default", "defaulted")
	e.waitGone(gvrConfigMap, "default", "keep-me")
}
