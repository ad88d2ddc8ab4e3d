// Package chart tests Vidra's install paths against a real control plane:
// the Helm chart (helm lint and template with default and non-default
// values, server-side dry-run of everything it renders, Pod Security
// "restricted" admission of the operator's pod) and the kustomize manifests.
//
// helm is built from the Go module proxy by hack/helm.sh (cached; about 3
// minutes the first time). VIDRA_HELM names a helm binary to use instead.
package chart

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/test/controlplane"
)

var (
	cp       *controlplane.ControlPlane
	repoRoot string
	helmPath string
	helmHome string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = controlplane.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if helmPath, err = buildHelm(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if helmHome, err = os.MkdirTemp("", "vidra-helm-home-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(helmHome)
	return controlplane.RunMain(m, controlplane.Config{
		Name: "chart",
		CRDPaths: []string{
			filepath.Join(repoRoot, "manifests", "crds"),
			filepath.Join("testdata", "servicemonitor-crd.yaml"),
			filepath.Join("testdata", "prometheusrule-crd.yaml"),
		},
	}, &cp)
}

// buildHelm runs hack/helm.sh, which returns at once when helm is cached.
func buildHelm() (string, error) {
	if p := os.Getenv("VIDRA_HELM"); p != "" {
		return p, nil
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot, "hack", "helm.sh"))
	cmd.Dir = repoRoot
	cmd.Stderr = os.Stderr // a cold build shows its progress
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/helm.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func chartDir() string { return filepath.Join(repoRoot, "chart", "vidra") }

// helm runs helm with its cache, config and data homes in a temp dir.
func helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, helmPath, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
		"KUBECONFIG="+filepath.Join(helmHome, "no-kubeconfig"), // never a real cluster
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

var (
	kubeVersionOnce sync.Once
	kubeVersion     string
)

// serverVersion is the control plane's version, for helm --kube-version.
func serverVersion(t *testing.T) string {
	kubeVersionOnce.Do(func() {
		cs := clientset(t)
		v, err := cs.Discovery().ServerVersion()
		assert.NilError(t, err)
		kubeVersion = v.GitVersion
	})
	return kubeVersion
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	assert.NilError(t, err)
	return cs
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// render runs helm template and returns the YAML and the decoded objects.
func render(t *testing.T, namespace string, args ...string) (string, []*unstructured.Unstructured) {
	t.Helper()
	full := append([]string{"template", "vidra", chartDir(), "--namespace", namespace, "--kube-version", serverVersion(t)}, args...)
	out, err := helm(ctxFor(t), full...)
	assert.NilError(t, err)
	objs, err := decode(out)
	assert.NilError(t, err)
	return out, objs
}

func decode(text string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

func all(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func into[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	assert.Assert(t, u != nil, "object missing")
	var out T
	assert.NilError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &out, true))
	return &out
}

func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	_, err := clientset(t).CoreV1().Namespaces().Create(ctxFor(t), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// serverDryRun applies YAML with server-side apply in dry-run mode: the API
// server validates and admits every object without storing it.
func serverDryRun(t *testing.T, yamlText string, args ...string) {
	t.Helper()
	full := append([]string{"apply", "--server-side", "--dry-run=server", "--field-manager=vidra-chart-test"}, args...)
	if yamlText != "" {
		full = append(full, "-f", "-")
	}
	cmd := cp.KubectlCmd(ctxFor(t), full...)
	cmd.Stdin = strings.NewReader(yamlText)
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "kubectl %s:\n%s", strings.Join(full, " "), out)
	t.Logf("kubectl %s:\n%s", strings.Join(full, " "), out)
}

const valuesFull = "testdata/values-full.yaml"

func TestLint(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-f", valuesFull},
		{"--set", "rbac.manage.scope=none", "--set", "metrics.enabled=false", "--set", "leaderElection.enabled=false"},
	} {
		out, err := helm(ctxFor(t), append([]string{"lint", "--strict", chartDir(), "--kube-version", serverVersion(t)}, args...)...)
		assert.NilError(t, err)
		assert.Assert(t, strings.Contains(out, "0 chart(s) failed"), out)
	}
}

func TestBadValuesAreRejected(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown key":                 {"--set", "operator.typo=1"},
		"bad digest":                  {"--set", "image.digest=latest"},
		"bad duration":                {"--set", "operator.syncInterval=5 minutes"},
		"bad log format":              {"--set", "operator.logFormat=xml"},
		"bad scope":                   {"--set", "rbac.manage.scope=everything"},
		"namespaces scope, none":      {"--set", "rbac.manage.scope=namespaces"},
		"impersonation, no ns":        {"--set", "rbac.impersonation.enabled=true"},
		"replicas without election":   {"--set", "replicaCount=2", "--set", "leaderElection.enabled=false"},
		"query name with a slash":     {"--set", "operator.queryName=a/b"},
		"workers zero":                {"--set", "operator.resourceWorkers=0"},
		"no manage rules":             {"--set-json", "rbac.manage.rules=[]"},
		"service monitor bad timeout": {"--set", "metrics.serviceMonitor.scrapeTimeout=soon"},
	} {
		_, err := helm(ctxFor(t), append([]string{"template", "vidra", chartDir(), "--kube-version", serverVersion(t)}, args...)...)
		assert.Assert(t, err != nil, "%s: accepted", name)
	}
}

func TestDefaultValuesRender(t *testing.T) {
	const ns = "vidra-chart"
	ensureNamespace(t, ns, nil)
	text, objs := render(t, ns)
	serverDryRun(t, text)

	dep := into[appsv1.Deployment](t, find(objs, "Deployment", "vidra"))
	assert.Equal(t, *dep.Spec.Replicas, int32(1))
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, c.Image, "ghcr.io/vidra-operator/vidra:v0.1.0")
	for _, want := range []string{"-leader-elect", "-leader-election-id=vidra", "-namespace=vidra-chart", "-config-map=vidra-config",
		"-metrics-bind-address=:8080", "-health-probe-bind-address=:8081", "-log-format=json", "-kube-api-qps=200", "-kube-api-burst=400",
		"-max-manifest-bytes=16Mi",
		// The benchmarks measure the operator's defaults; the chart installs them.
		fmt.Sprintf("-sync-workers=%d", operator.DefaultSyncWorkers), fmt.Sprintf("-resource-workers=%d", operator.DefaultResourceWorkers)} {
		assert.Assert(t, slices.Contains(c.Args, want), "args %v lack %s", c.Args, want)
	}
	// Settings the ConfigMap may provide are not passed by default: flags
	// would win over the ConfigMap.
	for _, arg := range c.Args {
		for _, prefix := range []string{"-sync-interval", "-resource-interval", "-reconcile-on-events", "-query-name", "-webhook-bind-address", "-infrahub-ca-file"} {
			assert.Assert(t, !strings.HasPrefix(arg, prefix), "unexpected %s", arg)
		}
	}
	var memLimit bool
	for _, env := range c.Env {
		memLimit = memLimit || (env.Name == "GOMEMLIMIT" && env.ValueFrom != nil && env.ValueFrom.ResourceFieldRef != nil &&
			env.ValueFrom.ResourceFieldRef.Resource == "limits.memory")
	}
	assert.Assert(t, memLimit, "GOMEMLIMIT follows the memory limit: %v", c.Env)
	assert.Assert(t, find(objs, "ClusterRoleBinding", "vidra-manage") != nil)
	for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget", "Ingress", "ConfigMap"} {
		assert.Assert(t, find(objs, kind, "") == nil, "%s rendered by default", kind)
	}
	for _, cr := range all(objs, "ClusterRole") {
		role := into[rbacv1.ClusterRole](t, cr)
		for _, r := range role.Rules {
			assert.Assert(t, !slices.Contains(r.Verbs, "impersonate"), "impersonation granted by default")
		}
	}
	// Namespaced objects go to the release namespace.
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			assert.Equal(t, o.GetNamespace(), "")
		default:
			assert.Equal(t, o.GetNamespace(), ns, "%s %s", o.GetKind(), o.GetName())
		}
	}
}

func TestFullValuesRender(t *testing.T) {
	const ns = "vidra-full"
	ensureNamespace(t, ns, nil)
	for _, team := range []string{"chart-team-a", "chart-team-b"} {
		ensureNamespace(t, team, nil)
	}
	text, objs := render(t, ns, "-f", valuesFull)
	serverDryRun(t, text)

	dep := into[appsv1.Deployment](t, find(objs, "Deployment", "vidra-full"))
	assert.Equal(t, *dep.Spec.Replicas, int32(2))
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	assert.Equal(t, c.Image, "registry.example.com:5000/mirror/vidra@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	assert.Equal(t, string(c.ImagePullPolicy), "Always")
	for _, want := range []string{"-leader-elect", "-leader-election-lease-duration=20s", "-leader-election-renew-deadline=15s",
		"-leader-election-retry-period=3s", "-sync-interval=5m", "-resource-interval=30m", "-reconcile-on-events=false",
		"-query-name=ArtifactIDs", "-infrahub-ca-file=/etc/vidra/ca/ca.crt", "-metrics-bind-address=:9090",
		"-webhook-bind-address=:9443", "-remote-timeout=10s", "-log-format=text", "-v=2", "-artifact-cache-size=64Mi",
		"-resource-workers=16", "-kube-api-qps=100", "-max-resource-bytes=1472Ki"} {
		assert.Assert(t, slices.Contains(c.Args, want), "args %v lack %s", c.Args, want)
	}
	assert.Equal(t, spec.ServiceAccountName, "vidra-custom-sa")
	assert.Equal(t, spec.PriorityClassName, "system-cluster-critical")
	assert.Equal(t, spec.ImagePullSecrets[0].Name, "regcred")
	assert.Equal(t, spec.NodeSelector["kubernetes.io/os"], "linux")
	assert.Equal(t, len(spec.Tolerations), 1)
	assert.Assert(t, spec.Affinity != nil && spec.Affinity.PodAntiAffinity != nil)
	assert.Equal(t, len(spec.TopologySpreadConstraints), 1)
	assert.Equal(t, spec.Volumes[0].ConfigMap.Name, "vidra-full-ca")
	assert.Equal(t, dep.Spec.Template.Labels["team"], "platform")
	assert.Assert(t, dep.Spec.Template.Annotations["checksum/config"] != "")

	cm := into[corev1.ConfigMap](t, find(objs, "ConfigMap", "vidra-config"))
	assert.Equal(t, cm.Data["requeueSyncAfter"], "2m")
	assert.Equal(t, cm.Data["eventBasedReconcile"], "true")
	assert.Assert(t, strings.Contains(into[corev1.ConfigMap](t, find(objs, "ConfigMap", "vidra-full-ca")).Data["ca.crt"], "BEGIN CERTIFICATE"))

	for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "PodDisruptionBudget", "Ingress"} {
		assert.Assert(t, find(objs, kind, "") != nil, "%s missing", kind)
	}
	assert.Assert(t, find(objs, "Service", "vidra-full-webhook") != nil)
	assert.Assert(t, find(objs, "Service", "vidra-full-metrics") != nil)

	// Namespaced management: write access in the listed namespaces only,
	// cluster-wide list/watch of the same kinds for the drift watches.
	assert.Assert(t, find(objs, "ClusterRoleBinding", "vidra-full-manage") == nil)
	var bound []string
	for _, rb := range all(objs, "RoleBinding") {
		if rb.GetName() == "vidra-full-manage" {
			bound = append(bound, rb.GetNamespace())
		}
	}
	slices.Sort(bound)
	assert.DeepEqual(t, bound, []string{"chart-team-a", "chart-team-b"})
	watch := into[rbacv1.ClusterRole](t, find(objs, "ClusterRole", "vidra-full-manage-watch"))
	for _, r := range watch.Rules {
		assert.DeepEqual(t, r.Verbs, []string{"list", "watch"})
	}

	// Impersonation: ServiceAccounts of the listed namespace, and only the
	// groups such a ServiceAccount has.
	groups := into[rbacv1.ClusterRole](t, find(objs, "ClusterRole", "vidra-full-impersonate-groups"))
	assert.DeepEqual(t, groups.Rules[0].ResourceNames, []string{"system:authenticated", "system:serviceaccounts", "system:serviceaccounts:chart-team-a"})
	rb := into[rbacv1.RoleBinding](t, find(objs, "RoleBinding", "vidra-full-impersonate"))
	assert.Equal(t, rb.Namespace, "chart-team-a")
}

func TestCRDsMatchManifests(t *testing.T) {
	out, err := helm(ctxFor(t), "show", "crds", chartDir())
	assert.NilError(t, err)
	objs, err := decode(out)
	assert.NilError(t, err)
	assert.Equal(t, len(objs), 3)
	for _, name := range []string{"infrahub.operators.com_infrahubsyncs.yaml", "infrahub.operators.com_gitsyncs.yaml", "infrahub.operators.com_vidraresources.yaml"} {
		want, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "crds", name))
		assert.NilError(t, err)
		got, err := os.ReadFile(filepath.Join(chartDir(), "crds", name))
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(want, got), "chart/vidra/crds/%s differs from manifests/crds (run hack/update-codegen.sh)", name)
	}
}

// TestOwnRBACMatchesManifests keeps the chart's and the plain manifests'
// grants for the operator's own needs identical.
func TestOwnRBACMatchesManifests(t *testing.T) {
	_, objs := render(t, "vidra-system", "--set", "fullnameOverride=vidra-operator")
	manifests := kustomizeBuild(t)
	for _, kind := range []string{"ClusterRole", "Role"} {
		chart := find(objs, kind, "vidra-operator")
		plain := find(manifests, kind, "vidra-operator")
		assert.Assert(t, chart != nil && plain != nil, kind)
		assert.DeepEqual(t, chart.Object["rules"], plain.Object["rules"])
	}
	chartManage := find(objs, "ClusterRole", "vidra-operator-manage")
	plainManage := find(manifests, "ClusterRole", "vidra-operator-manage")
	assert.DeepEqual(t, chartManage.Object["rules"], plainManage.Object["rules"])
}

func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, _, err := cp.Kubectl(ctxFor(t), "kustomize", filepath.Join(repoRoot, "manifests"))
	assert.NilError(t, err)
	objs, err := decode(string(out))
	assert.NilError(t, err)
	return objs
}

func TestKustomizeManifests(t *testing.T) {
	objs := kustomizeBuild(t)
	for _, kind := range []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} {
		assert.Assert(t, find(objs, kind, "") != nil, "%s missing", kind)
	}
	dep := into[appsv1.Deployment](t, find(objs, "Deployment", "vidra-operator"))
	assert.Equal(t, dep.Spec.Template.Spec.Containers[0].Image, "ghcr.io/vidra-operator/vidra:v0.1.0")

	// The Namespace is part of the manifests; a dry run cannot create it
	// for the objects inside it, so it must exist already.
	ensureNamespace(t, "vidra-system", nil)
	serverDryRun(t, "", "-k", filepath.Join(repoRoot, "manifests"))
	serverDryRun(t, "", "-f", filepath.Join(repoRoot, "manifests", "crds"), "-f", filepath.Join(repoRoot, "manifests", "operator"))
}

// TestPodSecurityRestricted creates Pods made from the operator's pod
// templates (chart defaults, chart full values, plain manifests) in a
// namespace enforcing the restricted profile: they are admitted without
// warnings; a non-compliant variant is refused.
func TestPodSecurityRestricted(t *testing.T) {
	const ns = "vidra-restricted"
	ensureNamespace(t, ns, map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	})
	var warnings warningRecorder
	cfg := cp.RESTConfig()
	cfg.WarningHandler = &warnings
	cs, err := kubernetes.NewForConfig(cfg)
	assert.NilError(t, err)

	_, defaults := render(t, ns)
	_, full := render(t, ns, "-f", valuesFull)
	templates := map[string]corev1.PodTemplateSpec{
		"chart defaults":    into[appsv1.Deployment](t, find(defaults, "Deployment", "")).Spec.Template,
		"chart full values": into[appsv1.Deployment](t, find(full, "Deployment", "")).Spec.Template,
		"manifests":         into[appsv1.Deployment](t, find(kustomizeBuild(t), "Deployment", "")).Spec.Template,
	}
	for name, tmpl := range templates {
		// The ServiceAccount admission plugin wants the account to exist.
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctxFor(t), &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: tmpl.Spec.ServiceAccountName},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "vidra-", Namespace: ns, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
			Spec:       tmpl.Spec,
		}
		warnings.reset()
		_, err = cs.CoreV1().Pods(ns).Create(ctxFor(t), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		assert.NilError(t, err, name)
		assert.Equal(t, len(warnings.get()), 0, "%s: warnings %v", name, warnings.get())

		for variant, spoil := range map[string]func(*corev1.Pod){
			"privilege escalation": func(p *corev1.Pod) {
				yes := true
				p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
			},
			"no security context": func(p *corev1.Pod) {
				p.Spec.SecurityContext = nil
				p.Spec.Containers[0].SecurityContext = nil
			},
			"added capability": func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
			},
			"host network": func(p *corev1.Pod) { p.Spec.HostNetwork = true },
		} {
			bad := pod.DeepCopy()
			spoil(bad)
			_, err := cs.CoreV1().Pods(ns).Create(ctxFor(t), bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			assert.Assert(t, apierrors.IsForbidden(err), "%s, %s: %v", name, variant, err)
			assert.ErrorContains(t, err, "violates PodSecurity \"restricted")
		}
	}
}

type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

var _ rest.WarningHandler = (*warningRecorder)(nil)

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}

func (w *warningRecorder) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = nil
}

func (w *warningRecorder) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.messages)
}
