package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/watch"
)

// BenchmarkTeardown measures deleting an InfrahubSync of N artifacts
// until its VidraResources and all their objects are gone (the sync
// controller deletes the VidraResources while the sync's finalizer holds
// it, their finalizers delete the objects), against the floor: a bare loop deleting the same objects at
// the same parallelism on the same control plane.
//
//	go test -run '^$' -bench 'Teardown/artifacts=1000' -benchtime 1x -timeout 60m ./test/bench/
func BenchmarkTeardown(b *testing.B) {
	for _, n := range benchSizes(b, 1000) {
		b.Run(fmt.Sprintf("artifacts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runTeardown(b, n, i)
			}
		})
	}
}

func runTeardown(b *testing.B, n, iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := newClients(b)
	ns := fmt.Sprintf("teardown-%d-%d", n, iter)
	floorNS := fmt.Sprintf("floor-teardown-%d-%d", n, iter)
	for _, name := range []string{ns, floorNS} {
		createNamespace(ctx, b, c, name)
	}

	// The floor: the same objects, applied, then deleted by a bare loop.
	applyLoop(ctx, b, c.dyn, floorNS, n)
	settle(b, cp.Processes()["kube-apiserver"])
	cpuBefore := readCPU(b)
	floor := deleteLoop(ctx, b, c.dyn, floorNS, n)
	floorCPU := readCPU(b).since(cpuBefore)
	deleteNamespaces(ctx, b, c, floorNS)

	// The model floor: the same deletes plus, per artifact, deleting its
	// VidraResource and taking its finalizer off; and, before it, the same
	// without the finalizer.
	runModel := func(name string, finalizer bool) (time.Duration, cpuUse) {
		modelNS := fmt.Sprintf("%s-%d-%d", name, n, iter)
		createNamespace(ctx, b, c, modelNS)
		modelConvergeLoop(ctx, b, c, modelNS, n, true)
		settle(b, cp.Processes()["kube-apiserver"])
		cpuBefore := readCPU(b)
		took := modelTeardownLoop(ctx, b, c, modelNS, n, finalizer)
		used := readCPU(b).since(cpuBefore)
		deleteNamespaces(ctx, b, c, modelNS)
		return took, used
	}
	bare, bareCPU := runModel("bare-model-teardown", false)
	model, modelCPU := runModel("model-teardown", true)

	artifactName := fmt.Sprintf("Teardown_%d_%d", n, iter)
	opNS := "vidra-" + ns
	fake := seed(ctx, b, c, opNS, ns, artifactName, n)
	defer fake.Close()
	op, err := operator.New(operator.Config{
		RESTConfig: cp.RESTConfig(), Namespace: opNS,
		SyncWorkers: 2, ResourceWorkers: parallelism,
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

	syncName := "teardown-" + fmt.Sprint(n)
	createSync(ctx, b, c, syncName, fake.URL, artifactName)
	syncs := op.SyncLister()
	poll(ctx, b, "sync Ready", 20*time.Minute, func() bool {
		s, err := syncs.Get(syncName)
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && int(s.Status.ArtifactCount) == n
	})
	time.Sleep(2 * time.Second) // let the last status writes of convergence land

	phases := os.Getenv("VIDRA_BENCH_PHASES") != ""
	var before map[string]int
	if phases {
		before = apiRequests(ctx, b, c, nil)
	}
	cpuBefore = readCPU(b)
	start := time.Now()
	if err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, syncName, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	// Ask for one item at most: listing everything twice a second would
	// load the API server being measured.
	pollEvery(ctx, b, "VidraResources and objects gone", 500*time.Millisecond, 20*time.Minute, func() bool {
		l, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil || len(l.Items) > 0 {
			return false
		}
		return managedLeft(ctx, b, c.dyn, ns) == 0
	})
	teardown := time.Since(start)
	teardownCPU := readCPU(b).since(cpuBefore)
	b.Logf("CPU used by the floor:       %v", floorCPU)
	b.Logf("CPU used by the model without finalizer: %v", bareCPU)
	b.Logf("CPU used by the model floor: %v", modelCPU)
	b.Logf("CPU used tearing down:       %v", teardownCPU)
	b.ReportMetric(bare.Seconds()/floor.Seconds(), "x-floor-model-no-finalizer")
	b.ReportMetric(model.Seconds(), "s/model-floor")
	b.ReportMetric(teardown.Seconds()/model.Seconds(), "x-model-floor")
	b.ReportMetric(teardownCPU.total().Seconds()/floorCPU.total().Seconds(), "x-floor-cpu")
	if phases {
		var lines []string
		for k, v := range apiRequests(ctx, b, c, nil) {
			if d := v - before[k]; d > 0 {
				lines = append(lines, fmt.Sprintf("%s x%d", k, d))
			}
		}
		sort.Strings(lines)
		b.Logf("requests during teardown: %s", strings.Join(lines, ", "))
	}
	b.ReportMetric(teardown.Seconds(), "s/teardown")
	b.ReportMetric(floor.Seconds(), "s/floor")
	b.ReportMetric(teardown.Seconds()/floor.Seconds(), "x-floor")
	b.Logf("N=%d teardown=%v floor=%v (%.2fx) model floor=%v (%.2fx)", n, teardown, floor, teardown.Seconds()/floor.Seconds(),
		model, teardown.Seconds()/model.Seconds())
	deleteNamespaces(ctx, b, c, ns, opNS)
}

func createNamespace(ctx context.Context, b *testing.B, c clients, name string) {
	b.Helper()
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
}

// deleteLoop deletes the n artifacts' objects from `parallelism` workers,
// as Vidra does (background propagation), and returns how long it took.
func deleteLoop(ctx context.Context, b *testing.B, dyn dynamic.Interface, ns string, n int) time.Duration {
	var items []benchObject
	for i := 0; i < n; i++ {
		items = append(items, artifactObjects(ns, i)...)
	}
	work := make(chan benchObject)
	var wg sync.WaitGroup
	var failed atomic.Value
	policy := metav1.DeletePropagationBackground
	start := time.Now()
	for w := 0; w < parallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := dyn.Resource(it.gvr).Namespace(ns).Delete(ctx, it.obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("floor delete: %v", err)
	}
	return time.Since(start)
}

// managedLeft tells whether objects of the artifacts' kinds carrying
// Vidra's label are left in ns: 0 when none, 1 or more when some are, -1
// when it could not tell. It reads one object per kind at most.
func managedLeft(ctx context.Context, b *testing.B, dyn dynamic.Interface, ns string) int {
	left := 0
	for _, gvr := range artifactGVRs {
		l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: watch.DefaultLabelSelector, Limit: 1})
		if err != nil {
			return -1
		}
		left += len(l.Items)
	}
	return left
}
