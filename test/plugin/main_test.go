// Package plugin proves the kubectl-vidra plugin end to end: the binary is
// built once, then run against a real control plane where the operator runs
// in-process and reads artifacts from the fake Infrahub.
package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/controlplane"
	"github.com/vidra-operator/vidra/test/opertest"
)

var (
	cp *controlplane.ControlPlane
	// pluginBin is the kubectl-vidra binary built for this run.
	pluginBin string
)

// testVersion is linked into the binary, to check `version`.
const testVersion = "v0.0.0-plugin-test"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kubectl-vidra-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginBin = filepath.Join(dir, "kubectl-vidra")
	build := exec.Command("go", "build", "-ldflags", "-X main.buildVersion="+testVersion, "-o", pluginBin, "github.com/vidra-operator/vidra/cmd/kubectl-vidra")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: building kubectl-vidra: %v\n%s", err, out)
		return 1
	}
	return controlplane.RunMain(m, controlplane.Config{
		Name:     "plugin",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &cp)
}

var (
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrConfigMap  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// operatorNamespace is the plugin's default, so most commands need no -n.
const operatorNamespace = "vidra-system"

// env is the operator running in-process against the shared control plane,
// with its fake Infrahub.
type env struct {
	t     *testing.T
	ctx   context.Context
	kube  kubernetes.Interface
	vidra versioned.Interface
	dyn   dynamic.Interface
	fake  *infrahubtest.Server
}

// newEnv starts the operator in namespace vidra-system and a fake Infrahub
// that refuses anonymous reads, so every successful sync proves the
// operator found the credentials the plugin wrote.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	cfg := cp.RESTConfig()
	e := &env{t: t, ctx: ctx}
	c := opertest.NewClients(cfg)
	e.kube, e.vidra, e.dyn = c.Kube, c.Vidra, c.Dyn

	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		assert.NilError(t, err)
	}
	e.fake = infrahubtest.NewServer()
	e.fake.SetAnonymousAccess(false)
	t.Cleanup(func() { e.fake.Close(); cancel() }) // after the operator's cleanup
	opertest.Start(t, opertest.Config(cfg, operatorNamespace), true)
	return e
}

// eventually polls cond until it holds, failing the test after a minute.
func (e *env) eventually(what string, cond func() (bool, error)) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(e.ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		e.t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}

// waitReady waits until the sync and all its VidraResources are Ready for
// their current generation.
func (e *env) waitReady(name string) *v1alpha1.InfrahubSync {
	e.t.Helper()
	var s *v1alpha1.InfrahubSync
	e.eventually("InfrahubSync "+name+" Ready", func() (bool, error) {
		var err error
		s, err = e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if err := readyErr(s.Status.Conditions, s.Generation); err != nil {
			return false, err
		}
		vrs, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + name})
		if err != nil {
			return false, err
		}
		if len(vrs.Items) == 0 {
			return false, errors.New("no VidraResources yet")
		}
		for _, vr := range vrs.Items {
			if err := readyErr(vr.Status.Conditions, vr.Generation); err != nil {
				return false, fmt.Errorf("VidraResource %s: %w", vr.Name, err)
			}
		}
		return true, nil
	})
	return s
}

func readyErr(conds []metav1.Condition, generation int64) error {
	c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return errors.New("no Ready condition")
	case c.ObservedGeneration != generation:
		return fmt.Errorf("Ready is for generation %d, not %d", c.ObservedGeneration, generation)
	case c.Status != metav1.ConditionTrue:
		return fmt.Errorf("%s: %s", c.Reason, c.Message)
	}
	return nil
}

// newSync creates an InfrahubSync reading the named artifacts from the fake.
func (e *env) newSync(name, artifact string, tune ...func(*v1alpha1.InfrahubSync)) {
	e.t.Helper()
	s := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{InfrahubAPIURL: e.fake.URL, ArtifactName: artifact},
		},
	}
	for _, f := range tune {
		f(s)
	}
	_, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(e.ctx, s, metav1.CreateOptions{})
	assert.NilError(e.t, err)
}

func (e *env) getSync(name string) *v1alpha1.InfrahubSync {
	e.t.Helper()
	s, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	return s
}

// result is one run of the plugin.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// kv runs kubectl-vidra against the control plane's admin kubeconfig, with
// stdin, and without a terminal (so without colour unless asked).
func kv(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pluginBin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "KUBECONFIG="+cp.KubeconfigPath())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("running kubectl-vidra %v: %v", args, err)
	}
	t.Logf("kubectl vidra %s → %s", strings.Join(args, " "), r)
	return r
}

// oneErrorLine checks the plugin's error convention: exactly one line on
// stderr, starting with "error: ".
func oneErrorLine(t *testing.T, r result) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	var errs []string
	for _, l := range lines {
		if strings.HasPrefix(l, "error: ") {
			errs = append(errs, l)
		}
	}
	assert.Equal(t, len(errs), 1, "%s", r)
	return errs[0]
}
