package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/test/gitserver"
)

// gitPassCounter counts the GitSync controller's passes.
type gitPassCounter struct {
	metrics.Nop
	passes atomic.Int64
}

func (o *gitPassCounter) ObserveReconcile(controller string, _ time.Duration, _ error) {
	if controller == "gitsync" {
		o.passes.Add(1)
	}
}

// BenchmarkGitPolling polls 100 GitSyncs whose ref did not move. One op is
// one poll of all of them (each sync triggered, as its interval would). A
// poll must cost one ref advertisement (ls-remote) per sync, no fetch and
// no API write; the benchmark fails otherwise. The floor is the same 100
// ls-remotes made directly with the Git client, with as many in parallel
// as the operator's sync workers; ratio is the operator's time over it.
//
//	VIDRA_CACHE_DIR=/work/main/.cache go test -run '^$' -bench BenchmarkGitPolling -benchtime 5x ./test/bench/
func BenchmarkGitPolling(b *testing.B) {
	const n, workers = 100, 4
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := newClients(b)
	opNS, dest := "vidra-gitpoll", "gitpoll"
	for _, ns := range []string{opNS, dest} {
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	defer deleteNamespaces(context.Background(), b, c, opNS, dest)

	git := gitserver.New(b, gitserver.Options{})
	repo := git.NewRepo(b, "platform")
	commit := repo.Commit(b, "main", map[string]string{
		"apps/web/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  k: v\n",
	}, nil, "One application")

	observer := &gitPassCounter{}
	op, err := operator.New(operator.Config{
		RESTConfig: cp.RESTConfig(), Namespace: opNS,
		SyncWorkers: workers, ResourceWorkers: parallelism,
		SyncInterval: time.Hour, ResourceInterval: time.Hour,
		GitLimits: gitrepo.Limits{Timeout: 30 * time.Second},
		Metrics:   observer,
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = op.Run(runCtx) }()
	defer func() {
		_ = c.vidra.InfrahubV1alpha1().GitSyncs().DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
		poll(context.Background(), b, "VidraResources gone", 2*time.Minute, func() bool {
			l, err := c.vidra.InfrahubV1alpha1().VidraResources().List(context.Background(), metav1.ListOptions{})
			return err == nil && len(l.Items) == 0
		})
		stop()
		<-done
	}()
	poll(ctx, b, "operator synced", time.Minute, op.HasSynced)

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("gitpoll-%03d", i)
		_, err := c.vidra.InfrahubV1alpha1().GitSyncs().Create(ctx, &v1alpha1.GitSync{
			ObjectMeta: metav1.ObjectMeta{Name: names[i]},
			Spec: v1alpha1.GitSyncSpec{URL: git.URL("platform"), Ref: v1alpha1.GitRef{Branch: "main"}, Paths: []string{"apps"},
				Destination: v1alpha1.Destination{Namespace: dest}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	poll(ctx, b, "every GitSync Ready", 5*time.Minute, func() bool {
		list, err := c.vidra.InfrahubV1alpha1().GitSyncs().List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != n {
			return false
		}
		for _, gs := range list.Items {
			if !meta.IsStatusConditionTrue(gs.Status.Conditions, v1alpha1.ConditionReady) || gs.Status.Commit != commit {
				return false
			}
		}
		return true
	})
	// Let the last status writes and events land before counting.
	time.Sleep(2 * time.Second)

	// The floor: the same ls-remotes, straight from the Git client.
	client := gitrepo.New(gitrepo.Limits{Timeout: 30 * time.Second})
	floorStart := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := client.Resolve(ctx, git.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	floor := time.Since(floorStart)

	fetches, ads := git.Fetches(), git.Advertisements()
	writesBefore := apiWrites(ctx, b, c)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		passes, adsBefore := observer.passes.Load(), git.Advertisements()
		for _, name := range names {
			op.GitSyncs.Trigger(name)
		}
		pollEvery(ctx, b, "a poll of every GitSync", 5*time.Millisecond, 2*time.Minute, func() bool {
			return git.Advertisements() >= adsBefore+n && observer.passes.Load() >= passes+n
		})
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Anything a poll wrote would show up here after a moment.
	time.Sleep(time.Second)
	writesAfter := apiWrites(ctx, b, c)
	writes := 0
	for k, v := range writesAfter {
		if d := v - writesBefore[k]; d > 0 {
			writes += d
			b.Logf("API writes during polling: %s +%d", k, d)
		}
	}
	gotFetches, gotAds := git.Fetches()-fetches, git.Advertisements()-ads
	b.ReportMetric(float64(gotFetches)/float64(b.N), "fetches/op")
	b.ReportMetric(float64(writes)/float64(b.N), "api-writes/op")
	b.ReportMetric(float64(gotAds)/float64(b.N), "ls-remotes/op")
	b.ReportMetric(float64(floor.Milliseconds()), "floor-ms")
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "poll-ms/op")
	b.ReportMetric(float64(elapsed)/float64(b.N)/float64(floor), "ratio")
	if gotFetches != 0 || writes != 0 {
		b.Fatalf("polling %d GitSyncs whose ref did not move cost %d fetches and %d API writes over %d polls; want none", n, gotFetches, writes, b.N)
	}
}
