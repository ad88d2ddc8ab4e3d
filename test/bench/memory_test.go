package bench

import (
	"bytes"
	"context"
	"fmt"
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

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/test/controlplane"
)

// BenchmarkOperatorMemory runs the operator binary, as `make build` makes
// it, on its own in a process, and reports its resident memory once it
// manages and watches 1000 artifacts of 4 objects. The convergence
// benchmark's RSS includes the fake Infrahub and the benchmark itself.
func BenchmarkOperatorMemory(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		runOperatorMemory(b, n, i)
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
	createSync(ctx, b, c, syncName, fake.URL, artifactName)
	pollEvery(ctx, b, "sync Ready", 2*time.Second, 15*time.Minute, func() bool {
		s, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, syncName, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) && int(s.Status.ArtifactCount) == n
	})
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
	b.Logf("operator binary at %d artifacts (%d watched objects): RSS %.1f MiB, peak %.1f MiB", n, watched, float64(rss)/(1<<20), float64(peak)/(1<<20))

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
