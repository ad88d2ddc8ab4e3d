package integration

import (
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// otherInfrahub starts a second fake Infrahub with the test's credentials;
// its requests under way are cut at the end, so a hanging one cannot hold
// the test.
func (e *env) otherInfrahub() *infrahubtest.Server {
	e.t.Helper()
	s := infrahubtest.NewServer()
	s.AddUser(fakeUser, fakePassword)
	e.t.Cleanup(func() {
		s.ClearFaults()
		s.HTTP.CloseClientConnections()
		s.Close()
	})
	return s
}

func readsFrom(url string) func(*v1alpha1.InfrahubSync) {
	return func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = url }
}

// Six syncs read an Infrahub that never answers (each request would wait
// longer than this test), more than the operator has sync workers: a new
// sync on a healthy Infrahub still lists, writes and converges. Before the
// listings ran off the worker pool, the hanging requests held every worker
// and the healthy sync waited for the request timeout.
func TestHangingInfrahubDelaysNoOtherSync(t *testing.T) {
	e := newEnv(t, func(c *operator.Config) {
		c.SyncWorkers = 2
		c.InfrahubTimeout = 10 * time.Minute
	})
	hanging := e.otherInfrahub()
	hanging.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Hang_Manifest", TargetLabel: "h", Content: webserver("h", "iso-hang", 1)})
	hanging.InjectFault(infrahubtest.EndpointAny, infrahubtest.Fault{Latency: 10 * time.Minute})
	for i := 0; i < 6; i++ {
		e.newSync(fmt.Sprintf("hang-%d", i), "Hang_Manifest", readsFrom(hanging.URL))
	}
	// Every hanging sync has its first request waiting in the fake (the
	// login), up to the per-endpoint bound.
	e.eventually("the hanging Infrahub to hold requests", func() (bool, error) {
		return hanging.Count(infrahubtest.EndpointLogin) >= 1, nil
	})

	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Healthy_Manifest", TargetLabel: "ok", Content: webserver("ok", "iso-healthy", 1)})
	e.newSync("healthy", "Healthy_Manifest")
	e.waitReady("healthy")
	e.waitExists(gvrDeployment, "iso-healthy", "ok")

	// The hanging syncs report nothing yet: no failure was invented.
	for i := 0; i < 6; i++ {
		s := e.getSync(fmt.Sprintf("hang-%d", i))
		assert.Assert(t, meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady) == nil ||
			!meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady))
	}
}

// A sync whose Infrahub was down is listed again soon after Infrahub
// answers, not after its error backoff (a minute here): within its
// interval, and at once when another sync reads that Infrahub
// successfully.
func TestRecoveredInfrahubIsListedWithoutWaitingOutTheBackoff(t *testing.T) {
	e := newEnv(t, func(c *operator.Config) {
		c.SyncRetryBase = time.Minute
		c.SyncRetryMax = time.Hour
	})
	down := e.otherInfrahub()
	down.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Flaky_Manifest", TargetLabel: "f", Content: webserver("f", "iso-flaky", 1)})
	down.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Capped_Manifest", TargetLabel: "c", Content: webserver("c", "iso-flaky", 1)})
	down.InjectFault(infrahubtest.EndpointAny, infrahubtest.Fault{Status: 503})

	// "flaky" polls hourly: only the recovery of its Infrahub can bring it
	// back before its backoff ends. "capped" polls every 15s: its backoff
	// stops there.
	e.newSync("flaky", "Flaky_Manifest", readsFrom(down.URL), func(s *v1alpha1.InfrahubSync) {
		s.Spec.Interval = &metav1.Duration{Duration: time.Hour}
	})
	e.newSync("capped", "Capped_Manifest", readsFrom(down.URL), func(s *v1alpha1.InfrahubSync) {
		s.Spec.Interval = &metav1.Duration{Duration: 15 * time.Second}
	})
	e.waitSyncReason("flaky", infrahubsync.ReasonInfrahubDown)
	e.waitSyncReason("capped", infrahubsync.ReasonInfrahubDown)

	// Infrahub is back; both syncs are in a backoff of a minute.
	down.ClearFaults()
	recovered := time.Now()
	e.waitReady("capped")
	waited := time.Since(recovered)
	assert.Assert(t, waited < 45*time.Second, "capped waited %s: its backoff was not capped at its interval", waited)
	// Its success on that Infrahub brought "flaky" back at once.
	e.waitReady("flaky")
	waited = time.Since(recovered)
	assert.Assert(t, waited < 45*time.Second, "flaky waited %s: it waited out its backoff", waited)
	e.waitExists(gvrDeployment, "iso-flaky", "f")
}
