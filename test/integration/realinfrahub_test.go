package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// A misspelt artefactName is not "Ready, Synced 0 artifacts": the sync says
// Infrahub has no artifact of that name on that branch, with a Warning.
func TestMisspeltArtifactNameIsReported(t *testing.T) {
	e := newEnv(t)
	e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Webserver_Manifest", TargetLabel: "w", Content: webserver("w", "typo-ns", 1)})
	e.newSync("typo", "Webserver_Manifst")
	s := e.waitSyncReason("typo", infrahubsync.ReasonNoArtifacts)
	cond := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	assert.Equal(t, cond.Status, metav1.ConditionFalse)
	assert.Assert(t, is.Contains(cond.Message, `"Webserver_Manifst"`))
	assert.Assert(t, is.Contains(cond.Message, "branch main"))
	e.eventually("a NoArtifacts Warning event", func() (bool, error) {
		list, err := e.kube.EventsV1().Events("").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range list.Items {
			if ev.Regarding.Name == "typo" && ev.Reason == infrahubsync.ReasonNoArtifacts && ev.Type == "Warning" {
				return true, nil
			}
		}
		return false, nil
	})
}

// A VidraResource's manifest edited by hand is put back by its sync,
// and the objects follow.
func TestEditedManifestIsPutBack(t *testing.T) {
	e := newEnv(t)
	a := e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Edit_Manifest", TargetLabel: "e", Content: webserver("edit", "edit-ns", 2)})
	e.newSync("edit", "Edit_Manifest")
	e.waitReady("edit")
	e.waitExists(gvrDeployment, "edit-ns", "edit")
	name := infrahubsync.ResourceName("edit", a.ID)
	edited := strings.Replace(string(webserver("edit", "edit-ns", 2)), "replicas: 2", "replicas: 5", 1)
	assert.Assert(t, edited != string(webserver("edit", "edit-ns", 2)))
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"manifest": edited}})
	assert.NilError(t, err)
	_, err = e.vidra.InfrahubV1alpha1().VidraResources().Patch(e.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	assert.NilError(t, err)
	e.eventually("the manifest put back", func() (bool, error) {
		vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return vr.Spec.Manifest == string(webserver("edit", "edit-ns", 2)), nil
	})
	e.eventually("two replicas again", func() (bool, error) {
		dep, err := e.get(gvrDeployment, "edit-ns", "edit")
		if err != nil {
			return false, err
		}
		return nestedInt(dep, "spec", "replicas") == 2, nil
	})
}

// An artifact left in Error although its last render produced good content
// (same bytes as before the failure) reaches a new sync; its state is in
// the status and the Ready message.
func TestErrorArtifactWithContentIsApplied(t *testing.T) {
	e := newEnv(t)
	content := webserver("err", "err-ns", 1)
	e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Err_Manifest", TargetLabel: "x", Content: content})
	e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Err_Manifest", TargetLabel: "x", Status: "Error"})
	again := e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Err_Manifest", TargetLabel: "x", Content: content})
	assert.Equal(t, again.Status, "Error")

	e.newSync("err", "Err_Manifest")
	s := e.waitReady("err")
	e.waitExists(gvrDeployment, "err-ns", "err")
	assert.Equal(t, len(s.Status.Artifacts), 1)
	assert.Equal(t, s.Status.Artifacts[0].Status, "Error")
	assert.Assert(t, is.Contains(meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady).Message, "1 artifact in Error in Infrahub"))
}

// An Infrahub whose default branch is not main and that answers with
// GraphQL enums: a sync without a target branch reads the default branch
// and records it by name.
func TestDefaultBranchNotMainWithEnums(t *testing.T) {
	e := newEnvWithFake(t, []infrahubtest.Option{infrahubtest.WithDefaultBranch("trunk"), infrahubtest.WithGraphQLEnums()})
	a := e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Trunk_Manifest", TargetLabel: "t", Content: webserver("trunk", "trunk-ns", 1)})
	e.newSync("trunk", "Trunk_Manifest")
	s := e.waitReady("trunk")
	assert.Equal(t, len(s.Status.Artifacts), 1)
	assert.Equal(t, s.Status.Artifacts[0].Status, "Ready")
	e.waitExists(gvrDeployment, "trunk-ns", "trunk")
	vr, err := e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, infrahubsync.ResourceName("trunk", a.ID), metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, vr.Spec.Source.Branch, "trunk")
	assert.Equal(t, e.op.Syncs.BranchOf("trunk"), "trunk")
}
