package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runDemo starts hack/demo.sh with its state in a temp dir and its binaries
// built into another.
func runDemo(t *testing.T, env ...string) (*exec.Cmd, *syncBuffer, string) {
	t.Helper()
	work := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(repoRoot, "hack", "demo.sh"))
	cmd.Dir = repoRoot
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEMO_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			environ = append(environ, kv)
		}
	}
	cmd.Env = append(environ, append([]string{"DEMO_WORK_DIR=" + work, "DEMO_BIN_DIR=" + filepath.Join(t.TempDir(), "bin")}, env...)...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	assert.NilError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
			for _, name := range []string{"fake-infrahub.log", "operator.log", "controlplane.log"} {
				if b, err := os.ReadFile(filepath.Join(work, name)); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("%s, last lines:\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
				}
			}
		}
	})
	return cmd, out, work
}

func waitCmd(t *testing.T, cmd *exec.Cmd, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("the demo did not finish within %v", timeout)
		return nil
	}
}

// processesUsing lists processes whose command line mentions dir.
func processesUsing(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir)) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

func checkNothingLeft(t *testing.T, work string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		return
	}
	eventually(t, 20*time.Second, "no demo process left", func() (bool, error) { return len(processesUsing(work)) == 0, nil })
}

// TestDemo runs `make demo`'s script non-interactively: it must build,
// start everything, sync, show a change arriving, and leave nothing behind.
func TestDemo(t *testing.T) {
	start := time.Now()
	cmd, out, work := runDemo(t, "DEMO_NONINTERACTIVE=1")
	err := waitCmd(t, cmd, 8*time.Minute)
	assert.NilError(t, err, "demo failed")
	t.Logf("demo ran in %v", time.Since(start).Round(time.Millisecond))
	text := out.String()
	for _, want := range []string{
		"kubectl get vidra",
		"infrahubsync.infrahub.operators.com/vidra-demo-webservers   True",
		"deployment.apps/shop",
		"the change arrived in",
		"nginx:1.28",
		"Demo complete",
	} {
		assert.Assert(t, strings.Contains(text, want), "output lacks %q", want)
	}
	checkNothingLeft(t, work)
}

// TestDemoCtrlC: interactive mode waits; Ctrl-C (SIGINT to the script)
// tears everything down.
func TestDemoCtrlC(t *testing.T) {
	cmd, out, work := runDemo(t)
	eventually(t, 8*time.Minute, "the demo to hand over", func() (bool, error) {
		return strings.Contains(out.String(), "Try it yourself"), nil
	})
	assert.Assert(t, len(processesUsing(work)) >= 3, "expected the control plane, Infrahub stand-in and operator to run")
	assert.NilError(t, cmd.Process.Signal(syscall.SIGINT))
	err := waitCmd(t, cmd, 2*time.Minute)
	assert.Assert(t, err != nil, "exit status after Ctrl-C should be 130")
	assert.Assert(t, strings.Contains(out.String(), "Cleaning up"))
	checkNothingLeft(t, work)
}

// TestDemoOwnCluster: `make demo KUBECONFIG=...` against a cluster of the
// user's (here the package's control plane): after confirmation it syncs
// there, and on exit removes what it created except the CRDs.
func TestDemoOwnCluster(t *testing.T) {
	c := newClients(t)
	t.Cleanup(func() { forceClean(t, c) })
	// Without confirmation, non-interactive mode refuses.
	cmd, out, _ := runDemo(t, "DEMO_NONINTERACTIVE=1", "DEMO_KUBECONFIG="+cp.KubeconfigPath())
	assert.Assert(t, waitCmd(t, cmd, 5*time.Minute) != nil, "ran without confirmation")
	assert.Assert(t, strings.Contains(out.String(), "DEMO_ASSUME_YES"), out.String())

	cmd, out, work := runDemo(t, "DEMO_NONINTERACTIVE=1", "DEMO_ASSUME_YES=1", "DEMO_KUBECONFIG="+cp.KubeconfigPath())
	assert.NilError(t, waitCmd(t, cmd, 5*time.Minute), "demo failed")
	text := out.String()
	assert.Assert(t, strings.Contains(text, "Your cluster: context"), text)
	assert.Assert(t, strings.Contains(text, "the change arrived in"), text)
	checkNothingLeft(t, work)

	// Cleaned up: the syncs, their resources and objects, its namespace.
	syncs, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().List(t.Context(), metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(syncs.Items), 0)
	vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(t.Context(), metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(vrs.Items), 0)
	_, err = c.kube.AppsV1().Deployments("web-shop").Get(t.Context(), "shop", metav1.GetOptions{})
	assert.Assert(t, apierrors.IsNotFound(err), "the demo's Deployment is left: %v", err)
	eventually(t, time.Minute, "namespace vidra-demo gone", func() (bool, error) {
		_, err := c.kube.CoreV1().Namespaces().Get(context.Background(), "vidra-demo", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
