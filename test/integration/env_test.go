// Package integration proves the controllers on a real control plane
// (etcd, kube-apiserver, kube-controller-manager) with the fake Infrahub.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
	"github.com/vidra-operator/vidra/test/controlplane"
	"github.com/vidra-operator/vidra/test/opertest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMain(m, controlplane.Config{
		Name:     "integration",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &cp))
}

var (
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrService    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrConfigMap  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// env is one running operator with its own namespace and fake Infrahub.
type env struct {
	t     *testing.T
	ctx   context.Context
	kube  kubernetes.Interface
	vidra versioned.Interface
	dyn   dynamic.Interface
	fake  *infrahubtest.Server
	op    *operator.Operator
	ns    string
}

var envCounter atomic.Int32

const (
	fakeUser     = "admin"
	fakePassword = "infrahub"
	credsSecret  = "infrahub-credentials"
)

// newEnv starts an operator against the shared control plane. Tests run one
// at a time: two operators on one cluster would fight over the same objects.
func newEnv(t *testing.T, tune ...func(*operator.Config)) *env {
	t.Helper()
	return newEnvWithFake(t, nil, tune...)
}

// newEnvWithFake is newEnv with options for the fake Infrahub.
func newEnvWithFake(t *testing.T, fakeOpts []infrahubtest.Option, tune ...func(*operator.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	cfg := cp.RESTConfig()
	e := &env{t: t, ctx: ctx}
	c := opertest.NewClients(cfg)
	e.kube, e.vidra, e.dyn = c.Kube, c.Vidra, c.Dyn

	e.ns = fmt.Sprintf("vidra-system-%d", envCounter.Add(1))
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)

	e.fake = infrahubtest.NewServer(fakeOpts...)
	e.fake.AddUser(fakeUser, fakePassword)
	e.secret(credsSecret, map[string]string{"username": fakeUser, "password": fakePassword}, nil)
	// Runs after the operator's own cleanup (cleanups run last first).
	t.Cleanup(func() {
		e.fake.Close()
		_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{})
		cancel()
	})

	opCfg := opertest.Config(cfg, e.ns)
	for _, f := range tune {
		f(&opCfg)
	}
	e.op = opertest.Start(t, opCfg, true)
	return e
}

func (e *env) secret(name string, data map[string]string, labels map[string]string) {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Labels: labels}, StringData: data}
	_, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = e.kube.CoreV1().Secrets(e.ns).Update(e.ctx, s, metav1.UpdateOptions{})
	}
	assert.NilError(e.t, err)
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

// newSync creates an InfrahubSync reading artifacts named artifact from the fake.
func (e *env) newSync(name, artifact string, tune ...func(*v1alpha1.InfrahubSync)) *v1alpha1.InfrahubSync {
	e.t.Helper()
	s := &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{
				InfrahubAPIURL:       e.fake.URL,
				ArtifactName:         artifact,
				CredentialsSecretRef: &v1alpha1.LocalSecretReference{Name: credsSecret},
			},
			Destination: v1alpha1.Destination{ReconcileOnEvents: true},
		},
	}
	for _, f := range tune {
		f(s)
	}
	created, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Create(e.ctx, s, metav1.CreateOptions{})
	assert.NilError(e.t, err)
	return created
}

func (e *env) getSync(name string) *v1alpha1.InfrahubSync {
	e.t.Helper()
	s, err := e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	return s
}

// waitReady waits until the sync is Ready for its current generation.
func (e *env) waitReady(name string) *v1alpha1.InfrahubSync {
	e.t.Helper()
	var s *v1alpha1.InfrahubSync
	e.eventually("InfrahubSync "+name+" Ready", func() (bool, error) {
		var err error
		s, err = e.vidra.InfrahubV1alpha1().InfrahubSyncs().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != s.Generation {
			if c != nil {
				return false, fmt.Errorf("%s: %s", c.Reason, c.Message)
			}
			return false, nil
		}
		return true, nil
	})
	return s
}

// waitCondition waits until the sync's Ready condition has the reason.
func (e *env) waitSyncReason(name, reason string) *v1alpha1.InfrahubSync {
	e.t.Helper()
	var s *v1alpha1.InfrahubSync
	e.eventually("InfrahubSync "+name+" reason "+reason, func() (bool, error) {
		s = e.getSync(name)
		c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != reason {
			return false, fmt.Errorf("condition: %+v", c)
		}
		return true, nil
	})
	return s
}

func (e *env) waitResourceReason(name, reason string) *v1alpha1.VidraResource {
	e.t.Helper()
	var vr *v1alpha1.VidraResource
	e.eventually("VidraResource "+name+" reason "+reason, func() (bool, error) {
		var err error
		vr, err = e.vidra.InfrahubV1alpha1().VidraResources().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != reason || c.ObservedGeneration != vr.Generation {
			return false, fmt.Errorf("condition: %+v", c)
		}
		return true, nil
	})
	return vr
}

// resourcesOf lists the VidraResources labelled with the sync.
func (e *env) resourcesOf(sync string) []v1alpha1.VidraResource {
	e.t.Helper()
	list, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + sync})
	assert.NilError(e.t, err)
	return list.Items
}

func (e *env) get(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	if ns == "" {
		return e.dyn.Resource(gvr).Get(e.ctx, name, metav1.GetOptions{})
	}
	return e.dyn.Resource(gvr).Namespace(ns).Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) waitExists(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	e.t.Helper()
	var obj *unstructured.Unstructured
	e.eventually(fmt.Sprintf("%s %s/%s to exist", gvr.Resource, ns, name), func() (bool, error) {
		var err error
		obj, err = e.get(gvr, ns, name)
		return err == nil, err
	})
	return obj
}

func (e *env) waitGone(gvr schema.GroupVersionResource, ns, name string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s %s/%s to be gone", gvr.Resource, ns, name), func() (bool, error) {
		_, err := e.get(gvr, ns, name)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// trigger makes a sync poll Infrahub now, as a webhook would.
func (e *env) trigger(name string) { e.op.Syncs.Trigger(name) }

// webserver renders the sample webserver artifact for a name and namespace.
func webserver(name, ns string, replicas int) []byte {
	return []byte(fmt.Sprintf(`# Rendered for KubernetesWebserver %[1]s
apiVersion: v1
kind: Namespace
metadata:
  name: %[2]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
  labels:
    app: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  selector:
    app: %[1]s
  ports:
  - port: 8080
    targetPort: 80
`, name, ns, replicas))
}

func readTestdata(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	assert.NilError(t, err)
	return data
}

func nestedInt(u *unstructured.Unstructured, fields ...string) int64 {
	v, _, _ := unstructured.NestedInt64(u.Object, fields...)
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func ownersOf(u *unstructured.Unstructured) []string {
	v := u.GetAnnotations()[v1alpha1.AnnotationOwnedBy]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
