package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// bigArtifact is a Namespace and n ConfigMaps of about 1 KB of random
// (poorly compressible) data each: n=10000 is about 10 MB of YAML.
func bigArtifact(ns string, n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
	data := make([]byte, 1000)
	for i := 0; i < n; i++ {
		for j := range data {
			data[j] = letters[r.Intn(len(letters))]
		}
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\n  namespace: %s\ndata:\n  value: %s\n", i, ns, data)
	}
	return b.Bytes()
}

// waitLong is eventually with a longer bound, for thousands of objects on
// a shared machine.
func (e *env) waitLong(what string, limit time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, limit, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		e.t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}

func (e *env) waitApplied(name string, generation int64) *v1alpha1.VidraResource {
	e.t.Helper()
	var vr *v1alpha1.VidraResource
	e.waitLong("VidraResource "+name+" Applied", 8*time.Minute, func() (bool, error) {
		var err error
		vr, err = e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != "Applied" || c.ObservedGeneration != vr.Generation || vr.Generation < generation {
			return false, fmt.Errorf("condition: %+v", c)
		}
		return true, nil
	})
	return vr
}

// orphanAtEnd lets the test end without deleting thousands of objects one
// by one: the VidraResources orphan them and the namespace goes at once.
func (e *env) orphanAtEnd(sync, ns string) {
	e.t.Cleanup(func() {
		ctx := context.Background()
		list, err := e.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + sync})
		if err != nil {
			e.t.Errorf("list VidraResources of %s: %v", sync, err)
			return
		}
		for _, vr := range list.Items {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationDeletionPolicy, v1alpha1.DeletionPolicyOrphan)
			_, _ = e.vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		}
		_ = e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	})
}

// A 10 MB artifact of 10,000 ConfigMaps converges: the manifest is kept in
// chunk ConfigMaps next to the operator, the VidraResource names them, and
// it still repairs drift from them while Infrahub is down.
func TestLargeArtifactConverges(t *testing.T) {
	e := newEnv(t)
	// Ten thousand objects take longer than newEnv's bound on a shared machine.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	const ns, n = "big-artifact", 10000
	content := bigArtifact(ns, n, 1)
	assert.Assert(t, len(content) > 10_000_000, "%d bytes", len(content))
	art := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Big_Manifest", TargetLabel: "big", Content: content})
	e.orphanAtEnd("big", ns)
	sync := e.newSync("big", "Big_Manifest")

	name := infrahubsync.ResourceName("big", art.ID)
	vr := e.waitApplied(name, 1)
	assert.Equal(t, vr.Status.ObjectCount, int32(n+1))
	assert.Equal(t, vr.Spec.Manifest, "")
	chunks := vr.Spec.ManifestChunks
	assert.Assert(t, chunks != nil)
	assert.Equal(t, chunks.Namespace, e.ns)
	assert.Equal(t, chunks.Size, int64(len(content)))
	for _, cmName := range chunks.Names {
		cm, err := e.kube.CoreV1().ConfigMaps(e.ns).Get(e.ctx, cmName, metav1.GetOptions{})
		assert.NilError(t, err)
		assert.Equal(t, cm.OwnerReferences[0].UID, sync.UID)
	}
	got, err := manifeststore.Read(e.ctx, &vr.Spec, manifeststore.ClientGetter{Client: e.kube}, 0)
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(got, content), "kubectl users and the plugin read the manifest back through manifeststore.Read")
	list, err := e.kube.CoreV1().ConfigMaps(ns).List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByVidra})
	assert.NilError(t, err)
	assert.Equal(t, len(list.Items), n)
	e.waitReady("big")

	// Infrahub down: the VidraResource is self-contained, drift is
	// repaired from the stored manifest.
	e.fake.InjectFault(infrahubtest.EndpointAny, infrahubtest.Fault{Status: 503, Times: 100000})
	defer e.fake.ClearFaults()
	e.trigger("big")
	e.waitSyncReason("big", infrahubsync.ReasonInfrahubDown)
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-04242", metav1.GetOptions{})
	assert.NilError(t, err)
	want := cm.Data["value"]
	cm.Data["value"] = "drifted"
	_, err = e.kube.CoreV1().ConfigMaps(ns).Update(e.ctx, cm, metav1.UpdateOptions{})
	assert.NilError(t, err)
	assert.NilError(t, e.kube.CoreV1().ConfigMaps(ns).Delete(e.ctx, "cm-00007", metav1.DeleteOptions{}))
	e.waitLong("drift repaired with Infrahub down", 2*time.Minute, func() (bool, error) {
		cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-04242", metav1.GetOptions{})
		if err != nil || cm.Data["value"] != want {
			return false, err
		}
		_, err = e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-00007", metav1.GetOptions{})
		return err == nil, err
	})
}

// Above --max-manifest-bytes: the sync says so with the size and the
// limit, and what was applied before stays exactly as it was.
func TestArtifactAboveLimitKeepsWhatWasApplied(t *testing.T) {
	const limit = 3 << 20
	e := newEnv(t, func(c *operator.Config) { c.MaxManifestBytes = limit })
	const ns = "big-limit"
	first := bigArtifact(ns, 2000, 1) // ~2 MB: chunks
	art := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Big_Manifest", TargetLabel: "big", Content: first})
	e.orphanAtEnd("limit", ns)
	e.newSync("limit", "Big_Manifest")
	name := infrahubsync.ResourceName("limit", art.ID)
	before := e.waitApplied(name, 1)
	assert.Assert(t, before.Spec.ManifestChunks != nil)
	e.waitReady("limit")
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-00000", metav1.GetOptions{})
	assert.NilError(t, err)

	tooBig := bigArtifact(ns, 4000, 2) // ~4 MB, other data
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: art.ID, Name: "Big_Manifest", TargetLabel: "big", Content: tooBig})
	e.trigger("limit")
	s := e.waitSyncReason("limit", infrahubsync.ReasonArtifactTooLarge)
	cond := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	assert.Assert(t, is.Contains(cond.Message, fmt.Sprintf("(%d bytes), over the limit of 3.0 MiB (%d bytes)", len(tooBig), limit)))
	e.eventually("Warning event ArtifactTooLarge", func() (bool, error) {
		evs, err := e.kube.EventsV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == "limit" && ev.Reason == infrahubsync.ReasonArtifactTooLarge && ev.Type == corev1.EventTypeWarning &&
				strings.Contains(ev.Note, "over the limit of 3.0 MiB") {
				return true, nil
			}
		}
		return false, nil
	})

	after, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, after.Generation, before.Generation, "the VidraResource was not touched")
	assert.DeepEqual(t, after.Spec.ManifestChunks, before.Spec.ManifestChunks)
	still, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-00000", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, still.Data["value"], cm.Data["value"])
	assert.Equal(t, still.ResourceVersion, cm.ResourceVersion)
	_, err = e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-03999", metav1.GetOptions{})
	assert.Assert(t, err != nil, "nothing of the oversized artifact was applied")

	// New content within the limit: applied from new chunks, and the old
	// chunks are removed once the VidraResource names the new ones.
	next := bigArtifact(ns, 2500, 3)
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: art.ID, Name: "Big_Manifest", TargetLabel: "big", Content: next})
	e.trigger("limit")
	current := e.waitApplied(name, before.Generation+1)
	assert.Equal(t, current.Spec.ManifestChunks.Size, int64(len(next)))
	e.waitExists(gvrConfigMap, ns, "cm-02499")
	e.eventually("old chunks removed", func() (bool, error) {
		list, err := e.kube.CoreV1().ConfigMaps(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: manifeststore.LabelOf})
		if err != nil {
			return false, err
		}
		var names []string
		for _, cm := range list.Items {
			names = append(names, cm.Name)
		}
		if fmt.Sprint(names) != fmt.Sprint(current.Spec.ManifestChunks.Names) {
			return false, fmt.Errorf("chunks %v, want %v", names, current.Spec.ManifestChunks.Names)
		}
		return true, nil
	})
}

// tinyConfigMaps is a Namespace and n ConfigMaps without data: a manifest
// of many objects that is small for its count.
func tinyConfigMaps(ns string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%05d, namespace: %s}\n", i, ns)
	}
	return b.Bytes()
}

// An artifact of more objects than a VidraResource can record (here 14,000,
// whose inventory would pass etcd's 1.5 MiB request limit) is refused
// before anything is applied, with both sizes in its condition and a
// Warning event; what was applied before keeps its objects and inventory.
func TestInventoryAboveLimitIsRefused(t *testing.T) {
	e := newEnv(t)
	const ns = "inventory-limit"
	art := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Many_Objects", TargetLabel: "many", Content: tinyConfigMaps(ns, 2)})
	e.orphanAtEnd("many", ns)
	e.newSync("many", "Many_Objects")
	name := infrahubsync.ResourceName("many", art.ID)
	before := e.waitApplied(name, 1)
	assert.Equal(t, len(before.Status.ManagedResources), 3)
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-00000", metav1.GetOptions{})
	assert.NilError(t, err)

	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: art.ID, Name: "Many_Objects", TargetLabel: "many", Content: tinyConfigMaps(ns, 14000)})
	e.trigger("many")
	vr := e.waitResourceReason(name, vidraresource.ReasonInventoryTooLarge)
	cond := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
	assert.Assert(t, is.Contains(cond.Message, "Recording 14001 objects"))
	assert.Assert(t, is.Contains(cond.Message, fmt.Sprintf("above the %d bytes", vidraresource.DefaultMaxResourceBytes)))
	assert.Equal(t, len(vr.Status.ManagedResources), 3, "the inventory is kept")
	e.eventually("Warning event InventoryTooLarge", func() (bool, error) {
		evs, err := e.kube.EventsV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == name && ev.Reason == vidraresource.ReasonInventoryTooLarge && ev.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	})
	e.eventually("the sync names the refusal", func() (bool, error) {
		c := meta.FindStatusCondition(e.getSync("many").Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "Recording 14001 objects"), nil
	})

	list, err := e.kube.CoreV1().ConfigMaps(ns).List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByVidra})
	assert.NilError(t, err)
	assert.Equal(t, len(list.Items), 2, "nothing of the refused manifest was applied")
	still, err := e.kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "cm-00000", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, still.ResourceVersion, cm.ResourceVersion)
}
