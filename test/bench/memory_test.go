package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/controlplane"
)

// BenchmarkOperatorMemory runs the operator binary, as `make build` makes
// it, on its own in a process, and reports its resident memory once it
// manages and watches 1000 artifacts of 4 objects, then after every
// artifact changed and after drift repairs, with the peak. The
// convergence benchmark's RSS includes the fake Infrahub and the benchmark
// itself.
//
// VIDRA_BENCH_MEM_ARTIFACTS sets the artifact counts, e.g. "1000,5000"
// (4 objects each); VIDRA_BENCH_HEAP_PROFILE=path writes the operator's
// heap profile after convergence to path.<n> (go tool pprof -sample_index=inuse_space).
func BenchmarkOperatorMemory(b *testing.B) {
	counts := []int{1000}
	if v := os.Getenv("VIDRA_BENCH_MEM_ARTIFACTS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("VIDRA_BENCH_MEM_ARTIFACTS: %q is not a positive count", f)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("artifacts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runOperatorMemory(b, n, i)
			}
		})
	}
}

func runOperatorMemory(b *testing.B, n, iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin := buildOperator(b)
	c := newClients(b)
	ns := fmt.Sprintf("mem-%d-%d", n, iter)
	opNS := "vidra-" + ns
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	artifactName := fmt.Sprintf("Mem_%d_%d", n, iter)
	fake := seed(ctx, b, c, opNS, ns, artifactName, n)
	defer fake.Close()

	cmd := exec.Command(bin,
		"-kubeconfig", cp.KubeconfigPath(),
		"-namespace", opNS,
		"-metrics-bind-address", "0",
		"-health-probe-bind-address", "0",
		"-resource-workers", strconv.Itoa(parallelism),
		"-reconcile-on-events",
	)
	heapProfile := os.Getenv("VIDRA_BENCH_HEAP_PROFILE")
	pprofAddr := ""
	if heapProfile != "" {
		pprofAddr = freeAddr(b)
		cmd.Args = append(cmd.Args, "-pprof-bind-address", pprofAddr)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if os.Getenv("VIDRA_BENCH_GCTRACE") != "" {
		cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("operator log:\n%s", tail(logs.String(), 40))
		}
	}()

	syncName := fmt.Sprintf("mem-%d-%d", n, iter)
	start := time.Now()
	createSync(ctx, b, c, syncName, fake.URL, artifactName)
	waitSync(ctx, b, c, syncName, "sync Ready", 30*time.Minute, func(s *v1alpha1.InfrahubSync) bool {
		return meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && int(s.Status.ArtifactCount) == n
	})
	converge := time.Since(start)
	b.ReportMetric(converge.Seconds(), "s/converge")
	// Settled: the last status writes and events are out, a resync of
	// every VidraResource has nothing to do.
	time.Sleep(5 * time.Second)
	rss, peak := processMemory(b, cmd.Process.Pid)
	// What the operator watches: every object labelled as Vidra's.
	watched := 0
	for _, gvr := range artifactGVRs {
		l, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByVidra})
		if err != nil {
			b.Fatal(err)
		}
		watched += len(l.Items)
	}
	b.ReportMetric(float64(watched), "watched-objects")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-rss-peak")
	if os.Getenv("VIDRA_BENCH_GCTRACE") != "" {
		b.Logf("operator GC trace, last lines:\n%s", tail(grepLines(logs.String(), "gc "), 3))
	}
	logNow(b, "operator binary at %d artifacts (%d watched objects): converged in %v, RSS %.1f MiB, peak %.1f MiB", n, watched, converge, float64(rss)/(1<<20), float64(peak)/(1<<20))
	if heapProfile != "" {
		writeHeapProfile(ctx, b, pprofAddr, fmt.Sprintf("%s.%d", heapProfile, n))
	}

	// A change of every artifact, then drift repairs.
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("app-%d", i)
		fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactName, TargetLabel: name,
			Content: []byte(strings.Replace(artifact(ns, name), "app:1.0", "app:1.1", 1))})
	}
	requested := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Patch(ctx, syncName, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationReconcileRequestedAt+`":"`+requested+`"}}}`), metav1.PatchOptions{}); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	waitSync(ctx, b, c, syncName, "change applied", 30*time.Minute, func(s *v1alpha1.InfrahubSync) bool {
		if s.Status.LastHandledReconcileAt != requested || !meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) {
			return false
		}
		d, err := c.dyn.Resource(gvrDeployment).Namespace(ns).Get(ctx, fmt.Sprintf("app-%d", n-1), metav1.GetOptions{})
		return err == nil && strings.Contains(fmt.Sprint(d.Object["spec"]), "app:1.1")
	})
	change := time.Since(start)
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("app-%d", i*n/20)
		if _, err := c.dyn.Resource(gvrDeployment).Namespace(ns).Patch(ctx, name, types.MergePatchType,
			[]byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			b.Fatal(err)
		}
		pollFast(ctx, b, func() bool {
			d, err := c.dyn.Resource(gvrDeployment).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			return err == nil && r == 0
		})
	}
	time.Sleep(5 * time.Second)
	rssAfter, peakAfter := processMemory(b, cmd.Process.Pid)
	b.ReportMetric(change.Seconds(), "s/change")
	b.ReportMetric(float64(rssAfter)/(1<<20), "MiB-rss-after-change")
	b.ReportMetric(float64(peakAfter)/(1<<20), "MiB-rss-peak-after-change")
	logNow(b, "after a change of every artifact (%v) and 20 drift repairs: RSS %.1f MiB, peak %.1f MiB", change, float64(rssAfter)/(1<<20), float64(peakAfter)/(1<<20))

	deleteSyncOrphaning(ctx, b, c, syncName)
	deleteNamespaces(ctx, b, c, ns, opNS)
}

// buildOperator builds the operator binary as `make build` does.
func buildOperator(b *testing.B) string {
	root, err := controlplane.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "vidra-operator")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/vidra-operator")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processMemory reads a process's resident set and its peak.
func processMemory(b *testing.B, pid int) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// logNow logs a result and prints it at once too: a benchmark's log only
// shows when it ends, and at 5,000 artifacts the cleanup after the
// measurements takes minutes.
func logNow(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, b.Name()+": "+format+"\n", args...)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func grepLines(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeHeapProfile saves the operator's heap profile (after a GC).
func writeHeapProfile(ctx context.Context, b *testing.B, addr, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Logf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Logf("heap profile: status %d, %v", resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("operator heap profile: %s (go tool pprof -sample_index=inuse_space %s)", path, path)
}
