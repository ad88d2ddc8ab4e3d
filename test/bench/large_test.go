package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

var gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// largeConfigMaps is n ConfigMaps of about 1 KB of random (poorly
// compressible) data in ns: 10,000 is about 10 MB of YAML.
func largeConfigMaps(ns string, n int) []*unstructured.Unstructured {
	r := rand.New(rand.NewSource(int64(n)))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([]*unstructured.Unstructured, n)
	data := make([]byte, 1000)
	for i := range out {
		for j := range data {
			data[j] = letters[r.Intn(len(letters))]
		}
		out[i] = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%05d", i), "namespace": ns},
			"data":     map[string]any{"value": string(data)},
		}}
	}
	return out
}

func largeManifest(objs []*unstructured.Unstructured) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  value: %s\n",
			o.GetName(), o.GetNamespace(), o.Object["data"].(map[string]any)["value"])
	}
	return b.Bytes()
}

// BenchmarkLargeArtifact converges one artifact of VIDRA_BENCH_LARGE_OBJECTS
// ConfigMaps (default 10000, about 10 MB of YAML) against the floor: a
// bare server-side apply loop of the same objects with the same
// parallelism, run first on the same control plane.
func BenchmarkLargeArtifact(b *testing.B) {
	n := 10000
	if v := os.Getenv("VIDRA_BENCH_LARGE_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("VIDRA_BENCH_LARGE_OBJECTS: %v", err)
		}
	}
	for i := 0; i < b.N; i++ {
		runLargeArtifact(b, n, i)
	}
}

func runLargeArtifact(b *testing.B, n, iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := newClients(b)
	ns := fmt.Sprintf("large-%d-%d", n, iter)
	floorNS := fmt.Sprintf("large-floor-%d-%d", n, iter)
	for _, name := range []string{ns, floorNS} {
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}

	// The floor: the same ConfigMaps by a bare apply loop.
	floorObjs := largeConfigMaps(floorNS, n)
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := 0; w < parallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if _, err := c.dyn.Resource(gvrConfigMap).Namespace(floorNS).Apply(ctx, o.GetName(), o,
					metav1.ApplyOptions{FieldManager: "floor", Force: true}); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for _, o := range floorObjs {
		work <- o
	}
	close(work)
	wg.Wait()
	floor := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("floor apply: %v", err)
	}
	deleteNamespaces(ctx, b, c, floorNS)

	content := largeManifest(largeConfigMaps(ns, n))
	artifactName := fmt.Sprintf("Large_%d_%d", n, iter)
	opNS := "vidra-" + ns
	fake := seed(ctx, b, c, opNS, ns, artifactName, 0)
	defer fake.Close()
	fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactName, TargetLabel: "large", Content: content})

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

	start = time.Now()
	syncName := fmt.Sprintf("large-%d-%d", n, iter)
	createSync(ctx, b, c, syncName, fake.URL, artifactName)
	syncs := op.SyncLister()
	poll(ctx, b, "sync Ready", 20*time.Minute, func() bool {
		s, err := syncs.Get(syncName)
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && s.Status.ArtifactCount == 1
	})
	converge := time.Since(start)
	b.ReportMetric(converge.Seconds(), "s/converge")
	b.ReportMetric(floor.Seconds(), "s/floor")
	b.ReportMetric(converge.Seconds()/floor.Seconds(), "x-floor")
	b.ReportMetric(float64(len(content))/(1<<20), "MiB-manifest")
	b.Logf("%d ConfigMaps, %.1f MiB of YAML: converge=%v floor=%v (%.2fx)", n, float64(len(content))/(1<<20), converge, floor, converge.Seconds()/floor.Seconds())

	deleteSyncOrphaning(ctx, b, c, syncName)
	deleteNamespaces(ctx, b, c, ns, opNS)
}
