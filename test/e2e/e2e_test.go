package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// TestSyncChangePrune runs one operator through a sync, a change in
// Infrahub, pruning of an object and of a whole artifact, checks /metrics,
// the Events, and a clean exit on SIGTERM.
func TestSyncChangePrune(t *testing.T) {
	c := newClients(t)
	t.Cleanup(func() { forceClean(t, c) })
	fake := newFake(t, c)
	const ns = "e2e-web"
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Web_Manifest", TargetLabel: "shop", Content: webArtifact(ns, "shop", 1, true)})
	b := fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Web_Manifest", TargetLabel: "blog", Content: webArtifact(ns, "blog", 1, false)})

	op := startOperator(t, "e2e-single")
	op.waitReady(time.Minute)
	code, body, err := op.get("/healthz")
	assert.NilError(t, err)
	assert.Equal(t, code, http.StatusOK, body)

	start := time.Now()
	newSync(t, c, fake, "web", "Web_Manifest")
	eventually(t, time.Minute, "sync Ready", func() (bool, error) { return syncReady(c, "web") })
	deployment := func(name string) (*metav1.ObjectMeta, *int32, error) {
		d, err := c.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		return &d.ObjectMeta, d.Spec.Replicas, nil
	}
	eventually(t, time.Minute, "both Deployments", func() (bool, error) {
		_, _, e1 := deployment("shop")
		_, _, e2 := deployment("blog")
		return e1 == nil && e2 == nil, nil
	})
	t.Logf("synced 2 artifacts in %v", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, len(resourcesOf(t, c, "web")), 2)
	_, err = c.kube.CoreV1().Services(ns).Get(t.Context(), "shop", metav1.GetOptions{})
	assert.NilError(t, err)

	t.Run("change", func(t *testing.T) {
		fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Web_Manifest", TargetLabel: "shop", Content: webArtifact(ns, "shop", 3, true)})
		eventually(t, time.Minute, "3 replicas", func() (bool, error) {
			_, r, err := deployment("shop")
			return err == nil && r != nil && *r == 3, nil
		})
	})

	t.Run("prune an object", func(t *testing.T) {
		fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Web_Manifest", TargetLabel: "shop", Content: webArtifact(ns, "shop", 3, false)})
		eventually(t, time.Minute, "Service shop gone", func() (bool, error) {
			_, err := c.kube.CoreV1().Services(ns).Get(context.Background(), "shop", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("prune an artifact", func(t *testing.T) {
		assert.Assert(t, fake.DeleteArtifact("main", b.ID))
		eventually(t, time.Minute, "blog's objects gone", func() (bool, error) {
			_, _, err := deployment("blog")
			_, cmErr := c.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "blog-config", metav1.GetOptions{})
			return apierrors.IsNotFound(err) && apierrors.IsNotFound(cmErr) && len(resourcesOf(t, c, "web")) == 1, nil
		})
	})

	t.Run("metrics", func(t *testing.T) {
		fams := op.scrape()
		positive := func(name string, labels map[string]string) {
			t.Helper()
			assert.Assert(t, fams.Sum(name, labels) > 0, "%s%v is not positive", name, labels)
		}
		positive("vidra_reconcile_total", map[string]string{"controller": "infrahubsync"})
		positive("vidra_reconcile_total", map[string]string{"controller": "vidraresource"})
		positive("vidra_reconcile_duration_seconds_count", map[string]string{"controller": "vidraresource"})
		positive("vidra_infrahub_requests_total", map[string]string{"endpoint": "login", "code": "200"})
		positive("vidra_infrahub_request_duration_seconds_count", nil)
		positive("vidra_apply_operations_total", map[string]string{"cluster": "local", "result": "created"})
		positive("vidra_apply_operations_total", map[string]string{"result": "pruned"})
		positive("vidra_artifact_cache_misses_total", nil)
		positive("workqueue_adds_total", map[string]string{"name": "infrahubsync"})
		positive("workqueue_adds_total", map[string]string{"name": "vidraresource"})
		positive("workqueue_work_duration_seconds_count", map[string]string{"name": "vidraresource"})
		positive("go_goroutines", nil)
		positive("process_resident_memory_bytes", nil)
		for _, name := range []string{"workqueue_depth", "workqueue_retries_total", "workqueue_unfinished_work_seconds",
			"workqueue_longest_running_processor_seconds", "workqueue_queue_duration_seconds", "vidra_artifact_cache_bytes"} {
			assert.Assert(t, fams[name] != nil, "%s missing", name)
		}
		leader, ok := fams.Value("vidra_leader", nil)
		assert.Assert(t, ok && leader == 1)
		// What is managed now: one Deployment and one ConfigMap (plus the
		// Namespace) for the one remaining artifact.
		eventually(t, 30*time.Second, "vidra_managed_objects settles", func() (bool, error) {
			f := op.scrape()
			d, _ := f.Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "Deployment"})
			cm, _ := f.Value("vidra_managed_objects", map[string]string{"cluster": "local", "kind": "ConfigMap"})
			return d == 1 && cm == 1, nil
		})
	})

	t.Run("events", func(t *testing.T) {
		// InfrahubSyncs and VidraResources are cluster-scoped: their
		// Events are in "default".
		events, err := c.kube.EventsV1().Events("default").List(t.Context(), metav1.ListOptions{})
		assert.NilError(t, err)
		kinds := map[string]bool{}
		for _, e := range events.Items {
			if e.ReportingController == "vidra-operator" {
				kinds[e.Regarding.Kind+"/"+e.Reason] = true
			}
		}
		assert.Assert(t, kinds["InfrahubSync/Synced"], "events: %v", kinds)
		assert.Assert(t, kinds["VidraResource/Applied"], "events: %v", kinds)
	})

	t.Run("SIGTERM", func(t *testing.T) {
		deleteSyncs(t, c)
		op.signal(syscall.SIGTERM)
		took, err := op.waitExit(15 * time.Second)
		assert.Equal(t, exitCode(err), 0, "exit: %v", err)
		t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
		assert.Assert(t, took < 5*time.Second, "took %v", took)
		last := op.logLines()
		assert.Assert(t, len(last) > 0)
		assert.Equal(t, last[len(last)-1]["msg"], "Stopped cleanly")
		assert.Assert(t, !strings.Contains(string(op.log.bytes()), fakePassword), "the Infrahub password appears in the log")
	})
}

// TestLeaderElectionFailover runs two replicas with short leases: the
// standby is Ready but idle; kill -9 of the leader hands over within the
// lease time; the new leader converges without losing or duplicating
// anything; SIGTERM releases the lease at once.
func TestLeaderElectionFailover(t *testing.T) {
	c := newClients(t)
	t.Cleanup(func() { forceClean(t, c) })
	fake := newFake(t, c)
	const lease = 4 * time.Second
	electArgs := []string{"-leader-elect", "-leader-election-id=" + leaseName,
		"-leader-election-lease-duration=" + lease.String(), "-leader-election-renew-deadline=3s", "-leader-election-retry-period=500ms"}
	holder := func() string {
		l, err := c.kube.CoordinationV1().Leases(operatorNamespace).Get(context.Background(), leaseName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}

	a := startOperator(t, "e2e-a", electArgs...)
	eventually(t, time.Minute, "e2e-a leads", func() (bool, error) { return strings.HasPrefix(holder(), "e2e-a_"), nil })
	a.waitReady(time.Minute)
	b := startOperator(t, "e2e-b", electArgs...)
	b.waitReady(time.Minute) // a standby is Ready
	isLeader := func(p *operatorProcess) float64 {
		v, _ := p.scrape().Value("vidra_leader", nil)
		return v
	}
	assert.Equal(t, isLeader(a), 1.0)
	assert.Equal(t, isLeader(b), 0.0)
	_, _, err := b.get("/readyz")
	assert.NilError(t, err)

	const ns = "e2e-ha"
	for _, name := range []string{"one", "two", "three"} {
		fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "HA_Manifest", TargetLabel: name, Content: webArtifact(ns, name, 1, true)})
	}
	newSync(t, c, fake, "ha", "HA_Manifest")
	eventually(t, time.Minute, "sync Ready", func() (bool, error) { return syncReady(c, "ha") })
	eventually(t, time.Minute, "three Deployments", func() (bool, error) {
		list, err := c.kube.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(list.Items) == 3, nil
	})
	// The standby did nothing.
	assert.Equal(t, b.scrape().Sum("vidra_reconcile_total", nil), 0.0)

	snapshot := func() (map[string]types.UID, map[string]types.UID) {
		vrs := map[string]types.UID{}
		for _, vr := range resourcesOf(t, c, "ha") {
			vrs[vr.Name] = vr.UID
		}
		objs := map[string]types.UID{}
		deps, err := c.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		assert.NilError(t, err)
		for _, d := range deps.Items {
			objs["Deployment/"+d.Name] = d.UID
		}
		svcs, err := c.kube.CoreV1().Services(ns).List(t.Context(), metav1.ListOptions{})
		assert.NilError(t, err)
		for _, s := range svcs.Items {
			objs["Service/"+s.Name] = s.UID
		}
		return vrs, objs
	}
	vrsBefore, objsBefore := snapshot()
	assert.Equal(t, len(vrsBefore), 3)

	// kill -9: no release, the standby waits for the lease to expire.
	killed := time.Now()
	assert.NilError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	a.kill()
	eventually(t, 30*time.Second, "e2e-b takes over", func() (bool, error) { return strings.HasPrefix(holder(), "e2e-b_"), nil })
	takeover := time.Since(killed)
	t.Logf("e2e-b took over %v after kill -9 of the leader (lease %v)", takeover.Round(time.Millisecond), lease)
	assert.Assert(t, takeover < lease+3*time.Second, "takeover took %v", takeover)
	b.waitReady(30 * time.Second)

	// The new leader converges: a change and a new artifact arrive.
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "HA_Manifest", TargetLabel: "two", Content: webArtifact(ns, "two", 3, true)})
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "HA_Manifest", TargetLabel: "four", Content: webArtifact(ns, "four", 1, true)})
	eventually(t, time.Minute, "the new leader applies the change and the new artifact", func() (bool, error) {
		d, err := c.kube.AppsV1().Deployments(ns).Get(context.Background(), "two", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 3 {
			return false, nil
		}
		_, err = c.kube.AppsV1().Deployments(ns).Get(context.Background(), "four", metav1.GetOptions{})
		return err == nil, nil
	})
	eventually(t, time.Minute, "sync Ready with 4 artifacts", func() (bool, error) {
		ok, err := syncReady(c, "ha")
		return ok && len(resourcesOf(t, c, "ha")) == 4, err
	})
	vrsAfter, objsAfter := snapshot()
	// Nothing lost or duplicated: every earlier VidraResource and object is
	// still the same one (same UID), plus the new artifact's.
	for name, uid := range vrsBefore {
		assert.Equal(t, vrsAfter[name], uid, "VidraResource %s replaced or lost", name)
	}
	for name, uid := range objsBefore {
		assert.Equal(t, objsAfter[name], uid, "%s replaced or lost", name)
	}
	assert.Equal(t, len(vrsAfter), 4)
	assert.Equal(t, len(objsAfter), 8)
	assert.Equal(t, isLeader(b), 1.0)

	// SIGTERM: in-flight work finishes, the lease is released at once.
	deleteSyncs(t, c)
	b.signal(syscall.SIGTERM)
	took, err := b.waitExit(15 * time.Second)
	assert.Equal(t, exitCode(err), 0, "exit: %v", err)
	t.Logf("leader exited %v after SIGTERM", took.Round(time.Millisecond))
	assert.Assert(t, took < 5*time.Second, "took %v", took)
	assert.Equal(t, holder(), "", "the lease was not released")
}

// TestStandbySIGTERM: a standby exits at once on SIGTERM and leaves the
// leader's lease alone.
func TestStandbySIGTERM(t *testing.T) {
	c := newClients(t)
	t.Cleanup(func() { forceClean(t, c) })
	electArgs := []string{"-leader-elect", "-leader-election-id=" + leaseName,
		"-leader-election-lease-duration=4s", "-leader-election-renew-deadline=3s", "-leader-election-retry-period=500ms"}
	leader := startOperator(t, "e2e-leader", electArgs...)
	leader.waitReady(time.Minute)
	eventually(t, 30*time.Second, "a leader", func() (bool, error) {
		v, _ := leader.scrape().Value("vidra_leader", nil)
		return v == 1, nil
	})
	standby := startOperator(t, "e2e-standby", electArgs...)
	standby.waitReady(time.Minute)
	standby.signal(syscall.SIGTERM)
	took, err := standby.waitExit(10 * time.Second)
	assert.Equal(t, exitCode(err), 0, "exit: %v", err)
	assert.Assert(t, took < 3*time.Second, "took %v", took)
	v, _ := leader.scrape().Value("vidra_leader", nil)
	assert.Equal(t, v, 1.0)

	leader.signal(syscall.SIGTERM)
	_, err = leader.waitExit(10 * time.Second)
	assert.Equal(t, exitCode(err), 0, "exit: %v", err)
}

// TestBadConfigMapValueIsReported: the earlier operator crashed on its
// ConfigMap; Vidra reports bad values, keeps the defaults and runs.
func TestBadConfigMapValueIsReported(t *testing.T) {
	c := newClients(t)
	needRBAC(t)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "vidra-config", Namespace: operatorNamespace, Labels: map[string]string{"app": "vidra"}},
		Data: map[string]string{
			"requeueSyncAfter":     "banana",
			"requeueResourceAfter": "5m", // the earlier CLI's spelling
			"eventBasedReconcile":  "maybe",
			"queryName":            "Artifact IDs",
		},
	}
	_, err := c.kube.CoreV1().ConfigMaps(operatorNamespace).Create(t.Context(), cm, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = c.kube.CoreV1().ConfigMaps(operatorNamespace).Delete(context.Background(), cm.Name, metav1.DeleteOptions{})
	})

	op := startOperator(t, "e2e-config")
	op.waitReady(time.Minute) // not fatal

	var rejected []string
	var settings map[string]any
	alias := false
	for _, l := range op.logLines() {
		switch {
		case l["level"] == "error" && strings.Contains(fmt.Sprint(l["msg"]), "Invalid value in the operator ConfigMap"):
			rejected = append(rejected, fmt.Sprint(l["key"]))
			assert.Equal(t, l["configMap"], operatorNamespace+"/vidra-config")
		case strings.Contains(fmt.Sprint(l["msg"]), "alias"):
			alias = true
		case l["msg"] == "Settings":
			settings = l
		}
	}
	slices.Sort(rejected)
	assert.DeepEqual(t, rejected, []string{"eventBasedReconcile", "queryName", "requeueSyncAfter"})
	assert.Assert(t, alias, "no log line about the misspelt key")
	assert.Assert(t, settings != nil)
	assert.Equal(t, settings["syncInterval"], "1m0s")
	assert.Equal(t, settings["resourceInterval"], "5m0s")
	assert.Equal(t, settings["reconcileOnEvents"], false)

	// And a Warning Event on the ConfigMap, for kubectl describe.
	eventually(t, 30*time.Second, "InvalidConfig event", func() (bool, error) {
		events, err := c.kube.EventsV1().Events(operatorNamespace).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Regarding.Kind == "ConfigMap" && e.Regarding.Name == "vidra-config" && e.Reason == "InvalidConfig" {
				return strings.Contains(e.Note, "requeueSyncAfter") && e.Type == corev1.EventTypeWarning, nil
			}
		}
		return false, nil
	})

	op.signal(syscall.SIGTERM)
	_, err = op.waitExit(10 * time.Second)
	assert.Equal(t, exitCode(err), 0, "exit: %v", err)
}
