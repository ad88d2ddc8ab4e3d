package integration

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// A definition renders one artifact per target; each becomes a
// VidraResource whose objects reach the cluster. Regenerating one updates
// its objects; removing one prunes them; renaming an object replaces it.
func TestSyncLifecycle(t *testing.T) {
	e := newEnv(t)
	shop := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Webserver_Manifest", TargetLabel: "shop", Content: webserver("shop", "life-shop", 2)})
	blog := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Webserver_Manifest", TargetLabel: "blog", Content: webserver("blog", "life-blog", 1)})
	// An artifact of another name must not be picked up.
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Other_Manifest", TargetLabel: "other", Content: webserver("other", "life-other", 1)})

	e.newSync("web", "Webserver_Manifest")
	sync := e.waitReady("web")
	assert.Equal(t, len(sync.Status.Artifacts), 2)
	assert.Equal(t, sync.Status.SyncState, v1alpha1.StateSucceeded)
	for _, a := range sync.Status.Artifacts {
		assert.Equal(t, a.VidraResource, infrahubsync.ResourceName("web", a.ID))
		assert.Equal(t, a.Status, "Ready")
	}

	dep := e.waitExists(gvrDeployment, "life-shop", "shop")
	assert.Equal(t, nestedInt(dep, "spec", "replicas"), int64(2))
	assert.Equal(t, dep.GetLabels()[v1alpha1.LabelManagedBy], v1alpha1.ManagedByVidra)
	assert.DeepEqual(t, ownersOf(dep), []string{infrahubsync.ResourceName("web", shop.ID)})
	assert.Equal(t, len(dep.GetOwnerReferences()), 0, "no ownerReference: garbage collection must never delete managed objects")
	e.waitExists(gvrService, "life-blog", "blog")
	_, err := e.get(gvrNamespace, "", "life-other")
	assert.Assert(t, apierrors.IsNotFound(err), "an artifact of another name was applied")

	vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, infrahubsync.ResourceName("web", shop.ID), metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, vr.Spec.Source.Checksum, shop.Checksum)
	assert.Equal(t, vr.Labels[v1alpha1.LabelArtifact], shop.ID)
	assert.Equal(t, metav1.GetControllerOf(vr).Name, "web")
	assert.Assert(t, contains(vr.Finalizers, v1alpha1.VidraResourceFinalizer))
	e.waitResourceReason(vr.Name, "Applied")
	vr, _ = e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, vr.Name, metav1.GetOptions{})
	assert.Equal(t, vr.Status.ObjectCount, int32(3))
	kinds := map[string]bool{}
	for _, m := range vr.Status.ManagedResources {
		kinds[m.Kind] = true
	}
	assert.DeepEqual(t, kinds, map[string]bool{"Namespace": true, "Deployment": true, "Service": true})

	// Regenerate: replicas 2 -> 3.
	downloads := e.fake.Count(infrahubtest.EndpointStorage) + e.fake.Count(infrahubtest.EndpointArtifact)
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: shop.ID, Name: "Webserver_Manifest", TargetLabel: "shop", Content: webserver("shop", "life-shop", 3)})
	e.trigger("web")
	e.eventually("replicas 3", func() (bool, error) {
		dep, err := e.get(gvrDeployment, "life-shop", "shop")
		return err == nil && nestedInt(dep, "spec", "replicas") == 3, err
	})
	after := e.fake.Count(infrahubtest.EndpointStorage) + e.fake.Count(infrahubtest.EndpointArtifact)
	assert.Equal(t, after-downloads, 1, "only the regenerated artifact is downloaded")

	// Rename the Service: the new one is applied, then the old one removed.
	renamed := []byte(strings.Replace(string(webserver("shop", "life-shop", 3)), "kind: Service\nmetadata:\n  name: shop", "kind: Service\nmetadata:\n  name: shop-web", 1))
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: shop.ID, Name: "Webserver_Manifest", TargetLabel: "shop", Content: renamed})
	e.trigger("web")
	e.waitExists(gvrService, "life-shop", "shop-web")
	e.waitGone(gvrService, "life-shop", "shop")
	e.waitExists(gvrDeployment, "life-shop", "shop")

	// Remove the blog artifact: its VidraResource and objects go.
	assert.Assert(t, e.fake.DeleteArtifact("main", blog.ID))
	e.trigger("web")
	e.waitGone(gvrDeployment, "life-blog", "blog")
	e.eventually("blog VidraResource removed", func() (bool, error) {
		_, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, infrahubsync.ResourceName("web", blog.ID), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	e.waitExists(gvrDeployment, "life-shop", "shop")
	sync = e.waitReady("web")
	assert.Equal(t, len(sync.Status.Artifacts), 1)
}

// A resync where nothing changed asks Infrahub for one listing and
// downloads nothing.
func TestIdleResyncListsOnceAndDownloadsNothing(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Idle_Manifest", TargetLabel: n, Content: webserver("idle-"+n, "idle-"+n, 1)})
	}
	e.newSync("idle", "Idle_Manifest")
	before := e.waitReady("idle")
	e.fake.ResetCounts()
	e.trigger("idle")
	e.eventually("one listing", func() (bool, error) { return e.fake.Count(infrahubtest.EndpointGraphQL) >= 1, nil })
	// A second trigger after the first completed proves the first pass is done.
	e.trigger("idle")
	e.eventually("second listing", func() (bool, error) { return e.fake.Count(infrahubtest.EndpointGraphQL) >= 2, nil })
	e.waitReady("idle")
	assert.Equal(t, e.fake.Count(infrahubtest.EndpointStorage)+e.fake.Count(infrahubtest.EndpointArtifact), 0, "no download when nothing changed")
	assert.Equal(t, e.fake.Count(infrahubtest.EndpointLogin), 0, "the login is reused")
	after := e.getSync("idle")
	assert.DeepEqual(t, after.Status, before.Status)
	assert.Equal(t, after.ResourceVersion, before.ResourceVersion, "an idle resync writes no status")
}

// Infrahub failing, answering GraphQL errors, or refusing credentials never
// removes anything; the conditions say why.
func TestInfrahubFailuresDeleteNothing(t *testing.T) {
	e := newEnv(t)
	a := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Safe_Manifest", TargetLabel: "safe", Content: webserver("safe", "fail-safe", 1)})
	e.newSync("safe", "Safe_Manifest")
	e.waitReady("safe")
	e.waitExists(gvrDeployment, "fail-safe", "safe")
	vrName := infrahubsync.ResourceName("safe", a.ID)

	stillThere := func() {
		t.Helper()
		_, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, vrName, metav1.GetOptions{})
		assert.NilError(t, err, "the VidraResource was removed")
		_, err = e.get(gvrDeployment, "fail-safe", "safe")
		assert.NilError(t, err, "the Deployment was removed")
	}

	// A GraphQL error inside a 200 response.
	e.fake.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{GraphQLError: "query failed", Times: 1000})
	e.trigger("safe")
	s := e.waitSyncReason("safe", infrahubsync.ReasonInfrahubError)
	assert.Assert(t, is.Contains(s.Status.LastError, "query failed"))
	assert.Assert(t, is.Contains(meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady).Message, "nothing was changed"))
	stillThere()
	e.fake.ClearFaults()

	// Infrahub down: 503 on every request.
	e.fake.InjectFault(infrahubtest.EndpointAny, infrahubtest.Fault{Status: 503, Times: 1000})
	e.trigger("safe")
	e.waitSyncReason("safe", infrahubsync.ReasonInfrahubDown)
	stillThere()
	e.fake.ClearFaults()

	// Wrong credentials.
	e.secret(credsSecret, map[string]string{"username": fakeUser, "password": "wrong"}, nil)
	e.fake.RevokeSessions()
	e.fake.ExpireAccessTokens()
	e.trigger("safe")
	s = e.waitSyncReason("safe", infrahubsync.ReasonAuthentication)
	assert.Assert(t, !strings.Contains(s.Status.LastError, "wrong"), "the password leaked into status: %s", s.Status.LastError)
	stillThere()

	// An empty listing after a non-empty one removes nothing by default.
	e.secret(credsSecret, map[string]string{"username": fakeUser, "password": fakePassword}, nil)
	assert.Assert(t, e.fake.DeleteArtifact("main", a.ID))
	e.trigger("safe")
	s = e.waitSyncReason("safe", infrahubsync.ReasonEmptyListing)
	assert.Assert(t, meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionStalled))
	stillThere()

	// Allowing it removes everything.
	s.Spec.AllowEmpty = true
	_, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Update(e.ctx, s, metav1.UpdateOptions{})
	assert.NilError(t, err)
	e.waitGone(gvrDeployment, "fail-safe", "safe")
}

// Artifacts that are not Ready keep what was applied last.
func TestArtifactNotReadyKeepsLastApplied(t *testing.T) {
	e := newEnv(t)
	a := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Pending_Manifest", TargetLabel: "p", Content: webserver("pend", "pending-ns", 1)})
	e.newSync("pending", "Pending_Manifest")
	e.waitReady("pending")
	// Processing (and Pending) have no content to apply yet. An artifact in
	// Error keeps its last good content, which is applied: see
	// TestErrorArtifactWithContentIsApplied.
	assert.Assert(t, e.fake.SetArtifactStatus("main", a.ID, "Processing"))
	e.trigger("pending")
	s := e.waitSyncReason("pending", infrahubsync.ReasonArtifactsNotReady)
	assert.Assert(t, is.Contains(meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady).Message, "Processing"))
	e.waitExists(gvrDeployment, "pending-ns", "pend")
}

// Two syncs with the same destination do not delete each other's
// resources, and the same artifact synced twice gets two VidraResources.
func TestTwoSyncsSameDestination(t *testing.T) {
	e := newEnv(t)
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "A_Manifest", TargetLabel: "a", Content: webserver("a", "two-a", 1)})
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "B_Manifest", TargetLabel: "b", Content: webserver("b", "two-b", 1)})
	e.newSync("sync-a", "A_Manifest", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Namespace = "default" })
	e.newSync("sync-b", "B_Manifest", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Namespace = "default" })
	// Same artifact, second sync on another branch name in the spec.
	e.waitReady("sync-a")
	e.waitReady("sync-b")
	for i := 0; i < 3; i++ {
		e.trigger("sync-a")
		e.trigger("sync-b")
	}
	e.waitReady("sync-a")
	e.waitReady("sync-b")
	assert.Equal(t, len(e.resourcesOf("sync-a")), 1)
	assert.Equal(t, len(e.resourcesOf("sync-b")), 1)
	e.waitExists(gvrDeployment, "two-a", "a")
	e.waitExists(gvrDeployment, "two-b", "b")

	e.newSync("sync-a2", "A_Manifest", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Namespace = "other" })
	e.waitReady("sync-a2")
	ra, ra2 := e.resourcesOf("sync-a"), e.resourcesOf("sync-a2")
	assert.Equal(t, len(ra2), 1)
	assert.Assert(t, ra[0].Name != ra2[0].Name, "two syncs of one artifact share a VidraResource")
	assert.Equal(t, ra[0].Spec.Source.ArtifactID, ra2[0].Spec.Source.ArtifactID)
}
