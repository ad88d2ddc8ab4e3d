package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

func mustUnstructured(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(text))
	assert.NilError(t, err)
	u := &unstructured.Unstructured{}
	assert.NilError(t, u.UnmarshalJSON(data)) // numbers become int64, as from the API server
	return u
}

// The operator's health fields (status.health, the inventory's health and
// healthMessage, a Healthy condition) are shown as they are; a VidraResource
// without them shows no health rather than a made-up one.
func TestBuildPageShowsTreeWithHealth(t *testing.T) {
	sync := mustUnstructured(t, `
apiVersion: infrahub.operators.com/v1alpha1
kind: InfrahubSync
metadata:
  name: net
  uid: sync-uid
  generation: 2
  creationTimestamp: "2026-01-01T00:00:00Z"
  managedFields:
  - manager: vidra
    operation: Update
    subresource: status
    time: "2026-01-01T10:00:00Z"
spec:
  source: {infrahubAPIURL: "https://infrahub.example.com", artefactName: leaf, targetBranch: feature}
status:
  lastSyncTime: "2026-01-01T10:00:00Z"
  conditions:
  - {type: Ready, status: "True", reason: Succeeded, message: "2 artifacts applied", observedGeneration: 2, lastTransitionTime: "2026-01-01T09:00:00Z"}
  health: {status: Failed, current: 1, inProgress: 0, failed: 1, unknown: 0}
`)
	owned := func(name string) string {
		return fmt.Sprintf(`
apiVersion: infrahub.operators.com/v1alpha1
kind: VidraResource
metadata:
  name: %s
  generation: 1
  labels: {%s: net}
  ownerReferences:
  - {apiVersion: infrahub.operators.com/v1alpha1, kind: InfrahubSync, name: net, uid: sync-uid, controller: true}
spec:
  source: {artifactID: a-1, target: leaf1}
`, name, v1alpha1.LabelSync)
	}
	leaf := mustUnstructured(t, owned("net-leaf1")+`
status:
  conditions:
  - {type: Ready, status: "True", reason: Succeeded, observedGeneration: 1, lastTransitionTime: "2026-01-01T09:00:00Z"}
  - {type: Healthy, status: "False", reason: Failed, message: "1 of 2 objects failed", observedGeneration: 1, lastTransitionTime: "2026-01-01T09:30:00Z"}
  health: {status: Failed, current: 1, failed: 1}
  managedResources:
  - {apiVersion: config.sdcio.dev/v1alpha1, kind: Config, namespace: net, name: leaf1, group: config.sdcio.dev, version: v1alpha1, resource: configs, health: Failed, healthMessage: "device rejected the configuration"}
  - {apiVersion: apps/v1, kind: Deployment, namespace: net, name: web, group: apps, version: v1, resource: deployments, health: Current}
  - {apiVersion: v1, kind: ConfigMap, namespace: net, name: far, server: "https://remote:6443", resource: configmaps, version: v1}
`)
	// Written by an operator that records no health yet.
	plain := mustUnstructured(t, owned("net-leaf2")+`
status:
  conditions:
  - {type: Ready, status: "False", reason: ApplyFailed, message: "boom", observedGeneration: 1, lastTransitionTime: "2026-01-01T09:00:00Z"}
  - {type: Stalled, status: "True", reason: ApplyFailed, observedGeneration: 1, lastTransitionTime: "2026-01-01T09:00:00Z"}
  managedResources:
  - {apiVersion: v1, kind: ConfigMap, namespace: net, name: gone, resource: configmaps, version: v1}
`)
	standalone := mustUnstructured(t, `
apiVersion: infrahub.operators.com/v1alpha1
kind: VidraResource
metadata: {name: by-hand}
spec: {manifest: "{}"}
`)
	deployment := mustUnstructured(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: net
  generation: 3
  creationTimestamp: "2026-01-01T08:00:00Z"
  managedFields:
  - {manager: vidra, operation: Apply, time: "2026-01-01T08:30:00Z"}
  - {manager: kube-controller-manager, operation: Update, subresource: status, time: "2026-01-01T08:45:00Z"}
spec: {replicas: 2}
status: {observedGeneration: 3, readyReplicas: 1, updatedReplicas: 2}
`)
	var liveAsked []string
	live := func(e v1alpha1.ManagedResource) liveObject {
		liveAsked = append(liveAsked, e.Kind+"/"+e.Name)
		switch e.Name {
		case "web":
			return liveObject{obj: deployment}
		case "leaf1":
			return liveObject{state: stateUnknown, message: "not read yet"}
		}
		return liveObject{state: stateMissing, message: "not found in the cluster"}
	}
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	events := func(ref objectRef) []eventView {
		if ref != (objectRef{Kind: "VidraResource", Name: "net-leaf1"}) {
			return nil
		}
		var out []eventView
		for i := range 7 {
			out = append(out, eventView{Type: "Normal", Reason: fmt.Sprintf("R%d", i), Time: base.Add(time.Duration(i) * time.Minute), Count: 1})
		}
		return out
	}

	page := buildPage(pageInputs{
		syncs:     []*unstructured.Unstructured{sync},
		resources: []*unstructured.Unstructured{standalone, plain, leaf},
		live:      live,
		events:    events,
	})

	assert.Equal(t, len(page.Problems), 0, "%v", page.Problems)
	assert.Equal(t, len(page.Syncs), 1)
	s := page.Syncs[0]
	assert.Equal(t, s.State, stateReady)
	assert.Equal(t, s.Branch, "feature")
	assert.DeepEqual(t, s.Health, &healthSummary{Status: "Failed", Current: 1, Failed: 1})
	assert.Equal(t, s.LastChange.Format(time.RFC3339), "2026-01-01T10:00:00Z")
	assert.Equal(t, len(s.Resources), 2)

	vr := s.Resources[0]
	assert.Equal(t, vr.Name, "net-leaf1")
	assert.Equal(t, vr.State, stateReady)
	assert.Equal(t, vr.Artifact, "a-1 (leaf1)")
	assert.DeepEqual(t, vr.Health, &healthSummary{Status: "Failed", Current: 1, Failed: 1})
	assert.Equal(t, len(vr.Conditions), 2)
	assert.Equal(t, vr.Conditions[1].Type, "Healthy")
	assert.Equal(t, vr.Conditions[1].Status, "False")
	assert.Equal(t, vr.Conditions[1].Message, "1 of 2 objects failed")
	// Newest first, at most maxEvents.
	assert.Equal(t, len(vr.Events), maxEvents)
	assert.Equal(t, vr.Events[0].Reason, "R6")
	assert.Equal(t, vr.Events[maxEvents-1].Reason, "R2")

	assert.Equal(t, len(vr.Objects), 3)
	cfg, dep, far := vr.Objects[0], vr.Objects[1], vr.Objects[2]
	assert.Equal(t, cfg.Health, "Failed")
	assert.Equal(t, cfg.HealthMessage, "device rejected the configuration")
	assert.Equal(t, cfg.State, stateUnknown)
	assert.Equal(t, dep.Health, "Current")
	assert.Equal(t, dep.State, stateInProgress)
	assert.Assert(t, dep.Message != "", "the reading says why")
	assert.Equal(t, dep.LastChange.Format(time.RFC3339), "2026-01-01T08:45:00Z")
	assert.Equal(t, far.State, stateNotChecked)
	assert.Equal(t, far.Server, "https://remote:6443")
	// Objects on other clusters are not read.
	assert.DeepEqual(t, liveAsked, []string{"Config/leaf1", "Deployment/web", "ConfigMap/gone"})

	old := s.Resources[1]
	assert.Equal(t, old.Name, "net-leaf2")
	assert.Equal(t, old.State, stateStalled)
	assert.Assert(t, old.Health == nil)
	assert.Equal(t, old.Objects[0].Health, "")
	assert.Equal(t, old.Objects[0].State, stateMissing)

	assert.Equal(t, len(page.Standalone), 1)
	assert.Equal(t, page.Standalone[0].Name, "by-hand")
	assert.Equal(t, page.Standalone[0].State, stateUnknown)

	// The JSON the browser reads carries the health fields under the
	// operator's names.
	data, err := json.Marshal(page)
	assert.NilError(t, err)
	for _, want := range []string{`"health":{"status":"Failed","current":1,"inProgress":0,"failed":1,"unknown":0}`, `"healthMessage":"device rejected the configuration"`, `"health":"Current"`} {
		assert.Assert(t, strings.Contains(string(data), want), "%s not in %s", want, data)
	}
}

func TestEventFrom(t *testing.T) {
	ev := mustUnstructured(t, `
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: x.1, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
eventTime: "2026-01-01T00:00:01.000000Z"
regarding: {kind: VidraResource, name: net-leaf1}
reason: Applied
note: "3 objects applied"
type: Normal
series: {count: 4, lastObservedTime: "2026-01-01T00:05:00.000000Z"}
`)
	ref, view := eventFrom(ev)
	assert.Equal(t, ref, objectRef{Kind: "VidraResource", Name: "net-leaf1"})
	assert.Equal(t, view.Reason, "Applied")
	assert.Equal(t, view.Message, "3 objects applied")
	assert.Equal(t, view.Count, int64(4))
	assert.Equal(t, view.Time.Format(time.RFC3339), "2026-01-01T00:05:00Z")

	// A core v1 event seen through events.k8s.io: deprecated fields.
	core := mustUnstructured(t, `
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: y.1, namespace: net, creationTimestamp: "2026-01-01T00:00:00Z"}
regarding: {kind: Deployment, namespace: net, name: web}
reason: ScalingReplicaSet
note: scaled up
type: Normal
deprecatedCount: 2
deprecatedLastTimestamp: "2026-01-01T00:02:00Z"
`)
	ref, view = eventFrom(core)
	assert.Equal(t, ref, objectRef{Kind: "Deployment", Namespace: "net", Name: "web"})
	assert.Equal(t, view.Count, int64(2))
	assert.Equal(t, view.Time.Format(time.RFC3339), "2026-01-01T00:02:00Z")
}

// fakePages serves pages a test sets.
type fakePages struct {
	mu   sync.Mutex
	page pageModel
}

func (f *fakePages) page_() pageModel { f.mu.Lock(); defer f.mu.Unlock(); return f.page }
func (f *fakePages) set(p pageModel)  { f.mu.Lock(); f.page = p; f.mu.Unlock() }

type pageFunc func() pageModel

func (f pageFunc) page() pageModel { return f() }

func TestUIServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := &fakePages{page: pageModel{Syncs: []syncView{{Name: "one", State: stateReady}}}}
	var diffArgs []string
	diff := func(_ context.Context, sync, branch, at string) diffResult {
		diffArgs = []string{sync, branch, at}
		return diffResult{ExitCode: 1, Output: "+kind: ConfigMap\n"}
	}
	s := newUIServer(ctx, pageFunc(pages.page_), "https://cluster:6443", diff)
	changed := make(chan struct{}, 1)
	go s.publish(ctx, changed)
	srv := httptest.NewServer(nil)
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	portNum := strconv.Itoa(port)
	srv.Config.Handler = s.handler(port)

	get := func(path, host string) *http.Response {
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		assert.NilError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		assert.NilError(t, err)
		return resp
	}
	// Another name for 127.0.0.1 (DNS rebinding) is refused.
	resp := get("/api/page", "evil.example.com:"+portNum)
	assert.Equal(t, resp.StatusCode, http.StatusForbidden)
	resp.Body.Close()

	resp = get("/api/page", "127.0.0.1:"+portNum)
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	var page pageModel
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	assert.Equal(t, page.Revision, int64(1))
	assert.Equal(t, page.Cluster, "https://cluster:6443")
	assert.Equal(t, page.Syncs[0].Name, "one")

	// The page and its assets are embedded.
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp = get(path, "localhost:"+portNum)
		assert.Equal(t, resp.StatusCode, http.StatusOK, path)
		resp.Body.Close()
	}
	index, err := fs.ReadFile(uiAssets, "ui/index.html")
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(string(index), `id="tree"`))

	// The stream sends the page at once, nothing for a change that changes
	// nothing, and the next revision when something shown changes.
	resp = get("/api/stream", "127.0.0.1:"+portNum)
	defer resp.Body.Close()
	assert.Equal(t, resp.Header.Get("Content-Type"), "text/event-stream")
	events := make(chan pageModel, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var p pageModel
				if json.Unmarshal([]byte(data), &p) == nil {
					events <- p
				}
			}
		}
	}()
	next := func() pageModel {
		select {
		case p := <-events:
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no event on the stream")
		}
		return pageModel{}
	}
	assert.Equal(t, next().Revision, int64(1))
	changed <- struct{}{}
	pages.set(pageModel{Syncs: []syncView{{Name: "one", State: stateReady}, {Name: "two", State: stateFailed}}})
	changed <- struct{}{}
	p2 := next()
	assert.Equal(t, p2.Revision, int64(2))
	assert.Equal(t, len(p2.Syncs), 2)
	assert.Equal(t, p2.Syncs[1].State, stateFailed)
	select {
	case p := <-events:
		t.Fatalf("unexpected revision %d", p.Revision)
	case <-time.After(3 * uiDebounce):
	}

	resp2 := get("/api/diff?sync=one&branch=feature", "127.0.0.1:"+portNum)
	var res diffResult
	assert.NilError(t, json.NewDecoder(resp2.Body).Decode(&res))
	resp2.Body.Close()
	assert.DeepEqual(t, diffArgs, []string{"one", "feature", ""})
	assert.Equal(t, res.ExitCode, 1)
	assert.Equal(t, res.Output, "+kind: ConfigMap\n")
	resp2 = get("/api/diff", "127.0.0.1:"+portNum)
	assert.Equal(t, resp2.StatusCode, http.StatusBadRequest)
	resp2.Body.Close()
}

func TestUIFlags(t *testing.T) {
	a, _, _ := testApp(nil)
	err := runUI(context.Background(), a, []string{"--port", "70000"})
	assert.ErrorContains(t, err, "--port must be between 0 and 65535")
	err = runUI(context.Background(), a, []string{"extra"})
	assert.ErrorContains(t, err, "ui takes no arguments")
}

// The page's diff is the diff command line: its exit code and its one-line
// error, here for a point in time it refuses before reading anything.
func TestDiffRunnerIsTheCommand(t *testing.T) {
	a, out, errOut := testApp(nil)
	res := a.diffRunner()(context.Background(), "web", "feature", "not a time")
	assert.Equal(t, res.ExitCode, 2, "%+v", res)
	assert.Assert(t, strings.HasPrefix(res.Messages, "error: ") && strings.Contains(res.Messages, "--at"), "%+v", res)
	assert.Equal(t, res.Output, "")
	// Nothing reaches the process's own streams.
	assert.Equal(t, out.String()+errOut.String(), "")
}
