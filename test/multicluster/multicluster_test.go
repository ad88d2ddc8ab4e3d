// Package multicluster proves delivery to a remote cluster through a
// kubeconfig Secret, on two real control planes.
package multicluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/vidraresource"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/test/controlplane"
	"github.com/vidra-operator/vidra/test/opertest"
)

var local *controlplane.ControlPlane

// logs holds everything the operators of this package logged, scanned at
// the end for secrets.
var logs lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	klog.LogToStderr(false)
	klog.SetOutput(io.MultiWriter(os.Stderr, &logs))
	code := controlplane.RunMain(m, controlplane.Config{
		Name:     "local",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &local)
	klog.Flush()
	// Planted secrets and kubeconfig material must never reach the logs.
	for _, leak := range []string{secretText, "client-key-data", "client-certificate-data", "BEGIN RSA", "BEGIN EC", "BEGIN PRIVATE"} {
		if strings.Contains(logs.String(), leak) {
			fmt.Fprintf(os.Stderr, "FAIL: the operator logged %q\n", leak)
			code = 1
		}
	}
	if !strings.Contains(logs.String(), "Starting controller") {
		fmt.Fprintln(os.Stderr, "FAIL: no operator log was captured, so the secret scan proved nothing")
		code = 1
	}
	os.Exit(code)
}

var gvrWidget = schema.GroupVersionResource{Group: "harness.vidra.dev", Version: "v1alpha1", Resource: "widgets"}

const widget = `apiVersion: harness.vidra.dev/v1alpha1
kind: Widget
metadata:
  name: w1
  namespace: default
spec:
  size: 2
`

const secretText = "remote-kubeconfig-must-not-leak"

func until(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last: %v)", what, last)
	}
}

func reason(vidra versioned.Interface, name string) (string, string, error) {
	vr, err := vidra.InfrahubV1alpha1().VidraResources().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	c := meta.FindStatusCondition(vr.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.ObservedGeneration != vr.Generation {
		return "", "", nil
	}
	return c.Reason, c.Message, nil
}

// A VidraResource delivers to a remote cluster whose kubeconfig is in a
// Secret; a CRD that exists only there is served; an unreachable remote is
// reported without affecting local work; moving the destination prunes the
// remote.
func TestRemoteDestination(t *testing.T) {
	ctx := context.Background()
	remote := controlplane.StartForTest(t, controlplane.Config{
		Name:     "remote",
		CRDPaths: []string{filepath.Join("..", "controlplane", "testdata", "widgets-crd.yaml")},
	})
	cfg := local.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	vidra := versioned.NewForConfigOrDie(cfg)
	remoteDyn := dynamic.NewForConfigOrDie(remote.RESTConfig())
	server := remote.RESTConfig().Host

	ns := "vidra-multi"
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	kubeconfig, err := os.ReadFile(remote.KubeconfigPath())
	assert.NilError(t, err)
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "remote"},
		Data: map[string][]byte{"kubeconfig": kubeconfig, "note": []byte(secretText)}}, metav1.CreateOptions{})
	assert.NilError(t, err)

	startOperator(t, ns)

	remoteDest := v1alpha1.Destination{Server: server, KubeConfigSecretRef: &v1alpha1.SecretKeyReference{Name: "remote"}, ReconcileOnEvents: true}
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "to-remote"},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: widget, Destination: remoteDest},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "stays-local"},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local-cm\n  namespace: default\n"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)

	until(t, "the Widget on the remote", func() (bool, error) {
		_, err := remoteDyn.Resource(gvrWidget).Namespace("default").Get(ctx, "w1", metav1.GetOptions{})
		return err == nil, err
	})
	until(t, "to-remote Applied", func() (bool, error) {
		r, msg, err := reason(vidra, "to-remote")
		return r == vidraresource.ReasonApplied, fmt.Errorf("%s %s %v", r, msg, err)
	})
	vr, err := vidra.InfrahubV1alpha1().VidraResources().Get(ctx, "to-remote", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(vr.Status.ManagedResources), 1)
	assert.Assert(t, vr.Status.ManagedResources[0].Server != "", "the inventory records the remote server")

	// The remote goes down: its VidraResource says so, local work goes on.
	assert.NilError(t, remote.StopAPIServer())
	_, err = vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, "to-remote", "application/merge-patch+json",
		[]byte(`{"spec":{"manifest":"`+strings.ReplaceAll(strings.ReplaceAll(widget, "size: 2", "size: 3"), "\n", `\n`)+`"}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	until(t, "to-remote reports the cluster unavailable", func() (bool, error) {
		r, msg, err := reason(vidra, "to-remote")
		return r == vidraresource.ReasonClusterUnavailable || r == vidraresource.ReasonApplyFailed, fmt.Errorf("%s %s %v", r, msg, err)
	})
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "local-while-down"},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local-cm2\n  namespace: default\n"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "local work unaffected", func() (bool, error) {
		r, msg, err := reason(vidra, "local-while-down")
		return r == vidraresource.ReasonApplied, fmt.Errorf("%s %s %v", r, msg, err)
	})

	// The remote comes back: the change converges.
	assert.NilError(t, remote.StartAPIServer(ctx))
	until(t, "the Widget updated on the remote", func() (bool, error) {
		w, err := remoteDyn.Resource(gvrWidget).Namespace("default").Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		size, _, _ := unstructuredInt(w.Object, "spec", "size")
		return size == 3, nil
	})

	// Moving the destination: a ConfigMap moves from the remote to local.
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "mover"},
		Spec: v1alpha1.VidraResourceSpec{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: moving\n  namespace: default\n",
			Destination: remoteDest},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	remoteKube := kubernetes.NewForConfigOrDie(remote.RESTConfig())
	until(t, "moving on the remote", func() (bool, error) {
		_, err := remoteKube.CoreV1().ConfigMaps("default").Get(ctx, "moving", metav1.GetOptions{})
		return err == nil, err
	})
	until(t, "mover Applied", func() (bool, error) {
		r, _, err := reason(vidra, "mover")
		return r == vidraresource.ReasonApplied, err
	})
	_, err = vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, "mover", "application/merge-patch+json",
		[]byte(`{"spec":{"destination":null}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	until(t, "moving on the local cluster", func() (bool, error) {
		_, err := kube.CoreV1().ConfigMaps("default").Get(ctx, "moving", metav1.GetOptions{})
		return err == nil, err
	})
	until(t, "moving gone from the remote", func() (bool, error) {
		_, err := remoteKube.CoreV1().ConfigMaps("default").Get(ctx, "moving", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// Deleting removes the remote objects through the finalizer.
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "to-remote", metav1.DeleteOptions{}))
	until(t, "the Widget gone from the remote", func() (bool, error) {
		_, err := remoteDyn.Resource(gvrWidget).Namespace("default").Get(ctx, "w1", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// No kubeconfig content or planted secret anywhere users look.
	events, err := kube.EventsV1().Events("").List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	vrs, err := vidra.InfrahubV1alpha1().VidraResources().List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	var seen strings.Builder
	for _, ev := range events.Items {
		seen.WriteString(ev.Note + "\n")
	}
	for _, vr := range vrs.Items {
		seen.WriteString(vr.Status.LastError + "\n")
		for _, c := range vr.Status.Conditions {
			seen.WriteString(c.Message + "\n")
		}
	}
	for _, leak := range []string{secretText, "client-key-data", "client-certificate-data", "BEGIN"} {
		assert.Assert(t, !strings.Contains(seen.String(), leak), "found %q in events or status", leak)
	}
}

func unstructuredInt(obj map[string]any, fields ...string) (int64, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = m[f]
	}
	v, ok := cur.(int64)
	return v, ok, nil
}

// startOperator runs an operator in ns and stops it at the end of the test.
func startOperator(t *testing.T, ns string, tune ...func(*operator.Config)) *operator.Operator {
	t.Helper()
	cfg := opertest.Config(local.RESTConfig(), ns)
	cfg.SyncInterval = 0 // the operator's default
	cfg.RemoteTimeout = 3 * time.Second
	for _, f := range tune {
		f(&cfg)
	}
	return opertest.Start(t, cfg, false)
}

// A sync acting as a namespace-limited service account gets its objects in
// that namespace applied and a clear 403 for one outside it.
func TestImpersonationLetsRBACDecide(t *testing.T) {
	ctx := context.Background()
	cfg := local.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	vidra := versioned.NewForConfigOrDie(cfg)
	for _, name := range []string{"vidra-tenancy", "tenant-a", "tenant-b"} {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	_, err := kube.CoreV1().ServiceAccounts("tenant-a").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = kube.RbacV1().Roles("tenant-a").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = kube.RbacV1().RoleBindings("tenant-a").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: "tenant-a"}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	startOperator(t, "vidra-tenancy")

	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: allowed\n  namespace: tenant-a\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: denied\n  namespace: tenant-b\n"
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant"},
		Spec: v1alpha1.VidraResourceSpec{Manifest: manifest,
			Destination: v1alpha1.Destination{ServiceAccount: &v1alpha1.ServiceAccountReference{Name: "deployer", Namespace: "tenant-a"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "the allowed ConfigMap", func() (bool, error) {
		_, err := kube.CoreV1().ConfigMaps("tenant-a").Get(ctx, "allowed", metav1.GetOptions{})
		return err == nil, err
	})
	until(t, "a 403 condition for the denied one", func() (bool, error) {
		r, msg, err := reason(vidra, "tenant")
		return r == vidraresource.ReasonApplyFailed && strings.Contains(msg, "tenant-b/denied") && strings.Contains(msg, "forbidden") &&
			!strings.Contains(msg, "tenant-a/allowed"), fmt.Errorf("%s %s %v", r, msg, err)
	})
	_, err = kube.CoreV1().ConfigMaps("tenant-b").Get(ctx, "denied", metav1.GetOptions{})
	assert.Assert(t, apierrors.IsNotFound(err), "the denied ConfigMap was created")

	// Let go without the forbidden cleanup.
	_, err = vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, "tenant", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationDeletionPolicy+`":"orphan"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "tenant", metav1.DeleteOptions{}))
	until(t, "tenant VidraResource gone", func() (bool, error) {
		_, err := vidra.InfrahubV1alpha1().VidraResources().Get(ctx, "tenant", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// The earlier operator's labelled kubeconfig Secret selects the remote by
// exact host, and rotating the Secret takes effect without a restart.
func TestLegacyKubeconfigLabelAndRotation(t *testing.T) {
	ctx := context.Background()
	remote := controlplane.StartForTest(t, controlplane.Config{Name: "rotated"})
	cfg := local.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	vidra := versioned.NewForConfigOrDie(cfg)
	remoteKube := kubernetes.NewForConfigOrDie(remote.RESTConfig())
	ns := "vidra-rotation"
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	good, err := os.ReadFile(remote.KubeconfigPath())
	assert.NilError(t, err)
	server := remote.RESTConfig().Host
	// First a kubeconfig whose credentials the remote refuses.
	bad := []byte(strings.Replace(string(good), "client-key-data:", "client-key-data-unused:", 1))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "legacy-kubeconfig", Labels: map[string]string{"cluster-kubeconfig": "127.0.0.1"}},
		Data: map[string][]byte{"kubeconfig": bad}}
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
	assert.NilError(t, err)
	startOperator(t, ns)

	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "rotating"},
		Spec: v1alpha1.VidraResourceSpec{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rotated\n  namespace: default\n",
			Destination: v1alpha1.Destination{Server: server}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "a failure with the refused credentials", func() (bool, error) {
		r, msg, err := reason(vidra, "rotating")
		return r != "" && r != vidraresource.ReasonApplied, fmt.Errorf("%s %s %v", r, msg, err)
	})

	secret.Data["kubeconfig"] = good
	_, err = kube.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{})
	assert.NilError(t, err)
	until(t, "the ConfigMap on the remote after rotation", func() (bool, error) {
		_, err := remoteKube.CoreV1().ConfigMaps("default").Get(ctx, "rotated", metav1.GetOptions{})
		return err == nil, err
	})
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "rotating", metav1.DeleteOptions{}))
	until(t, "the ConfigMap removed from the remote", func() (bool, error) {
		_, err := remoteKube.CoreV1().ConfigMaps("default").Get(ctx, "rotated", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// With mandatory impersonation a destination naming no service account acts
// as the operator's default one, and the write policy refuses a
// ClusterRoleBinding before anything is written.
func TestPolicyAndMandatoryImpersonation(t *testing.T) {
	ctx := context.Background()
	cfg := local.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	vidra := versioned.NewForConfigOrDie(cfg)
	for _, name := range []string{"vidra-policy", "tenant-c"} {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	_, err := kube.CoreV1().ServiceAccounts("tenant-c").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default-deployer"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = kube.RbacV1().Roles("tenant-c").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = kube.RbacV1().RoleBindings("tenant-c").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default-deployer", Namespace: "tenant-c"}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	startOperator(t, "vidra-policy", func(c *operator.Config) {
		c.DefaultServiceAccount = &v1alpha1.ServiceAccountReference{Namespace: "tenant-c", Name: "default-deployer"}
		c.Policy.DeniedKinds = []string{"rbac.authorization.k8s.io/ClusterRoleBinding"}
	})

	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n  namespace: tenant-c\n---\n" +
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: grab-admin\n" +
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n" +
		"subjects: [{kind: ServiceAccount, name: default-deployer, namespace: tenant-c}]\n"
	_, err = vidra.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{
		ObjectMeta: metav1.ObjectMeta{Name: "policed"},
		Spec:       v1alpha1.VidraResourceSpec{Manifest: manifest},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	until(t, "the ConfigMap applied as the default service account", func() (bool, error) {
		cm, err := kube.CoreV1().ConfigMaps("tenant-c").Get(ctx, "fine", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, f := range cm.ManagedFields {
			if f.Manager == v1alpha1.FieldManager {
				return true, nil
			}
		}
		return false, fmt.Errorf("no vidra field manager")
	})
	until(t, "the ClusterRoleBinding refused by policy", func() (bool, error) {
		r, msg, err := reason(vidra, "policed")
		return r == vidraresource.ReasonNotOwned && strings.Contains(msg, "policy forbids"), fmt.Errorf("%s %s %v", r, msg, err)
	})
	_, err = kube.RbacV1().ClusterRoleBindings().Get(ctx, "grab-admin", metav1.GetOptions{})
	assert.Assert(t, apierrors.IsNotFound(err), "the ClusterRoleBinding was created")

	_, err = vidra.InfrahubV1alpha1().VidraResources().Patch(ctx, "policed", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+v1alpha1.AnnotationDeletionPolicy+`":"orphan"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	assert.NilError(t, vidra.InfrahubV1alpha1().VidraResources().Delete(ctx, "policed", metav1.DeleteOptions{}))
}
