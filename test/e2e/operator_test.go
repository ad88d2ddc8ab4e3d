package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/metrics/metricstest"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// operatorProcess is one running vidra-operator binary.
type operatorProcess struct {
	t           *testing.T
	name        string
	cmd         *exec.Cmd
	log         *logBuffer
	metricsAddr string
	healthAddr  string
	exited      chan struct{}
	exitErr     error
}

// startOperator runs the binary as the operator's ServiceAccount, with JSON
// logs, on free loopback ports. name becomes POD_NAME, so the leader
// election identity starts with it.
func startOperator(t *testing.T, name string, args ...string) *operatorProcess {
	t.Helper()
	needRBAC(t)
	p := &operatorProcess{t: t, name: name, log: &logBuffer{}, metricsAddr: freeAddr(t), healthAddr: freeAddr(t), exited: make(chan struct{})}
	full := append([]string{
		"-kubeconfig", saKubeconfig,
		"-namespace", operatorNamespace,
		"-metrics-bind-address", p.metricsAddr,
		"-health-probe-bind-address", p.healthAddr,
		"-log-format=json",
		"-v=2",
	}, args...)
	p.cmd = exec.Command(operatorBin, full...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBERNETES_SERVICE_") && !strings.HasPrefix(kv, "POD_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			env = append(env, kv)
		}
	}
	p.cmd.Env = append(env, "POD_NAME="+name)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	p.cmd.SysProcAttr = sysProcAttr()
	assert.NilError(t, p.cmd.Start())
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("operator %s (pid %d) log, last lines:\n%s", name, p.cmd.Process.Pid, p.log.tail(80))
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func (p *operatorProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *operatorProcess) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

func (p *operatorProcess) signal(sig os.Signal) {
	assert.NilError(p.t, p.cmd.Process.Signal(sig))
}

// waitExit waits for the process to end and returns how long it took and
// its error (nil for exit code 0).
func (p *operatorProcess) waitExit(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	select {
	case <-p.exited:
		return time.Since(start), p.exitErr
	case <-time.After(timeout):
		p.t.Fatalf("operator %s did not exit within %v", p.name, timeout)
		return 0, nil
	}
}

func (p *operatorProcess) get(path string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	addr := p.healthAddr
	if path == "/metrics" {
		addr = p.metricsAddr
	}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitReady polls /readyz until it answers 200.
func (p *operatorProcess) waitReady(timeout time.Duration) {
	p.t.Helper()
	eventually(p.t, timeout, "operator "+p.name+" ready", func() (bool, error) {
		if !p.running() {
			return false, fmt.Errorf("operator %s exited: %v", p.name, p.exitErr)
		}
		code, _, err := p.get("/readyz")
		return err == nil && code == http.StatusOK, nil
	})
}

// scrape reads /metrics and checks it with the strict text-format parser.
func (p *operatorProcess) scrape() metricstest.Families {
	p.t.Helper()
	code, body, err := p.get("/metrics")
	assert.NilError(p.t, err)
	assert.Equal(p.t, code, http.StatusOK)
	fams, err := metricstest.Parse(strings.NewReader(body))
	assert.NilError(p.t, err, "exposition:\n%s", body)
	return fams
}

// logLines returns the JSON log lines written so far.
func (p *operatorProcess) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(p.log.bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// logBuffer collects a process's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(string(b.bytes()), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls cond every 50 ms until it is true, it errs, or the
// deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			return false, err
		}
		return ok, nil
	})
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		t.Fatalf("waiting %v for %s: %v", timeout, what, errors.Join(err, last))
	}
}

// clients for the test itself (admin).
type clients struct {
	kube  kubernetes.Interface
	vidra versioned.Interface
	dyn   dynamic.Interface
}

func newClients(t *testing.T) clients {
	t.Helper()
	needRBAC(t)
	cfg := cp.RESTConfig()
	var c clients
	var err error
	c.kube, err = kubernetes.NewForConfig(cfg)
	assert.NilError(t, err)
	c.vidra, err = versioned.NewForConfig(cfg)
	assert.NilError(t, err)
	c.dyn, err = dynamic.NewForConfig(cfg)
	assert.NilError(t, err)
	return c
}

const (
	fakeUser     = "admin"
	fakePassword = "e2e-Pa55word-never-logged"
	credsSecret  = "infrahub-credentials"
)

// newFake starts a fake Infrahub with a login, and stores the credentials
// in the operator's namespace.
func newFake(t *testing.T, c clients) *infrahubtest.Server {
	t.Helper()
	fake := infrahubtest.NewServer()
	t.Cleanup(fake.Close)
	fake.AddUser(fakeUser, fakePassword)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: credsSecret, Namespace: operatorNamespace},
		StringData: map[string]string{"username": fakeUser, "password": fakePassword},
	}
	_, err := c.kube.CoreV1().Secrets(operatorNamespace).Create(t.Context(), s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.kube.CoreV1().Secrets(operatorNamespace).Update(t.Context(), s, metav1.UpdateOptions{})
	}
	assert.NilError(t, err)
	return fake
}

// webArtifact renders a small webserver artifact into namespace ns.
func webArtifact(ns, name string, replicas int, withService bool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[2]s-config
  namespace: %[1]s
data:
  replicas: "%[3]d"
`, ns, name, replicas)
	if withService {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  selector: {app: %[2]s}
  ports:
  - port: 80
`, ns, name)
	}
	return []byte(b.String())
}

// newSync creates an InfrahubSync polling every 2 s.
func newSync(t *testing.T, c clients, fake *infrahubtest.Server, name, artifactName string) {
	t.Helper()
	_, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(t.Context(), &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{
				InfrahubAPIURL:       fake.URL,
				TargetBranch:         "main",
				ArtifactName:         artifactName,
				CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: credsSecret},
			},
			Destination: v1alpha1.Destination{Namespace: "default"},
			Interval:    &metav1.Duration{Duration: 2 * time.Second},
		},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
}

// resourcesOf lists the VidraResources of a sync.
func resourcesOf(t *testing.T, c clients, sync string) []v1alpha1.VidraResource {
	t.Helper()
	list, err := c.vidra.InfrahubV1alpha1().VidraResources().List(t.Context(), metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + sync})
	assert.NilError(t, err)
	return list.Items
}

func syncReady(c clients, name string) (bool, error) {
	s, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return false, nil
	}
	for _, cond := range s.Status.Conditions {
		if cond.Type == v1alpha1.ConditionReady {
			return cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == s.Generation, nil
		}
	}
	return false, nil
}

// deleteSyncs deletes every InfrahubSync while an operator still runs and
// waits for their VidraResources (and so the managed objects) to be gone.
func deleteSyncs(t *testing.T, c clients) {
	t.Helper()
	ctx := context.Background()
	assert.NilError(t, c.vidra.InfrahubV1alpha1().InfrahubSyncs().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	assert.NilError(t, c.vidra.InfrahubV1alpha1().VidraResources().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	eventually(t, 90*time.Second, "InfrahubSyncs and VidraResources gone", func() (bool, error) {
		vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		syncs, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{})
		return err == nil && len(vrs.Items) == 0 && len(syncs.Items) == 0, nil
	})
}

// forceClean is the last resort when a test failed midway: it drops
// finalizers so the next test starts from a clean cluster.
func forceClean(t *testing.T, c clients) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.vidra.InfrahubV1alpha1().InfrahubSyncs().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if syncs, err := c.vidra.InfrahubV1alpha1().InfrahubSyncs().List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range syncs.Items {
			_, _ = c.vidra.InfrahubV1alpha1().InfrahubSyncs().Patch(ctx, s.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	}
	vrs, err := c.vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, vr := range vrs.Items {
		if len(vr.Finalizers) > 0 {
			vr.Finalizers = nil
			_, _ = c.vidra.InfrahubV1alpha1().VidraResources().Update(ctx, &vr, metav1.UpdateOptions{})
		}
		_ = c.vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, vr.Name, metav1.DeleteOptions{})
	}
	_ = c.kube.CoordinationV1().Leases(operatorNamespace).Delete(ctx, leaseName, metav1.DeleteOptions{})
}

// exitCode is the process's exit code, -1 when killed by a signal.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -2
}
