package integration

import (
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// teamManifest declares the shared Namespace with a tier label and one
// ConfigMap of the team's own in it.
func teamManifest(ns, tier, team string) []byte {
	return []byte(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    tier: %s\n---\n", ns, tier) +
		configMap(ns, team, map[string]string{"team": team}))
}

// Two syncs share a Namespace. While only one artifact has moved its
// label, both report Conflict and the Namespace keeps it however often they
// pass; once both artifacts agree on the new label, the Namespace follows.
func TestSharedNamespaceFollowsWhenItsOwnersAgree(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	const ns = "tiered"
	a := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "TeamA_Manifest", TargetLabel: "a", Content: teamManifest(ns, "gold", "a")})
	b := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "TeamB_Manifest", TargetLabel: "b", Content: teamManifest(ns, "gold", "b")})
	e.newSync("team-a", "TeamA_Manifest")
	e.newSync("team-b", "TeamB_Manifest")
	e.waitReady("team-a")
	e.waitReady("team-b")
	vrA, vrB := infrahubsync.ResourceName("team-a", a.ID), infrahubsync.ResourceName("team-b", b.ID)
	live := e.waitExists(gvrNamespace, "", ns)
	assert.Equal(t, live.GetLabels()["tier"], "gold")
	assert.DeepEqual(t, ownersOf(live), sorted(vrA, vrB))

	t.Logf("step 1 after %s", time.Since(start))
	// Only team A moves.
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: a.ID, Name: "TeamA_Manifest", TargetLabel: "a", Content: teamManifest(ns, "silver", "a")})
	e.trigger("team-a")
	vr := e.waitResourceReason(vrA, vidraresource.ReasonConflict)
	assert.Assert(t, is.Contains(vr.Status.LastError, vrB))
	t.Logf("step 2 after %s", time.Since(start))
	e.op.Resources.Enqueue(vrB)
	e.waitResourceReason(vrB, vidraresource.ReasonConflict)
	settled := e.waitExists(gvrNamespace, "", ns)
	assert.Equal(t, settled.GetLabels()["tier"], "gold")
	t.Logf("step 3 after %s", time.Since(start))
	// No tug of war: passes of both owners write nothing.
	for i := 0; i < 5; i++ {
		e.op.Resources.Enqueue(vrA)
		e.op.Resources.Enqueue(vrB)
		time.Sleep(200 * time.Millisecond)
		live := e.waitExists(gvrNamespace, "", ns)
		assert.Equal(t, live.GetLabels()["tier"], "gold")
		assert.Equal(t, live.GetResourceVersion(), settled.GetResourceVersion(), "the shared Namespace was written while its owners disagree")
	}
	e.waitExists(gvrConfigMap, ns, "a")
	e.waitExists(gvrConfigMap, ns, "b")

	t.Logf("step 4 after %s", time.Since(start))
	// Team B moves too: the Namespace follows, both are Applied again.
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: b.ID, Name: "TeamB_Manifest", TargetLabel: "b", Content: teamManifest(ns, "silver", "b")})
	e.trigger("team-b")
	e.eventually("the shared Namespace follows its owners", func() (bool, error) {
		live, err := e.get(gvrNamespace, "", ns)
		return err == nil && live.GetLabels()["tier"] == "silver", err
	})
	t.Logf("step 5 after %s", time.Since(start))
	e.waitResourceReason(vrB, vidraresource.ReasonApplied)
	t.Logf("step 6 after %s", time.Since(start))
	// Team A is woken by the write it waited for, not by its recheck.
	e.waitResourceReason(vrA, vidraresource.ReasonApplied)
	t.Logf("step 7 after %s", time.Since(start))
	live = e.waitExists(gvrNamespace, "", ns)
	assert.Equal(t, live.GetLabels()["tier"], "silver")
	assert.DeepEqual(t, ownersOf(live), sorted(vrA, vrB))
	assert.Assert(t, live.GetAnnotations()[v1alpha1.AnnotationOwners] != "")
}

func sorted(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}
