package main

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

var treeNow = time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return treeNow.Add(-d) }

func agoPtr(d time.Duration) *time.Time {
	t := ago(d)
	return &t
}

func sampleReport() *statusReport {
	return &statusReport{
		Syncs: []syncReport{{
			Name:                   "webservers",
			State:                  stateReady,
			Reason:                 "Synced",
			Message:                "Synced 2 artifacts",
			InfrahubAPIURL:         "https://infrahub.example.com",
			Branch:                 "main",
			ArtifactName:           "Webserver_Manifest",
			Destination:            "local",
			DestinationNamespace:   "default",
			LastSyncTime:           agoPtr(2 * time.Minute),
			LastHandledReconcileAt: "2026-08-20T11:58:00.123456789Z",
			CreationTimestamp:      ago(3 * time.Hour),
			Artifacts: []artifactReport{
				{
					ID: "18a0c1", Name: "Webserver_Manifest", Target: "web-01", Status: "Ready", Checksum: "5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c",
					Resource: &resourceReport{
						Name: "webservers-3f2a", State: stateReady, Destination: "local",
						CreationTimestamp: ago(3 * time.Hour), ObjectCount: 2,
						Objects: []objectReport{
							{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", State: stateInProgress, Message: "1/2 replicas ready", CreationTimestamp: agoPtr(3 * time.Hour)},
							{APIVersion: "v1", Kind: "Service", Namespace: "shop", Name: "web", State: stateReady, CreationTimestamp: agoPtr(3 * time.Hour)},
						},
					},
				},
				{ID: "18a0c2", Name: "Webserver_Manifest", Target: "web-02", Status: "Pending"},
			},
			Unlisted: []resourceReport{{
				Name: "webservers-9c1d", State: stateFailed, Message: "1 object failed", LastError: "apply ConfigMap shop/old: forbidden",
				Destination: "https://edge:6443", CreationTimestamp: ago(26 * time.Hour), ObjectCount: 1,
				Objects: []objectReport{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "old", Server: "https://edge:6443", State: stateNotChecked, Message: "on https://edge:6443; not read by this command"}},
			}},
		}},
		Standalone: []resourceReport{{
			Name: "hand-made", State: stateSuspended, Message: "Suspended: objects are neither applied nor pruned", Destination: "local",
			CreationTimestamp: ago(10 * time.Minute), ObjectCount: 0, Objects: []objectReport{},
		}},
	}
}

func TestStatusTreeGolden(t *testing.T) {
	var b strings.Builder
	writeTree(&b, statusTree(sampleReport(), treeNow, painter{}))
	assert.Equal(t, b.String(), `InfrahubSync webservers  Ready  age 3h
│ Synced 2 artifacts
│ source: https://infrahub.example.com branch main artifact Webserver_Manifest
│ destination: local cluster, namespace default
│ last sync: 2m ago, last reconcile request handled: 2026-08-20T11:58:00.123456789Z
├── Artifact 18a0c1 (web-01)  Ready  checksum 5f3a2b1c0d9e
│   └── VidraResource webservers-3f2a  Ready  2 objects  age 3h
│       ├── Deployment.apps shop/web  InProgress  1/2 replicas ready  age 3h
│       └── Service shop/web  Ready  age 3h
├── Artifact 18a0c2 (web-02)  Pending
│     no VidraResource yet
└── VidraResource webservers-9c1d  Failed  1 object  age 26h  (artifact no longer listed)
    │ destination: https://edge:6443
    │ 1 object failed
    │ last error: apply ConfigMap shop/old: forbidden
    └── ConfigMap shop/old  NotChecked  on https://edge:6443; not read by this command

VidraResources without a sync
└── VidraResource hand-made  Suspended  0 objects  age 10m
      Suspended: objects are neither applied nor pruned
`)
}

func TestStatusTreeColor(t *testing.T) {
	var b strings.Builder
	writeTree(&b, statusTree(sampleReport(), treeNow, painter{on: true}))
	out := b.String()
	assert.Assert(t, strings.Contains(out, "\x1b[32mReady\x1b[0m"), out)
	assert.Assert(t, strings.Contains(out, "\x1b[31mFailed\x1b[0m"), out)
	assert.Assert(t, strings.Contains(out, "\x1b[33mInProgress\x1b[0m"), out)
	assert.Assert(t, strings.Contains(out, "\x1b[31mlast error: apply ConfigMap shop/old: forbidden\x1b[0m"), out)
	// Without colour there is no escape at all.
	b.Reset()
	writeTree(&b, statusTree(sampleReport(), treeNow, painter{}))
	assert.Assert(t, !strings.Contains(b.String(), "\x1b["))
}

func TestStatusTreeSyncDetails(t *testing.T) {
	r := &statusReport{Syncs: []syncReport{{
		Name: "s", State: stateStalled, Message: "Secret vidra-system/x not found", Branch: "feature", TargetDate: "2h",
		InfrahubAPIURL: "http://i:8000", ArtifactName: "A", Destination: "https://remote:6443", DestinationNamespace: "apps",
		LastError: "Secret vidra-system/x not found", ReconcileRequestedAt: "T2", LastHandledReconcileAt: "T1",
		CreationTimestamp: ago(90 * time.Second), Artifacts: []artifactReport{},
	}}}
	var b strings.Builder
	writeTree(&b, statusTree(r, treeNow, painter{}))
	assert.Equal(t, b.String(), `InfrahubSync s  Stalled  age 90s
  Secret vidra-system/x not found
  source: http://i:8000 branch feature at 2h artifact A
  destination: https://remote:6443, namespace apps
  last sync: never, last reconcile request handled: T1, reconcile requested: T2 (pending)
  last error: Secret vidra-system/x not found
  no artifacts listed
`)
}

func TestConditionState(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, gen int64, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, ObservedGeneration: gen, Reason: reason, Message: msg}
	}
	for _, tc := range []struct {
		name      string
		conds     []metav1.Condition
		gen       int64
		suspended bool
		want      string
	}{
		{"none", nil, 1, false, stateUnknown},
		{"ready", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 2, "Synced", "ok")}, 2, false, stateReady},
		{"old generation", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1, "Synced", "ok")}, 2, false, stateReconciling},
		{"stalled", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1, "X", "bad"), cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, 1, "X", "bad")}, 1, false, stateStalled},
		{"reconciling", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1, "X", "wait"), cond(v1alpha1.ConditionReconciling, metav1.ConditionTrue, 1, "X", "wait")}, 1, false, stateReconciling},
		{"failed", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1, "X", "down")}, 1, false, stateFailed},
		{"suspended", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1, "Suspended", "Suspended")}, 1, true, stateSuspended},
		// Ready kept at its last value, the pause in its own condition.
		{"suspended keeps ready", []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1, "Synced", "ok"), cond(v1alpha1.ConditionSuspended, metav1.ConditionTrue, 2, "Suspended", "Suspended: paused")}, 2, true, stateSuspended},
	} {
		got, _, _ := conditionState(tc.conds, tc.gen, tc.suspended)
		assert.Equal(t, got, tc.want, tc.name)
	}
}

// TestStatusOutputGolden: the -o wide tree and -o name listing of the
// sample report (go test -update rewrites testdata/).
func TestStatusOutputGolden(t *testing.T) {
	var b strings.Builder
	writeTree(&b, statusTree(sampleReport(), treeNow, painter{wide: true}))
	golden.Assert(t, b.String(), "status-wide.txt")
	golden.Assert(t, strings.Join(reportNames(sampleReport()), "\n")+"\n", "status-name.txt")
}

// TestRootHelpGolden: the help lists the commands, kubectl's connection
// flags and the exit codes.
func TestRootHelpGolden(t *testing.T) {
	a, out, _ := testApp(nil)
	assert.Equal(t, run(t.Context(), []string{"help"}, a), exitOK)
	golden.Assert(t, out.String(), "help.txt")
}

// A suspended object handled the request but will not become Ready for its
// generation: reconcile --wait fails at once instead of timing out.
func TestHandledSuspended(t *testing.T) {
	conds := []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1, Reason: "Synced"},
		{Type: v1alpha1.ConditionSuspended, Status: metav1.ConditionTrue, ObservedGeneration: 2, Reason: "Suspended"},
	}
	done, _, err := handled("InfrahubSync s", "T1", "T1", conds, 2)
	assert.Assert(t, !done)
	assert.ErrorContains(t, err, "InfrahubSync s is suspended")
	done, _, err = handled("InfrahubSync s", "T0", "T1", conds, 2)
	assert.Assert(t, !done && err == nil, "not handled yet: keep waiting")
}
