package main

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// The watcher follows syncs, VidraResources, events and the managed
// objects through informers, and signals every change.
func TestWatcherFollowsChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sync := mustUnstructured(t, `
apiVersion: infrahub.operators.com/v1alpha1
kind: InfrahubSync
metadata: {name: net, uid: sync-uid}
spec:
  source: {infrahubAPIURL: "https://infrahub.example.com", artefactName: leaf}
`)
	vr := mustUnstructured(t, `
apiVersion: infrahub.operators.com/v1alpha1
kind: VidraResource
metadata:
  name: net-leaf1
  labels: {infrahub.operators.com/sync: net}
  ownerReferences:
  - {apiVersion: infrahub.operators.com/v1alpha1, kind: InfrahubSync, name: net, uid: sync-uid, controller: true}
spec: {}
status:
  conditions:
  - {type: Ready, status: "True", reason: Succeeded, lastTransitionTime: "2026-01-01T00:00:00Z"}
  managedResources:
  - {apiVersion: v1, kind: ConfigMap, namespace: net, name: settings, version: v1, resource: configmaps}
`)
	cm := mustUnstructured(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: net}
`)
	ev := mustUnstructured(t, `
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: net-leaf1.1, namespace: default}
eventTime: "2026-01-01T00:00:01.000000Z"
regarding: {kind: VidraResource, name: net-leaf1}
reason: Applied
note: 1 object applied
type: Normal
`)
	gvrConfigMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvrInfrahubSyncs:  "InfrahubSyncList",
		gvrVidraResources: "VidraResourceList",
		gvrEvents:         "EventList",
		gvrConfigMaps:     "ConfigMapList",
	}, sync, vr, cm, ev)
	w := newWatcher(ctx, dyn, kubefake.NewClientset().Discovery())

	waitPage := func(what string, ok func(pageModel) bool) pageModel {
		t.Helper()
		var page pageModel
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			page = w.page()
			return ok(page), nil
		})
		assert.NilError(t, err, "%s: %+v", what, page)
		return page
	}
	page := waitPage("the tree", func(p pageModel) bool {
		return len(p.Syncs) == 1 && len(p.Syncs[0].Resources) == 1 && len(p.Syncs[0].Resources[0].Objects) == 1 &&
			p.Syncs[0].Resources[0].Objects[0].State == stateReady && len(p.Syncs[0].Resources[0].Events) == 1
	})
	assert.Equal(t, page.Syncs[0].Resources[0].Events[0].Reason, "Applied")
	assert.Assert(t, !page.Loading)
	assert.Equal(t, page.Syncs[0].Resources[0].State, stateReady)

	// Drain, then change the VidraResource and delete its object: both
	// are signalled and shown.
	for len(w.changed) > 0 {
		<-w.changed
	}
	conds, _, _ := unstructured.NestedSlice(vr.Object, "status", "conditions")
	conds[0].(map[string]any)["status"] = "False"
	conds[0].(map[string]any)["reason"] = "ApplyFailed"
	assert.NilError(t, unstructured.SetNestedSlice(vr.Object, conds, "status", "conditions"))
	_, err := dyn.Resource(gvrVidraResources).UpdateStatus(ctx, vr, metav1.UpdateOptions{})
	assert.NilError(t, err)
	select {
	case <-w.changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no change signalled")
	}
	assert.NilError(t, dyn.Resource(gvrConfigMaps).Namespace("net").Delete(ctx, "settings", metav1.DeleteOptions{}))
	page = waitPage("the update", func(p pageModel) bool {
		r := p.Syncs[0].Resources[0]
		return r.State == stateFailed && r.Objects[0].State == stateMissing
	})
	assert.Equal(t, page.Syncs[0].Resources[0].Reason, "ApplyFailed")
	assert.Equal(t, len(page.Problems), 0, "%v", page.Problems)
}

// On an empty cluster the page stops loading once the first lists are in,
// and that is signalled although no object arrives.
func TestWatcherEmptyClusterStopsLoading(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvrInfrahubSyncs:  "InfrahubSyncList",
		gvrVidraResources: "VidraResourceList",
		gvrEvents:         "EventList",
	})
	w := newWatcher(ctx, dyn, kubefake.NewClientset().Discovery())
	for {
		select {
		case <-w.changed:
		case <-time.After(30 * time.Second):
			t.Fatal("the first lists were never signalled")
		}
		if !w.page().Loading {
			break
		}
	}
	page := w.page()
	assert.Equal(t, len(page.Syncs)+len(page.Standalone), 0)
}
