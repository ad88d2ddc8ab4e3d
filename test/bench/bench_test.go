// Package bench measures Vidra on a real control plane: cold convergence
// against a bare server-side-apply loop, the cost of an idle resync, drift
// repair latency and memory. Numbers are reported, never asserted on time:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./test/bench/
//
// VIDRA_BENCH_ARTIFACTS=5000 runs Convergence and Teardown at 5000
// artifacts (20,000 objects); VIDRA_BENCH_PHASES=1 logs the API requests
// by verb and resource; VIDRA_BENCH_KCM_DEFAULT_QPS=1 runs the controller
// manager at its default request rate instead of the harness's 100/s.
package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	// Plain `go test ./...` runs no benchmark here: start no control plane.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	cfg := controlplane.Config{
		Name:     "bench",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}
	if os.Getenv("VIDRA_BENCH_KCM_DEFAULT_QPS") != "" {
		// The controller manager's own defaults, as in most clusters: its
		// garbage collector then deletes at 20 requests a second.
		cfg.ControllerManagerFlags = []string{"--kube-api-qps=20", "--kube-api-burst=30"}
	}
	os.Exit(controlplane.RunMain(m, cfg, &cp))
}

// parallelism is shared by the operator's VidraResource workers and the
// bare apply loop, so the comparison is fair: the operator's default, as
// installed by the chart.
const parallelism = operator.DefaultResourceWorkers

var (
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	writeVerbs    = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}
)

// artifact renders the Flux benchmark's unit: a Deployment scaled to 0, a
// ServiceAccount, a Service and an Ingress.
func artifact(ns, name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 0
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      serviceAccountName: %[2]s
      containers: [{name: app, image: "registry.example/app:1.0"}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[2]s, namespace: %[1]s}
---
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {app: %[2]s}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  rules:
  - host: %[2]s.example.internal
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: %[2]s, port: {number: 80}}}}
`, ns, name)
}

// countingObserver counts reconciles, to know when a resync pass is done.
type countingObserver struct {
	metrics.Nop
	syncs, resources, resourceErrors atomic.Int64
	resourceNanos                    atomic.Int64
}

func (o *countingObserver) ObserveReconcile(controller string, d time.Duration, err error) {
	if controller == "infrahubsync" {
		o.syncs.Add(1)
		return
	}
	o.resources.Add(1)
	o.resourceNanos.Add(int64(d))
	if err != nil {
		o.resourceErrors.Add(1)
	}
}

type clients struct {
	kube  kubernetes.Interface
	vidra versioned.Interface
	dyn   dynamic.Interface
}

func newClients(b *testing.B) clients {
	cfg := cp.RESTConfig()
	return clients{
		kube:  kubernetes.NewForConfigOrDie(cfg),
		vidra: versioned.NewForConfigOrDie(cfg),
		dyn:   dynamic.NewForConfigOrDie(cfg),
	}
}

// benchSizes returns the artifact counts to run: VIDRA_BENCH_ARTIFACTS
// (e.g. "5000" or "1000,5000") when set, else defaults.
func benchSizes(b *testing.B, defaults ...int) []int {
	env := os.Getenv("VIDRA_BENCH_ARTIFACTS")
	if env == "" {
		return defaults
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("VIDRA_BENCH_ARTIFACTS=%q: want positive counts separated by commas", env)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkConvergence: sub-benchmark names stay artifacts=N, so
// -bench 'Convergence/artifacts=5000' selects VIDRA_BENCH_ARTIFACTS=5000.
func BenchmarkConvergence(b *testing.B) {
	for _, n := range benchSizes(b, 100, 500, 1000) {
		b.Run(fmt.Sprintf("artifacts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runConvergence(b, n, i)
			}
		})
	}
}

func runConvergence(b *testing.B, n, iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := newClients(b)
	ns := fmt.Sprintf("bench-%d-%d", n, iter)
	floorNS := fmt.Sprintf("floor-%d-%d", n, iter)
	for _, name := range []string{ns, floorNS} {
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}

	// The floor: a bare server-side apply loop over the same objects, once
	// the control plane is idle, as every run after it starts.
	settle(b, cp.Processes()["kube-apiserver"])
	cpuBefore := readCPU(b)
	floor := applyLoop(ctx, b, c.dyn, floorNS, n)
	floorCPU := readCPU(b).since(cpuBefore)
	// The model floor and Vidra then start from the same cluster as the
	// floor did: the objects of the run before are gone (the Service IP
	// allocator, for one, slows down as Services add up) and the
	// deployment controller is done with them, so no run pays for another.
	deleteNamespaces(ctx, b, c, floorNS)
	runModel := func(name string, marked bool) (time.Duration, cpuUse) {
		modelNS := fmt.Sprintf("%s-%d-%d", name, n, iter)
		createNamespace(ctx, b, c, modelNS)
		settle(b, cp.Processes()["kube-apiserver"])
		cpuBefore := readCPU(b)
		took := modelConvergeLoop(ctx, b, c, modelNS, n, marked)
		used := readCPU(b).since(cpuBefore)
		deleteModelResources(ctx, b, c, modelNS, n)
		deleteNamespaces(ctx, b, c, modelNS)
		return took, used
	}
	issueModel, issueModelCPU := runModel("issue-model", false)
	model, modelCPU := runModel("model", true)

	artifactName := fmt.Sprintf("Bench_%d_%d", n, iter)
	opNS := "vidra-" + ns
	fake := seed(ctx, b, c, opNS, ns, artifactName, n)
	defer fake.Close()

	observer := &countingObserver{}
	op, err := operator.New(operator.Config{
		RESTConfig: cp.RESTConfig(), Namespace: opNS,
		SyncWorkers: 2, ResourceWorkers: parallelism,
		SyncInterval: time.Hour, ResourceInterval: time.Hour,
		Metrics: observer,
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = op.Run(runCtx) }()
	defer func() { stop(); <-done }()
	poll(ctx, b, "operator synced", time.Minute, op.HasSynced)

	phases := os.Getenv("VIDRA_BENCH_PHASES") != ""
	var requestsBefore map[string]int
	if phases {
		requestsBefore = apiRequests(ctx, b, c, nil)
	}
	if path := os.Getenv("VIDRA_BENCH_APISERVER_PPROF"); path != "" {
		// A CPU profile of the API server while Vidra converges, to see
		// what the requests cost it.
		go func() {
			data, err := c.kube.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "20").DoRaw(ctx)
			if err != nil {
				b.Logf("API server profile: %v", err)
				return
			}
			if err := os.WriteFile(fmt.Sprintf("%s.%d", path, n), data, 0o644); err != nil {
				b.Logf("API server profile: %v", err)
			}
		}()
	}
	if path := os.Getenv("VIDRA_BENCH_CPUPROFILE"); path != "" {
		// This process (operator, fake Infrahub, bench) while Vidra
		// converges.
		f, err := os.Create(fmt.Sprintf("%s.%d", path, n))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	settle(b, cp.Processes()["kube-apiserver"])
	// Runs of one process should start alike: what an earlier run left
	// open shows here.
	b.Logf("before Vidra converges: %d watches open on the API server, %d goroutines in this process", openWatches(ctx, b, c), runtime.NumGoroutine())
	cpuBefore = readCPU(b)
	start := time.Now()
	syncName := "bench-" + strconv.Itoa(n)
	createSync(ctx, b, c, syncName, fake.URL, artifactName)
	if phases {
		// Read through the operator's informer: listing every VidraResource
		// from the API server would load the server being measured.
		resources := op.ResourceLister()
		pollEvery(ctx, b, "VidraResources created", 100*time.Millisecond, 15*time.Minute, func() bool {
			l, err := resources.List(labels.Everything())
			return err == nil && len(l) == n
		})
		b.Logf("all VidraResources created after %v", time.Since(start))
		pollEvery(ctx, b, "VidraResources ready", 100*time.Millisecond, 15*time.Minute, func() bool {
			l, err := resources.List(labels.Everything())
			ready := 0
			for _, vr := range l {
				if meta.IsStatusConditionTrue(vr.Status.Conditions, v1alpha1.ConditionReady) {
					ready++
				}
			}
			return err == nil && ready == n
		})
		b.Logf("all VidraResources ready after %v", time.Since(start))
	}
	// Read through the operator's informer: polling the API server for a
	// status of 1000 rows would load the server being measured.
	syncs := op.SyncLister()
	poll(ctx, b, "sync Ready", 15*time.Minute, func() bool {
		s, err := syncs.Get(syncName)
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && int(s.Status.ArtifactCount) == n
	})
	converge := time.Since(start)
	convergeCPU := readCPU(b).since(cpuBefore)
	b.Logf("CPU used by the floor:       %v", floorCPU)
	b.Logf("CPU used by the issue's model (no markers): %v", issueModelCPU)
	b.Logf("CPU used by the model floor: %v", modelCPU)
	b.Logf("CPU used converging:         %v", convergeCPU)
	b.ReportMetric(convergeCPU.total().Seconds()/floorCPU.total().Seconds(), "x-floor-cpu")
	b.ReportMetric(issueModel.Seconds()/floor.Seconds(), "x-floor-issue-model")
	b.ReportMetric(model.Seconds(), "s/model-floor")
	b.ReportMetric(converge.Seconds()/model.Seconds(), "x-model-floor")
	if os.Getenv("VIDRA_BENCH_CPUPROFILE") != "" {
		pprof.StopCPUProfile()
	}
	if phases {
		var lines []string
		for k, v := range apiRequests(ctx, b, c, nil) {
			if d := v - requestsBefore[k]; d > 0 {
				lines = append(lines, fmt.Sprintf("%s x%d", k, d))
			}
		}
		sort.Strings(lines)
		b.Logf("requests during convergence: %s", strings.Join(lines, ", "))
	}
	b.Logf("VidraResource reconciles: %d (errors %d), mean %v", observer.resources.Load(), observer.resourceErrors.Load(),
		time.Duration(observer.resourceNanos.Load()/max(1, observer.resources.Load())))
	b.ReportMetric(converge.Seconds(), "s/converge")
	b.ReportMetric(floor.Seconds(), "s/floor")
	b.ReportMetric(converge.Seconds()/floor.Seconds(), "x-floor")

	// An idle resync: every sync polls, every VidraResource re-checks.
	time.Sleep(2 * time.Second) // let the last status writes and events of convergence land before counting
	fake.ResetCounts()
	writesBefore := apiWrites(ctx, b, c)
	syncsBefore, resourcesBefore := observer.syncs.Load(), observer.resources.Load()
	op.Syncs.Trigger(syncName)
	vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, vr := range vrs.Items {
		op.Resources.Enqueue(vr.Name)
	}
	poll(ctx, b, "idle resync done", 5*time.Minute, func() bool {
		return observer.syncs.Load() > syncsBefore && observer.resources.Load() >= resourcesBefore+int64(len(vrs.Items))
	})
	writes := apiWrites(ctx, b, c)
	idleWrites := 0
	for k, v := range writes {
		idleWrites += v - writesBefore[k]
		if d := v - writesBefore[k]; d > 0 {
			b.Logf("idle write: %s x%d", k, d)
		}
	}
	counts := fake.Counts()
	b.ReportMetric(float64(counts[infrahubtest.EndpointGraphQL]), "infrahub-lists/idle-resync")
	b.ReportMetric(float64(counts[infrahubtest.EndpointStorage]+counts[infrahubtest.EndpointArtifact]), "downloads/idle-resync")
	b.ReportMetric(float64(idleWrites), "api-writes/idle-resync")

	// Drift repair: edit a Deployment by hand, time until it is back.
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("app-%d", i*n/20)
		t0 := time.Now()
		if _, err := c.dyn.Resource(gvrDeployment).Namespace(ns).Patch(ctx, name, types.MergePatchType,
			[]byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			b.Fatal(err)
		}
		pollFast(ctx, b, func() bool {
			d, err := c.dyn.Resource(gvrDeployment).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			return err == nil && r == 0
		})
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "ms/drift-p50")
	b.ReportMetric(float64(lat[len(lat)*95/100].Milliseconds()), "ms/drift-p95")

	rss, _ := processMemory(b, os.Getpid())
	b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
	stats := op.Clusters.Local().Watches.Stats()
	b.ReportMetric(float64(stats.Objects), "watched-objects")
	b.Logf("N=%d converge=%v floor=%v issue model=%v model floor=%v idle: infrahub=%v writes=%d drift p50=%v p95=%v rss=%.1fMiB watched=%d",
		n, converge, floor, issueModel, model, counts, idleWrites, lat[len(lat)/2], lat[len(lat)*95/100], float64(rss)/(1<<20), stats.Objects)

	deleteSyncOrphaning(ctx, b, c, syncName)
	deleteNamespaces(ctx, b, c, ns, floorNS, opNS)
}

// createSync creates the InfrahubSync of the benchmarks: the artifacts of
// the fake Infrahub at url, credentials from seed's "creds" Secret, drift
// repaired on events.
func createSync(ctx context.Context, b *testing.B, c clients, name, url, artifactName string) {
	b.Helper()
	if _, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{InfrahubAPIURL: url, ArtifactName: artifactName,
				CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: "creds"}},
			Destination: v1alpha1.Destination{ReconcileOnEvents: true},
		},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// deleteSyncOrphaning deletes a sync and its VidraResources without waiting
// for 4N deletions through finalizers: the VidraResources orphan their
// objects, which namespace deletion then removes.
func deleteSyncOrphaning(ctx context.Context, b *testing.B, c clients, syncName string) {
	b.Helper()
	vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, vr := range vrs.Items {
		_, _ = c.vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, vr.Name, types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationDeletionPolicy+`":"orphan"}}}`), metav1.PatchOptions{})
	}
	_ = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, syncName, metav1.DeleteOptions{})
	pollEvery(ctx, b, "VidraResources gone", time.Second, 30*time.Minute, func() bool {
		l, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(l.Items) == 0
	})
}

// deleteNamespaces deletes namespaces and waits until they are gone, so the
// next benchmark starts on a cluster without this one's objects (still
// labelled as Vidra's, they would fill the next operator's caches).
func deleteNamespaces(ctx context.Context, b *testing.B, c clients, names ...string) {
	for _, name := range names {
		_ = c.kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	}
	// 20,000 objects and their ReplicaSets take minutes to go.
	pollEvery(ctx, b, "namespaces deleted", time.Second, 30*time.Minute, func() bool {
		for _, name := range names {
			if _, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false
			}
		}
		return true
	})
}

// seed creates the operator's namespace with the "creds" Secret, and a
// fake Infrahub holding n artifacts named artifactName whose objects go to
// ns.
func seed(ctx context.Context, b *testing.B, c clients, opNS, ns, artifactName string, n int) *infrahubtest.Server {
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.kube.CoreV1().Secrets(opNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"username": "admin", "password": "infrahub"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	fake := infrahubtest.NewServer()
	fake.AddUser("admin", "infrahub")
	for i := 0; i < n; i++ {
		fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactName, TargetLabel: fmt.Sprintf("app-%d", i), Content: []byte(artifact(ns, fmt.Sprintf("app-%d", i)))})
	}
	return fake
}

// applyLoop applies the n artifacts' objects with server-side apply from
// `parallelism` workers and returns how long it took.
func applyLoop(ctx context.Context, b *testing.B, dyn dynamic.Interface, ns string, n int) time.Duration {
	var items []benchObject
	for i := 0; i < n; i++ {
		items = append(items, artifactObjects(ns, i)...)
	}
	work := make(chan benchObject)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := 0; w < parallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if _, err := dyn.Resource(it.gvr).Namespace(ns).Apply(ctx, it.obj.GetName(), it.obj,
					metav1.ApplyOptions{FieldManager: "floor", Force: true}); err != nil {
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
		b.Fatalf("floor apply: %v", err)
	}
	return time.Since(start)
}

// apiWrites reads the API server's write counters for the resources Vidra
// touches. KCM's own writes (ReplicaSets, Pods, and the status of the
// Deployments) are left out: Vidra never writes a managed object's status.
func apiWrites(ctx context.Context, b *testing.B, c clients) map[string]int {
	out := apiRequests(ctx, b, c, writeVerbs)
	for k := range out {
		if strings.HasSuffix(k, " deployments/status") {
			delete(out, k)
		}
	}
	return out
}

// apiRequests reads the API server's request counters, by verb and
// resource, for the given verbs (all verbs when nil).
func apiRequests(ctx context.Context, b *testing.B, c clients, verbs map[string]bool) map[string]int {
	keep := map[string]bool{"deployments": true, "serviceaccounts": true, "services": true, "ingresses": true,
		"vidraresources": true, "infrahubsyncs": true, "gitsyncs": true, "events": true}
	out := map[string]int{}
	eachSample(ctx, b, c, "apiserver_request_total", func(labels map[string]string, v float64) {
		if (verbs == nil || verbs[labels["verb"]]) && keep[labels["resource"]] {
			out[labels["verb"]+" "+labels["resource"]+"/"+labels["subresource"]] += int(v)
		}
	})
	return out
}

// openWatches returns how many watches the API server is serving.
func openWatches(ctx context.Context, b *testing.B, c clients) int {
	open := 0
	eachSample(ctx, b, c, "apiserver_longrunning_requests", func(labels map[string]string, v float64) {
		if labels["verb"] == "WATCH" {
			open += int(v)
		}
	})
	return open
}

// eachSample calls fn with the labels and value of every sample of the
// API server's metric called name.
func eachSample(ctx context.Context, b *testing.B, c clients, name string, fn func(labels map[string]string, value float64)) {
	raw, err := c.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	s := bufio.NewScanner(strings.NewReader(string(raw)))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, "}")+1:]), 64)
		if err != nil {
			continue
		}
		fn(parseLabels(line[len(name)+1:strings.LastIndex(line, "}")]), v)
	}
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

func poll(ctx context.Context, b *testing.B, what string, timeout time.Duration, cond func() bool) {
	b.Helper()
	pollEvery(ctx, b, what, 100*time.Millisecond, timeout, cond)
}

func pollEvery(ctx context.Context, b *testing.B, what string, interval, timeout time.Duration, cond func() bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		b.Fatalf("timed out waiting for %s", what)
	}
}

// waitSync waits until the InfrahubSync satisfies cond, reading it from a
// watch: polling a sync whose status lists thousands of artifacts would
// load the API server being measured.
func waitSync(ctx context.Context, b *testing.B, c clients, name, what string, timeout time.Duration, cond func(*v1alpha1.InfrahubSync) bool) {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		list, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err == nil && len(list.Items) == 1 && cond(&list.Items[0]) {
			return
		}
		if ctx.Err() != nil {
			b.Fatalf("timed out waiting for %s", what)
		}
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		w, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name,
			ResourceVersion: list.ResourceVersion})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*v1alpha1.InfrahubSync); ok && cond(s) {
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

func pollFast(ctx context.Context, b *testing.B, cond func() bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		b.Fatal("timed out waiting for drift repair")
	}
}
