package api

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	gtgolden "gotest.tools/v3/golden"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// golden compares got with testdata/golden/name; go test -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	gtgolden.Assert(t, got, filepath.Join("golden", name))
}

// ages replaces the AGE column, the only one that depends on the clock.
var ages = regexp.MustCompile(`(?m)\s+\d+[smhd]$`)

func stableTable(out string) string {
	return ages.ReplaceAllString(out, "   <age>")
}

func condition(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC))}
}

// longMessage is the kind of aggregated message that used to be the STATUS
// column: ~700 characters of per-object errors.
var longMessage = "3 of 12 objects failed: " + strings.Repeat("apps/v1, Kind=Deployment shop/web-frontend: admission webhook \"validate.example.com\" denied the request: spec.template.spec.containers[0].image must come from the internal registry; ", 4)

// TestPrinterColumnsGolden: kubectl get shows a short summary (never the
// long condition message), pluralised counts and suspension in its own
// column, on one line per object.
func TestPrinterColumnsGolden(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	syncs := vc.InfrahubV1alpha1().InfrahubSyncs()
	resources := vc.InfrahubV1alpha1().VidraResources()

	type syncCase struct {
		name    string
		suspend bool
		status  v1alpha1.InfrahubSyncStatus
	}
	for _, sc := range []syncCase{
		{"golden-a-ready", false, v1alpha1.InfrahubSyncStatus{Summary: "Synced 1 artifact", ArtifactCount: 1,
			Conditions: []metav1.Condition{condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", "Synced 1 artifact")}}},
		{"golden-b-failing", false, v1alpha1.InfrahubSyncStatus{Summary: "3 of 12 VidraResources not ready", ArtifactCount: 12,
			Conditions: []metav1.Condition{condition(v1alpha1.ConditionReady, metav1.ConditionFalse, "ResourcesNotReady", longMessage)}}},
		{"golden-c-suspended", true, v1alpha1.InfrahubSyncStatus{Summary: "Suspended", ArtifactCount: 4,
			Conditions: []metav1.Condition{
				condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", "Synced 4 artifacts"),
				condition(v1alpha1.ConditionSuspended, metav1.ConditionTrue, "Suspended", "Suspended: Infrahub is not read and nothing is applied"),
			}}},
	} {
		s := newSync(sc.name)
		s.Spec.Suspend = sc.suspend
		created, err := syncs.Create(ctx, s, metav1.CreateOptions{})
		assert.NilError(t, err)
		t.Cleanup(func() { _ = syncs.Delete(context.Background(), sc.name, metav1.DeleteOptions{}) })
		created.Status = sc.status
		_, err = syncs.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		assert.NilError(t, err)
	}

	type vrCase struct {
		name    string
		suspend bool
		status  v1alpha1.VidraResourceStatus
	}
	for _, rc := range []vrCase{
		{"golden-a-applied", false, v1alpha1.VidraResourceStatus{Summary: "Applied 4 objects", ObjectCount: 4,
			Conditions: []metav1.Condition{condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Applied", "Applied 4 objects")}}},
		{"golden-b-one", false, v1alpha1.VidraResourceStatus{Summary: "Applied 1 object", ObjectCount: 1,
			Conditions: []metav1.Condition{condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Applied", "Applied 1 object")}}},
		{"golden-c-cluster", false, v1alpha1.VidraResourceStatus{Summary: "Cluster https://edge.example.com:6443 refuses the credentials", ObjectCount: 12,
			Conditions: []metav1.Condition{condition(v1alpha1.ConditionReady, metav1.ConditionFalse, "ClusterCredentials", longMessage)}}},
		{"golden-d-suspended", true, v1alpha1.VidraResourceStatus{Summary: "Suspended", ObjectCount: 2,
			Conditions: []metav1.Condition{
				condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Applied", "Applied 2 objects"),
				condition(v1alpha1.ConditionSuspended, metav1.ConditionTrue, "Suspended", "Suspended: objects are neither applied nor pruned"),
			}}},
	} {
		vr := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: rc.name}, Spec: v1alpha1.VidraResourceSpec{
			Suspend: rc.suspend, Source: &v1alpha1.ArtifactSource{Sync: "golden-a-ready"},
			Destination: v1alpha1.Destination{Server: "https://edge.example.com:6443"},
		}}
		created, err := resources.Create(ctx, vr, metav1.CreateOptions{})
		assert.NilError(t, err)
		t.Cleanup(func() { _ = resources.Delete(context.Background(), rc.name, metav1.DeleteOptions{}) })
		created.Status = rc.status
		_, err = resources.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		assert.NilError(t, err)
	}

	ihs := []string{"golden-a-ready", "golden-b-failing", "golden-c-suspended"}
	vrs := []string{"golden-a-applied", "golden-b-one", "golden-c-cluster", "golden-d-suspended"}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"get-ihs.txt", append([]string{"get", "ihs"}, ihs...)},
		{"get-ihs-wide.txt", append([]string{"get", "ihs", "-o", "wide"}, ihs...)},
		{"get-vr.txt", append([]string{"get", "vr"}, vrs...)},
		{"get-vr-wide.txt", append([]string{"get", "vr", "-o", "wide"}, vrs...)},
	} {
		out := kubectl(t, ctx, tc.args...)
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			// One line per object, short enough for a terminal even wide.
			assert.Assert(t, len(line) <= 200, "%s: line of %d characters: %q", tc.file, len(line), line)
		}
		golden(t, tc.file, stableTable(out))
	}

	// The summary is bounded by the API itself.
	got, err := syncs.Get(ctx, "golden-a-ready", metav1.GetOptions{})
	assert.NilError(t, err)
	got.Status.Summary = strings.Repeat("x", v1alpha1.MaxSummary+1)
	_, err = syncs.UpdateStatus(ctx, got, metav1.UpdateOptions{})
	assert.Assert(t, apierrors.IsInvalid(err), "a summary over %d characters was accepted: %v", v1alpha1.MaxSummary, err)
}
