package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// slowLatency is how long the slow Infrahub takes to answer each request.
const slowLatency = 10 * time.Second

// BenchmarkIsolation measures how long a new sync on a healthy Infrahub
// waits for its first listing while `slow` syncs read an Infrahub that
// takes 10s per request, with the operator's default sync workers. Each
// iteration first measures the same delay with no slow sync (the floor)
// on the same operator, and reports both and their difference:
//
//	first-listing-s      delay with the slow syncs
//	floor-first-listing-s delay of a sync created before them
//	extra-delay-s        the difference: what the slow Infrahub costs
//	synced-s             until the healthy sync wrote its VidraResource
func BenchmarkIsolation(b *testing.B) {
	for _, slow := range []int{4, 16} {
		b.Run(fmt.Sprintf("slow=%d", slow), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runIsolation(b, slow, i)
			}
		})
	}
}

func runIsolation(b *testing.B, slow, iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := newClients(b)
	ns := fmt.Sprintf("iso-%d-%d", slow, iter)
	opNS := "vidra-" + ns
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	healthy := seed(ctx, b, c, opNS, ns, "Healthy", 0)
	defer healthy.Close()
	// The floor's sync reads another Infrahub, so the healthy sync's client
	// starts as cold as the floor's did.
	floorInfrahub := infrahubtest.NewServer()
	floorInfrahub.AddUser("admin", "infrahub")
	defer floorInfrahub.Close()
	slowInfrahub := infrahubtest.NewServer()
	slowInfrahub.AddUser("admin", "infrahub")
	slowInfrahub.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Slow", TargetLabel: "slow", Content: []byte(artifact(ns, "slow"))})
	slowInfrahub.InjectFault(infrahubtest.EndpointAny, infrahubtest.Fault{Latency: slowLatency})
	defer func() {
		slowInfrahub.ClearFaults()
		slowInfrahub.HTTP.CloseClientConnections()
		slowInfrahub.Close()
	}()

	op, err := operator.New(operator.Config{
		RESTConfig: cp.RESTConfig(), Namespace: opNS,
		SyncWorkers: operator.DefaultSyncWorkers, ResourceWorkers: parallelism,
		SyncInterval: time.Hour, ResourceInterval: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = op.Run(runCtx) }()
	defer func() { stop(); <-done }()
	poll(ctx, b, "operator synced", time.Minute, op.HasSynced)

	// firstListing creates a sync of one artifact on the healthy Infrahub
	// and returns how long until Infrahub saw its listing, and until the
	// sync reported the artifact written.
	firstListing := func(healthy *infrahubtest.Server, name, artifactName string) (time.Duration, time.Duration) {
		healthy.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactName, TargetLabel: name, Content: []byte(artifact(ns, name))})
		before := healthy.Count(infrahubtest.EndpointGraphQL)
		start := time.Now()
		createSync(ctx, b, c, name, healthy.URL, artifactName)
		// A listing is a GraphQL request; a new client first asks for the
		// branches, also GraphQL, so the listing is the second at most.
		pollFast(ctx, b, func() bool { return healthy.Count(infrahubtest.EndpointGraphQL) >= before+2 })
		listed := time.Since(start)
		pollFast(ctx, b, func() bool {
			s, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, name, metav1.GetOptions{})
			return err == nil && s.Status.ArtifactCount == 1 && s.Status.Artifacts[0].VidraResource != ""
		})
		return listed, time.Since(start)
	}

	floor, _ := firstListing(floorInfrahub, ns+"-floor", "Floor")
	for i := 0; i < slow; i++ {
		createSync(ctx, b, c, fmt.Sprintf("%s-slow-%d", ns, i), slowInfrahub.URL, "Slow")
	}
	// The slow syncs' first request (their shared login) waits in the slow
	// Infrahub; a moment later every worker they can take is taken.
	poll(ctx, b, "slow requests under way", time.Minute, func() bool {
		return slowInfrahub.Count(infrahubtest.EndpointLogin) >= 1
	})
	time.Sleep(time.Second)
	delay, synced := firstListing(healthy, ns+"-healthy", "Healthy")

	b.ReportMetric(delay.Seconds(), "first-listing-s")
	b.ReportMetric(floor.Seconds(), "floor-first-listing-s")
	b.ReportMetric((delay - floor).Seconds(), "extra-delay-s")
	b.ReportMetric(synced.Seconds(), "synced-s")
	b.Logf("slow=%d: first listing after %v (floor %v), VidraResource written after %v", slow, delay, floor, synced)

	for i := 0; i < slow; i++ {
		_ = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, fmt.Sprintf("%s-slow-%d", ns, i), metav1.DeleteOptions{})
	}
	_ = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, ns+"-floor", metav1.DeleteOptions{})
	deleteSyncOrphaning(ctx, b, c, ns+"-healthy")
	deleteNamespaces(ctx, b, c, ns, opNS)
}
