// Package webhook proves that an Infrahub webhook delivery brings a
// regenerated artifact into the cluster at once, with polling set to an hour,
// and that forged, stale or replayed deliveries change nothing.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/webhook"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/controlplane"
	"github.com/vidra-operator/vidra/test/opertest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMain(m, controlplane.Config{
		Name:     "webhook",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &cp))
}

var sharedKey = []byte("infrahub-webhook-key")

type env struct {
	kube     kubernetes.Interface
	vidra    versioned.Interface
	fake     *infrahubtest.Server
	receiver *webhook.Receiver
	url      string
	ns       string
}

// setup runs the operator with an hour-long polling interval, the receiver
// on a local HTTP server, and the fake Infrahub delivering to it.
func setup(t testing.TB, name string, fakeOpts ...infrahubtest.Option) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := cp.RESTConfig()
	e := &env{kube: kubernetes.NewForConfigOrDie(cfg), vidra: versioned.NewForConfigOrDie(cfg), ns: "vidra-" + name}
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = e.kube.CoreV1().Secrets(e.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"username": "admin", "password": "infrahub"}}, metav1.CreateOptions{})
	assert.NilError(t, err)

	op := opertest.Start(t, opertest.Config(cfg, e.ns), false)

	e.receiver = webhook.NewReceiver(webhook.Options{
		Key:      func() ([]byte, error) { return sharedKey, nil },
		Syncs:    op.SyncLister(),
		Trigger:  op.Syncs,
		BranchOf: op.Syncs.BranchOf,
	})
	srv := httptest.NewServer(e.receiver)
	t.Cleanup(srv.Close)
	e.url = srv.URL

	e.fake = infrahubtest.NewServer(fakeOpts...)
	t.Cleanup(e.fake.Close)
	e.fake.AddUser("admin", "infrahub")
	e.fake.SetWebhook(srv.URL, sharedKey)
	return e
}

func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func configMap(ns, value string) []byte {
	return []byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hooked\n  namespace: %s\ndata:\n  value: %q\n", ns, value))
}

func (e *env) value(t testing.TB, ns string) string {
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "hooked", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["value"]
}

// start creates a sync for one artifact and waits for its first value.
func (e *env) start(t testing.TB, sync, ns string) infrahubtest.ArtifactInfo {
	ctx := context.Background()
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	a := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Hook_" + sync, TargetLabel: "t", Content: configMap(ns, "v0")})
	_, err = e.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: sync},
		Spec: v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{InfrahubAPIURL: e.fake.URL, ArtifactName: "Hook_" + sync,
			CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: "creds"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "first value", func() bool { return e.value(t, ns) == "v0" })
	until(t, "sync lists the artifact", func() bool {
		s, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, sync, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && len(s.Status.Artifacts) == 1
	})
	return a
}

func TestWebhookBringsChangesAtOnce(t *testing.T) {
	e := setup(t, "hooks")
	a := e.start(t, "hooked", "hooked-ns")

	// A regeneration delivers a signed webhook; the change arrives well
	// before the hour-long interval.
	start := time.Now()
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: a.ID, Name: a.Name, TargetLabel: "t", Content: configMap("hooked-ns", "v1")})
	until(t, "value v1 through the webhook", func() bool { return e.value(t, "hooked-ns") == "v1" })
	t.Logf("regeneration to object updated: %v", time.Since(start))
	stats, triggered := e.receiver.Stats()
	assert.Equal(t, stats[webhook.ResultAccepted] >= 1, true, "%v", stats)
	assert.Equal(t, triggered >= 1, true)

	// Forged, stale and replayed deliveries change nothing: the artifact is
	// regenerated in Infrahub without a webhook, and only bogus deliveries
	// arrive; the cluster keeps v1.
	e.fake.SetWebhooks()
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: a.ID, Name: a.Name, TargetLabel: "t", Content: configMap("hooked-ns", "v2")})
	body := []byte(fmt.Sprintf(`{"data":{"node_id":%q,"checksum":"x"},"id":"e9","branch":"main","occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.artifact.updated"}`, a.ID))
	now := time.Now()
	post := func(id string, ts time.Time, key []byte) int {
		req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
		assert.NilError(t, err)
		req.Header.Set(infrahub.HeaderWebhookID, id)
		req.Header.Set(infrahub.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(key, id, ts, body))
		resp, err := http.DefaultClient.Do(req)
		assert.NilError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, post("forged", now, []byte("not the key")), http.StatusUnauthorized)
	assert.Equal(t, post("stale", now.Add(-time.Hour), sharedKey), http.StatusUnauthorized)
	// A replay of a delivery already accepted: the first delivery of this
	// test was accepted under its own id; replaying an accepted id is a no-op.
	deliveries := e.fake.Deliveries()
	assert.Assert(t, len(deliveries) > 0)
	_, before := e.receiver.Stats()
	ok := post("replay-1", now, sharedKey)
	assert.Equal(t, ok, http.StatusNoContent, "a fresh, valid delivery is accepted")
	_, afterFirst := e.receiver.Stats()
	assert.Equal(t, post("replay-1", now, sharedKey), http.StatusOK, "a replay is acknowledged and ignored")
	_, afterReplay := e.receiver.Stats()
	assert.Equal(t, afterReplay, afterFirst, "the replay triggered a sync")
	assert.Assert(t, afterFirst > before)
	// The one valid delivery did trigger: v2 arrives; nothing else did.
	until(t, "value v2 from the valid delivery", func() bool { return e.value(t, "hooked-ns") == "v2" })
	stats, _ = e.receiver.Stats()
	assert.Equal(t, stats[webhook.ResultBadSignature], int64(1))
	assert.Equal(t, stats[webhook.ResultStale], int64(1))
	assert.Equal(t, stats[webhook.ResultDuplicate], int64(1))
}

// Forged deliveries alone never bring a change in.
func TestForgedDeliveriesChangeNothing(t *testing.T) {
	e := setup(t, "forged")
	a := e.start(t, "forgery", "forgery-ns")
	assert.NilError(t, e.fake.FlushWebhooks(context.Background()))
	_, before := e.receiver.Stats()
	e.fake.SetWebhook(e.url, []byte("attacker key"))
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: a.ID, Name: a.Name, TargetLabel: "t", Content: configMap("forgery-ns", "evil")})
	assert.NilError(t, e.fake.FlushWebhooks(context.Background()))
	until(t, "the forged delivery to be refused", func() bool {
		stats, _ := e.receiver.Stats()
		return stats[webhook.ResultBadSignature] >= 1
	})
	_, triggered := e.receiver.Stats()
	assert.Equal(t, triggered, before, "a forged delivery triggered a sync")
	assert.Equal(t, e.value(t, "forgery-ns"), "v0")
}

// TestDeliveriesOfARealInfrahub: Infrahub signs its ASCII-escaped
// rendering of a payload holding non-ASCII text, its default branch is not
// main, and removing an artifact is delivered as a node deletion event. The
// regeneration arrives at once and the deleted artifact's objects are
// pruned at once, with polling set to an hour.
func TestDeliveriesOfARealInfrahub(t *testing.T) {
	e := setup(t, "real", infrahubtest.WithDefaultBranch("trunk"))
	ctx := context.Background()
	for _, ns := range []string{"real-a", "real-b"} {
		_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	// The definition's name travels in artifact events: non-ASCII here.
	const definition = "Définition «web»"
	a := e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Real_Manifest", DefinitionName: definition, TargetLabel: "café «a»", Content: configMap("real-a", "v0")})
	b := e.fake.SetArtifact("", infrahubtest.ArtifactSpec{Name: "Real_Manifest", DefinitionName: definition, TargetLabel: "b", Content: configMap("real-b", "v0")})
	_, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: "real"},
		Spec: v1alpha1.InfrahubSyncSpec{Source: v1alpha1.InfrahubSource{InfrahubAPIURL: e.fake.URL, ArtifactName: "Real_Manifest",
			CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: "creds"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "first values", func() bool {
		ok := e.value(t, "real-a") == "v0" && e.value(t, "real-b") == "v0"
		if !ok {
			if s, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, "real", metav1.GetOptions{}); err == nil {
				if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); c != nil {
					t.Logf("sync: %s: %s", c.Reason, c.Message)
				}
			}
		}
		return ok
	})
	until(t, "sync Ready with both artifacts", func() bool {
		s, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, "real", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && len(s.Status.Artifacts) == 2
	})
	assert.NilError(t, e.fake.FlushWebhooks(ctx))

	e.fake.SetArtifact("", infrahubtest.ArtifactSpec{ID: a.ID, Name: a.Name, DefinitionName: definition, TargetLabel: a.TargetLabel, Content: configMap("real-a", "v1")})
	until(t, "v1 through a delivery signed over the ASCII-escaped payload", func() bool { return e.value(t, "real-a") == "v1" })
	var signedDiffers bool
	for _, d := range e.fake.Deliveries() {
		signedDiffers = signedDiffers || !bytes.Equal(d.Signed, d.Body)
	}
	assert.Assert(t, signedDiffers, "the deliveries did not exercise the re-rendering")
	stats, _ := e.receiver.Stats()
	assert.Equal(t, stats[webhook.ResultBadSignature], int64(0), "%v", stats)

	assert.Assert(t, e.fake.DeleteArtifact("", b.ID))
	until(t, "the deleted artifact's ConfigMap pruned", func() bool {
		_, err := e.kube.CoreV1().ConfigMaps("real-b").Get(ctx, "hooked", metav1.GetOptions{})
		return err != nil
	})
	assert.Equal(t, e.value(t, "real-a"), "v1")
	vrs, err := e.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	for _, vr := range vrs.Items {
		if vr.Spec.Source != nil && vr.Spec.Source.Sync == "real" {
			assert.Equal(t, vr.Spec.Source.Branch, "trunk", "the default branch by Infrahub's name")
		}
	}
}

// BenchmarkWebhookToObjectLatency measures regeneration in Infrahub to the
// object updated in the cluster, through the webhook.
var benchRuns int

func BenchmarkWebhookToObjectLatency(b *testing.B) {
	benchRuns++ // the framework calls a benchmark more than once
	suffix := strconv.Itoa(benchRuns)
	e := setup(b, "bench-"+suffix)
	ns := "latency-ns-" + suffix
	a := e.start(b, "latency-"+suffix, ns)
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		want := fmt.Sprintf("b%d", i)
		start := time.Now()
		e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{ID: a.ID, Name: a.Name, TargetLabel: "t", Content: configMap(ns, want)})
		until(b, "value "+want, func() bool { return e.value(b, ns) == want })
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "ms-p95")
}
