package watch_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vidra-operator/vidra/controllers/health"
	"github.com/vidra-operator/vidra/controllers/watch"
)

var sdcConfigs = schema.GroupVersionResource{Group: "config.sdcio.dev", Version: "v1alpha1", Resource: "configs"}

// TestHealthChangesAreReportedApartFromDrift plays SDC's config-server on
// a real API server: its status writes change the health the cache keeps,
// are reported to OnHealthChange and never to OnChange.
func TestHealthChangesAreReportedApartFromDrift(t *testing.T) {
	_, kc, dc := clients(t)
	ctx := t.Context()
	installCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cp.InstallCRDs(installCtx, filepath.Join("..", "..", "test", "testdata", "crds", "config.sdcio.dev_configs.yaml")); err != nil {
		t.Fatal(err)
	}
	ns := createNamespace(t, kc, "health-events")
	configs := dc.Resource(sdcConfigs).Namespace(ns)
	meta := managedMeta("leaf1-uplinks", "net")
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.sdcio.dev/v1alpha1", "kind": "Config",
		"metadata": map[string]any{"name": meta.Name, "namespace": ns, "labels": map[string]any{"managed-by": "vidra"},
			"annotations": map[string]any{"managed-by": "vidra", "vidraresource.infrahub.operators.com/owned-by": "net"}},
		"spec": map[string]any{"priority": int64(20), "config": []any{map[string]any{"path": "/", "value": map[string]any{"interface": []any{}}}}},
	}}
	if _, err := configs.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	drift, healthRec := &recorder{}, &recorder{}
	m := newManager(t, dc, watch.Options{OnChange: drift.onChange, OnHealthChange: healthRec.onChange})
	m.SetOwnerResources("net", []schema.GroupVersionResource{sdcConfigs})
	waitSynced(t, m, sdcConfigs)
	leaf1 := change{[]string{"net"}, sdcConfigs, ns, "leaf1-uplinks"}

	// The initial list is reported for health (the owner may have judged
	// the object before the cache held it), never as drift.
	healthRec.expectNext(t, ns, 0, leaf1)
	want := health.Result{Status: health.InProgress, Message: "not yet applied to the device"}
	if got, observed := m.Health(sdcConfigs, ns, "leaf1-uplinks"); !observed || got != want {
		t.Fatalf("Health before the device answered = %+v, %v; want %+v", got, observed, want)
	}

	setReady := func(status, reason, message, since string) {
		t.Helper()
		cur, err := configs.Get(ctx, "leaf1-uplinks", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Object["status"] = map[string]any{"conditions": []any{map[string]any{
			"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": since,
		}}}
		if _, err := configs.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mark := healthRec.mark(ns)
	setReady("False", "Failed", "leaf1 rejected the config", "2026-12-05T04:00:00Z")
	healthRec.expectNext(t, ns, mark, leaf1)
	if got, _ := m.Health(sdcConfigs, ns, "leaf1-uplinks"); got != (health.Result{Status: health.Failed, Message: "leaf1 rejected the config"}) {
		t.Fatalf("Health = %+v", got)
	}
	mark = healthRec.mark(ns)
	setReady("True", "Ready", "", "2026-12-05T04:01:00Z")
	healthRec.expectNext(t, ns, mark, leaf1)
	if got, _ := m.Health(sdcConfigs, ns, "leaf1-uplinks"); got != (health.Result{Status: health.Current, Message: "ready"}) {
		t.Fatalf("Health = %+v", got)
	}
	// A status write that leaves the health as it was is not reported:
	// the next report is the deletion.
	mark = healthRec.mark(ns)
	setReady("True", "Ready", "", "2026-12-05T04:02:00Z")
	if err := configs.Delete(ctx, "leaf1-uplinks", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	healthRec.expectNext(t, ns, mark, leaf1)
	if got, observed := m.Health(sdcConfigs, ns, "leaf1-uplinks"); !observed || got.Status != health.Unknown {
		t.Fatalf("Health after deletion = %+v, %v; want Unknown, true", got, observed)
	}
	// Only the deletion was drift.
	drift.expectNext(t, ns, 0, leaf1)
}
