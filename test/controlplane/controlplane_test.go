package controlplane_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/vidra-operator/vidra/test/controlplane"
)

// cp is shared by the package's tests (see TestMain); tests that stop parts
// of a control plane start their own.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMain(m, controlplane.Config{
		Name:     "controlplane-test",
		CRDPaths: []string{"testdata/widgets-crd.yaml"},
	}, &cp))
}

var widgetGVR = schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1alpha1", Resource: "widgets"}

func clients(t *testing.T, c *controlplane.ControlPlane) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	return cs, dyn
}

func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "harness-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// waitNotFound polls get until it reports NotFound and returns how long that
// took; it fails the test after timeout.
func waitNotFound(t *testing.T, what string, timeout time.Duration, get func(context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	for {
		last = get(ctx)
		if apierrors.IsNotFound(last) {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s still present after %s (last result: %v)", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func configMap(ns, name string, owner *metav1.OwnerReference) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"k": "v"}}
	if owner != nil {
		cm.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return cm
}

func TestGarbageCollectorDeletesOwnedConfigMap(t *testing.T) {
	t.Parallel()
	cs, _ := clients(t, cp)
	ns := newNamespace(t, cs)
	ctx := t.Context()

	owner, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "owner", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating owner: %v", err)
	}
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "owned", &ref), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating owned: %v", err)
	}
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting owner: %v", err)
	}
	took := waitNotFound(t, "owned ConfigMap", 30*time.Second, func(ctx context.Context) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "owned", metav1.GetOptions{})
		return err
	})
	t.Logf("garbage collected in %s", took)
}

// The widgets CRD is installed before kube-controller-manager starts, so the
// garbage collector knows it from the start and collects dependents of a
// Widget at once (with a CRD created later it would take 20-40 s).
func TestGarbageCollectorDeletesObjectsOwnedByCustomResource(t *testing.T) {
	t.Parallel()
	cs, dyn := clients(t, cp)
	ns := newNamespace(t, cs)
	ctx := t.Context()

	widget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "harness.vidra.dev/v1alpha1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": "w"},
		"spec":       map[string]any{"size": int64(3)},
	}}
	created, err := dyn.Resource(widgetGVR).Namespace(ns).Create(ctx, widget, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating widget: %v", err)
	}
	ref := metav1.OwnerReference{APIVersion: "harness.vidra.dev/v1alpha1", Kind: "Widget", Name: "w", UID: created.GetUID()}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "owned-by-widget", &ref), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating owned ConfigMap: %v", err)
	}
	if err := dyn.Resource(widgetGVR).Namespace(ns).Delete(ctx, "w", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting widget: %v", err)
	}
	took := waitNotFound(t, "ConfigMap owned by a Widget", 15*time.Second, func(ctx context.Context) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "owned-by-widget", metav1.GetOptions{})
		return err
	})
	t.Logf("garbage collected in %s", took)
}

func TestNamespaceDeletionCompletes(t *testing.T) {
	t.Parallel()
	cs, _ := clients(t, cp)
	ns := newNamespace(t, cs)
	ctx := t.Context()
	// Content makes the namespace controller do real work before finalizing.
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "content", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting namespace: %v", err)
	}
	took := waitNotFound(t, "namespace "+ns, 30*time.Second, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	})
	t.Logf("namespace deleted in %s", took)
}

func TestCRDFromConfigIsServedAndValidated(t *testing.T) {
	t.Parallel()
	cs, dyn := clients(t, cp)
	ns := newNamespace(t, cs)
	ctx := t.Context()
	widgets := dyn.Resource(widgetGVR).Namespace(ns)

	for _, tc := range []struct {
		name    string
		size    int64
		wantErr bool
	}{
		{name: "valid", size: 2},
		{name: "invalid", size: 0, wantErr: true}, // schema says minimum: 1
	} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "harness.vidra.dev/v1alpha1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": tc.name},
			"spec":       map[string]any{"size": tc.size},
		}}
		_, err := widgets.Create(ctx, obj, metav1.CreateOptions{})
		if tc.wantErr {
			if !apierrors.IsInvalid(err) {
				t.Errorf("creating widget %s: want Invalid error, got %v", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("creating widget %s: %v", tc.name, err)
		}
	}
	got, err := widgets.Get(ctx, "valid", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting widget: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 2 {
		t.Errorf("spec.size = %d, want 2", size)
	}
}

func TestInstallCRDsLater(t *testing.T) {
	t.Parallel()
	cs, dyn := clients(t, cp)
	ns := newNamespace(t, cs)
	ctx := t.Context()

	start := time.Now()
	if err := cp.InstallCRDs(ctx, "testdata/later"); err != nil {
		t.Fatalf("InstallCRDs: %v", err)
	}
	t.Logf("two CRDs established in %s", time.Since(start))
	// Applying the same CRDs again is harmless.
	if err := cp.InstallCRDs(ctx, "testdata/later/gadgets-crd.yaml"); err != nil {
		t.Fatalf("InstallCRDs again: %v", err)
	}

	gadget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "harness.vidra.dev/v1", "kind": "Gadget",
		"metadata": map[string]any{"name": "g"}, "spec": map[string]any{"any": "thing"},
	}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1", Resource: "gadgets"}).
		Create(ctx, gadget, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating gadget: %v", err)
	}
	gizmo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "harness.vidra.dev/v1", "kind": "Gizmo", "metadata": map[string]any{"name": "z"},
	}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1", Resource: "gizmos"}).
		Namespace(ns).Create(ctx, gizmo, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating gizmo: %v", err)
	}

	if err := cp.InstallCRDs(ctx, "testdata/does-not-exist"); err == nil {
		t.Errorf("InstallCRDs of a missing path: want error")
	}
}

// pinnedVersion reads the k8s.io/kubernetes version from the build module.
func pinnedVersion(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../../hack/controlplane/kube/go.mod")
	if err != nil {
		t.Fatalf("reading build module: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) == 2 && fields[0] == "k8s.io/kubernetes" {
			return fields[1]
		}
	}
	t.Fatalf("no k8s.io/kubernetes requirement in the build module")
	return ""
}

func TestKubectl(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	out, _, err := cp.Kubectl(ctx, "get", "ns", "default", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "namespace/default" {
		t.Errorf("kubectl get ns default = %q, want namespace/default", got)
	}

	out, _, err = cp.Kubectl(ctx, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ClientVersion struct{ GitVersion, Major, Minor string }
		ServerVersion struct{ GitVersion, Major, Minor string }
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("parsing kubectl version: %v\n%s", err, out)
	}
	want := pinnedVersion(t)
	if v.ServerVersion.GitVersion != want || v.ClientVersion.GitVersion != want {
		t.Errorf("kubectl version: server %q, client %q, want both %q", v.ServerVersion.GitVersion, v.ClientVersion.GitVersion, want)
	}
	if v.ServerVersion.Major != "1" || "v1."+v.ServerVersion.Minor != want[:strings.LastIndex(want, ".")] {
		t.Errorf("server major.minor = %s.%s, want those of %s", v.ServerVersion.Major, v.ServerVersion.Minor, want)
	}

	cs, _ := clients(t, cp)
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("discovery server version: %v", err)
	}
	if sv.GitVersion != want {
		t.Errorf("discovery server version %q, want %q", sv.GitVersion, want)
	}

	// Errors carry kubectl's stderr.
	if _, _, err := cp.Kubectl(ctx, "get", "configmap", "no-such-thing"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("kubectl get of a missing object: want a NotFound error, got %v", err)
	}
	// kubectl's discovery cache lands in the control plane's dir, not in $HOME.
	if entries, err := os.ReadDir(filepath.Join(cp.Dir(), "kubectl-cache")); err != nil || len(entries) == 0 {
		t.Errorf("kubectl cache dir is empty or missing (%v): KUBECACHEDIR not honoured?", err)
	}
}

// A second, independent control plane: its API server goes down and comes
// back with its data, while the shared one keeps serving; Stop leaves no
// process and no dir behind.
func TestSecondControlPlaneRestartAndStop(t *testing.T) {
	t.Parallel()
	second := controlplane.StartForTest(t, controlplane.Config{})
	ctx := t.Context()
	cs2, _ := clients(t, second)
	cs1, _ := clients(t, cp)

	if second.KubeconfigPath() == cp.KubeconfigPath() || second.RESTConfig().Host == cp.RESTConfig().Host {
		t.Fatalf("second control plane shares kubeconfig or address with the first: %s", second.RESTConfig().Host)
	}
	ns := newNamespace(t, cs2)
	if _, err := cs1.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s of the second control plane visible in the first: %v", ns, err)
	}
	if _, err := cs2.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, "survivor", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}

	if err := second.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := cs2.CoreV1().ConfigMaps(ns).Get(shortCtx, "survivor", metav1.GetOptions{})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("request while the API server is stopped: want connection refused, got %v", err)
	}
	if _, err := cs1.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("shared control plane affected by the second one's outage: %v", err)
	}

	start := time.Now()
	if err := second.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server back in %s", time.Since(start))
	got, err := cs2.CoreV1().ConfigMaps(ns).Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap after API server restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("ConfigMap data after restart = %v", got.Data)
	}

	pids := second.Processes()
	if len(pids) != 3 {
		t.Fatalf("Processes() = %v, want etcd, kube-apiserver and kube-controller-manager", pids)
	}
	binDir := filepath.Dir(second.KubectlPath())
	dir := second.Dir()
	if err := second.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range pids {
		if alive(pid, filepath.Join(binDir, name)) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (%d) still exists after Stop: %v", name, pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still exists after Stop (%v)", dir, err)
	}
	if err := second.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// alive reports whether pid exists and still runs binary (a reused PID
// running something else does not count).
func alive(pid int, binary string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return argv0 == binary
}
