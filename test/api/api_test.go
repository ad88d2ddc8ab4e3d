// Package api proves the v1alpha1 API on a real control plane: the CRDs
// install, the generated clients work, validation speaks clearly, and kubectl
// shows what a user expects.
package api

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	acv1alpha1 "github.com/vidra-operator/vidra/generated/applyconfiguration/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/generated/informers/externalversions"
	"github.com/vidra-operator/vidra/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMain(m, controlplane.Config{
		Name:     "api",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &cp))
}

func clients(t *testing.T) (versioned.Interface, kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cfg := cp.RESTConfig()
	vc, err := versioned.NewForConfig(cfg)
	assert.NilError(t, err)
	kc, err := kubernetes.NewForConfig(cfg)
	assert.NilError(t, err)
	dc, err := dynamic.NewForConfig(cfg)
	assert.NilError(t, err)
	return vc, kc, dc
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestCRDsAreEstablished(t *testing.T) {
	ctx := testContext(t)
	_, _, dc := clients(t)
	crds := dc.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, name := range []string{"infrahubsyncs.infrahub.operators.com", "vidraresources.infrahub.operators.com"} {
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		assert.NilError(t, err, name)
		scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
		assert.Equal(t, scope, "Cluster", name)
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		established := false
		for _, c := range conditions {
			m := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				established = true
			}
		}
		assert.Assert(t, established, "%s is not Established", name)
	}
}

func newSync(name string) *v1alpha1.InfrahubSync {
	return &v1alpha1.InfrahubSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.InfrahubSyncSpec{
			Source: v1alpha1.InfrahubSource{
				InfrahubAPIURL: "https://infrahub.example.com",
				ArtifactName:   "Webserver_Manifest",
			},
		},
	}
}

func TestTypedClientRoundTrip(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	syncs := vc.InfrahubV1alpha1().InfrahubSyncs()

	created, err := syncs.Create(ctx, newSync("typed-create"), metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() { _ = syncs.Delete(context.Background(), "typed-create", metav1.DeleteOptions{}) })
	assert.Equal(t, created.Spec.Source.TargetBranch, "main", "targetBranch defaults to main")

	got, err := syncs.Get(ctx, "typed-create", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, got.Spec, created.Spec)

	list, err := syncs.List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Assert(t, containsSync(list.Items, "typed-create"))

	// Status is a subresource: a status write keeps the spec, a spec write the status.
	got.Status.SyncState = v1alpha1.StateSucceeded
	got.Status.Artifacts = []v1alpha1.ArtifactStatus{{ID: "a1", Name: "Webserver_Manifest", Checksum: "c", VidraResource: "vr"}}
	got.Status.ArtifactCount = 1
	updated, err := syncs.UpdateStatus(ctx, got, metav1.UpdateOptions{})
	assert.NilError(t, err)
	assert.Equal(t, updated.Status.SyncState, v1alpha1.StateSucceeded)
	assert.Equal(t, updated.Status.Artifacts[0].VidraResource, "vr")

	// Server-side apply through the generated apply configurations.
	applied, err := syncs.Apply(ctx,
		acv1alpha1.InfrahubSync("typed-apply").
			WithSpec(acv1alpha1.InfrahubSyncSpec().
				WithSource(acv1alpha1.InfrahubSource().
					WithInfrahubAPIURL("http://[fd00::10]:8000/infrahub").
					WithTargetBranch("feature-x").
					WithArtifactName("VirtuellMaschine_Manifest")).
				WithDestination(acv1alpha1.Destination().WithNamespace("vms").WithReconcileOnEvents(true)).
				WithInterval(metav1.Duration{Duration: 5 * time.Minute})),
		metav1.ApplyOptions{FieldManager: "api-test", Force: true})
	assert.NilError(t, err)
	t.Cleanup(func() { _ = syncs.Delete(context.Background(), "typed-apply", metav1.DeleteOptions{}) })
	assert.Equal(t, applied.Spec.Source.TargetBranch, "feature-x")
	assert.Equal(t, applied.Spec.Interval.Duration, 5*time.Minute)
	assert.Equal(t, applied.Spec.Destination.Namespace, "vms")

	vrs := vc.InfrahubV1alpha1().VidraResources()
	vr, err := vrs.Apply(ctx,
		acv1alpha1.VidraResource("typed-vr").
			WithSpec(acv1alpha1.VidraResourceSpec().
				WithManifest("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").
				WithSource(acv1alpha1.ArtifactSource().WithSync("typed-apply").WithArtifactID("a1").WithChecksum("c"))),
		metav1.ApplyOptions{FieldManager: "api-test"})
	assert.NilError(t, err)
	t.Cleanup(func() { _ = vrs.Delete(context.Background(), "typed-vr", metav1.DeleteOptions{}) })
	assert.Equal(t, vr.Spec.Source.ArtifactID, "a1")

	vr.Status.ManagedResources = []v1alpha1.ManagedResource{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", Namespace: "default", Version: "v1", Resource: "configmaps"}}
	vr.Status.ObjectCount = 1
	vr, err = vrs.UpdateStatus(ctx, vr, metav1.UpdateOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(vr.Status.ManagedResources), 1)
	// Status apply configurations work too.
	vr, err = vrs.ApplyStatus(ctx, acv1alpha1.VidraResource("typed-vr").
		WithStatus(acv1alpha1.VidraResourceStatus().WithDeployState(v1alpha1.StateSucceeded)),
		metav1.ApplyOptions{FieldManager: "api-test-status", Force: true})
	assert.NilError(t, err)
	assert.Equal(t, vr.Status.DeployState, v1alpha1.StateSucceeded)
}

func containsSync(items []v1alpha1.InfrahubSync, name string) bool {
	for _, s := range items {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestInformerAndListerSeeObjects(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	factory := externalversions.NewSharedInformerFactory(vc, 0)
	syncInformer := factory.Infrahub().V1alpha1().InfrahubSyncs()
	vrInformer := factory.Infrahub().V1alpha1().VidraResources()
	syncLister, vrLister := syncInformer.Lister(), vrInformer.Lister()
	stop := make(chan struct{})
	factory.Start(stop)
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	assert.Assert(t, cache.WaitForCacheSync(ctx.Done(), syncInformer.Informer().HasSynced, vrInformer.Informer().HasSynced))

	_, err := vc.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, newSync("informer-sync"), metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = vc.InfrahubV1alpha1().InfrahubSyncs().Delete(context.Background(), "informer-sync", metav1.DeleteOptions{})
	})
	_, err = vc.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: "informer-vr"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = vc.InfrahubV1alpha1().VidraResources().Delete(context.Background(), "informer-vr", metav1.DeleteOptions{})
	})

	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, errSync := syncLister.Get("informer-sync")
		_, errVR := vrLister.Get("informer-vr")
		return errSync == nil && errVR == nil, nil
	})
	assert.NilError(t, err, "lister never saw the created objects")
}

func TestEarlierOperatorManifestsApplyUnchanged(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	for _, file := range []string{"upstream-infrahubsync.yaml", "upstream-remote.yaml"} {
		stdout, stderr, err := cp.Kubectl(ctx, "apply", "-f", filepath.Join("testdata", file))
		assert.NilError(t, err, "kubectl apply %s: %s", file, stderr)
		assert.Assert(t, is.Contains(string(stdout), "created"))
	}
	got, err := vc.InfrahubV1alpha1().InfrahubSyncs().Get(ctx, "infrahubsync-9d3c6f0e5b", metav1.GetOptions{})
	assert.NilError(t, err)
	want := v1alpha1.InfrahubSyncSpec{
		Source: v1alpha1.InfrahubSource{
			InfrahubAPIURL: "http://infrahub-server.infrahub.svc.cluster.local:8000",
			TargetBranch:   "main",
			TargetDate:     "now-2h",
			ArtifactName:   "Webserver_Manifest",
		},
		Destination: v1alpha1.Destination{Server: "https://kubernetes.default.svc", Namespace: "default", ReconcileOnEvents: true},
	}
	assert.DeepEqual(t, got.Spec, want)
	assert.Equal(t, got.Namespace, "", "a cluster-scoped object keeps no namespace")
	for _, name := range []string{"infrahubsync-9d3c6f0e5b", "synctest3"} {
		_ = vc.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, name, metav1.DeleteOptions{})
	}
}

func TestValidationRejectsBadInput(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	syncs := vc.InfrahubV1alpha1().InfrahubSyncs()
	cases := []struct {
		name    string
		mutate  func(*v1alpha1.InfrahubSync)
		message string // a part of the API server's message
	}{
		{"url-without-scheme", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "infrahub.example.com" }, "spec.source.infrahubAPIURL|must be an http(s) URL such as https://infrahub.example.com"},
		{"url-ftp", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "ftp://infrahub.example.com" }, "spec.source.infrahubAPIURL|must be an http(s) URL"},
		{"url-empty", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "" }, "spec.source.infrahubAPIURL"},
		{"url-space", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "https://infra hub" }, "spec.source.infrahubAPIURL|must be an http(s) URL"},
		{"date-days", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "-2d" }, "spec.source.targetDate|must be an ISO 8601 date-time, a date, or a duration such as 2h"},
		{"date-garbage", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "yesterday" }, "spec.source.targetDate|must be an ISO 8601 date-time, a date, or a duration such as 2h"},
		{"date-bad-month", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "2026-13-01" }, "spec.source.targetDate|must be an ISO 8601 date-time"},
		{"empty-artefact", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.ArtifactName = "" }, "spec.source.artefactName"},
		{"bad-server", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Server = "kubernetes.default.svc" }, "spec.destination.server|must be empty or an http(s) URL such as https://kubernetes.default.svc"},
		{"bad-namespace", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Namespace = "Not_A_Namespace" }, "spec.destination.namespace|must be a namespace name"},
		{"bad-interval", func(s *v1alpha1.InfrahubSync) { s.Spec.Interval = &metav1.Duration{Duration: -time.Second} }, "spec.interval|must be a duration such as 30s, 5m or 1h30m"},
		{"bad-wait-timeout", func(s *v1alpha1.InfrahubSync) {
			s.Spec.Wait = &v1alpha1.Wait{Timeout: &metav1.Duration{Duration: -time.Second}}
		}, "spec.wait.timeout|must be a duration such as 30s, 5m or 1h30m"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSync("invalid-" + tc.name)
			tc.mutate(s)
			_, err := syncs.Create(ctx, s, metav1.CreateOptions{})
			assert.Assert(t, apierrors.IsInvalid(err), "want Invalid, got %v", err)
			// "<field>|<message>": the field, then the CEL rule's message
			// after the rejected value.
			field, message, _ := strings.Cut(tc.message, "|")
			assert.ErrorContains(t, err, field)
			assert.ErrorContains(t, err, "\": "+message)
			// Human messages, never the regular expression behind them.
			assert.Assert(t, !strings.Contains(err.Error(), "should match"), err.Error())
			assert.Assert(t, !strings.Contains(err.Error(), "[0-9]"), err.Error())
		})
	}

	valid := []struct {
		name   string
		mutate func(*v1alpha1.InfrahubSync)
	}{
		{"ipv6", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "https://[2001:db8::1]:8443/infrahub" }},
		{"ipv4-port", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "http://10.0.0.5:8000" }},
		{"path-no-port", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.InfrahubAPIURL = "https://example.com/infrahub/" }},
		{"date-rfc3339", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "2026-08-20T10:00:00.123456+02:00" }},
		{"date-naive", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "2026-08-20T10:00:00" }},
		{"date-only", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "2026-08-20" }},
		{"date-relative", func(s *v1alpha1.InfrahubSync) { s.Spec.Source.TargetDate = "1h30m" }},
		{"server-local", func(s *v1alpha1.InfrahubSync) { s.Spec.Destination.Server = "https://kubernetes.default.svc" }},
	}
	for _, tc := range valid {
		t.Run("valid-"+tc.name, func(t *testing.T) {
			s := newSync("valid-" + tc.name)
			tc.mutate(s)
			_, err := syncs.Create(ctx, s, metav1.CreateOptions{})
			assert.NilError(t, err)
			_ = syncs.Delete(ctx, s.Name, metav1.DeleteOptions{})
		})
	}
}

func TestKubectlShowsWhatUsersExpect(t *testing.T) {
	ctx := testContext(t)
	vc, _, _ := clients(t)
	s := newSync("kubectl-sync")
	s.Spec.Source.TargetBranch = "feature-x"
	_, err := vc.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, s, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = vc.InfrahubV1alpha1().InfrahubSyncs().Delete(context.Background(), "kubectl-sync", metav1.DeleteOptions{})
	})
	_, err = vc.InfrahubV1alpha1().VidraResources().Create(ctx, &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: "kubectl-vr"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		_ = vc.InfrahubV1alpha1().VidraResources().Delete(context.Background(), "kubectl-vr", metav1.DeleteOptions{})
	})

	out := kubectl(t, ctx, "get", "infrahubsyncs")
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	assert.DeepEqual(t, header, []string{"NAME", "READY", "STATUS", "SUSPENDED", "BRANCH", "ARTIFACT", "HEALTH", "AGE"})
	assert.Assert(t, is.Contains(out, "kubectl-sync"))
	assert.Assert(t, is.Contains(out, "feature-x"))
	assert.Assert(t, is.Contains(out, "Webserver_Manifest"))

	// Short names resolve to the same resource.
	assert.Assert(t, is.Contains(kubectl(t, ctx, "get", "ihs"), "kubectl-sync"))
	assert.Assert(t, is.Contains(kubectl(t, ctx, "get", "vr"), "kubectl-vr"))

	// The vidra category lists both kinds.
	out = kubectl(t, ctx, "get", "vidra")
	assert.Assert(t, is.Contains(out, "infrahubsync.infrahub.operators.com/kubectl-sync"))
	assert.Assert(t, is.Contains(out, "vidraresource.infrahub.operators.com/kubectl-vr"))

	out = kubectl(t, ctx, "explain", "infrahubsync.spec.source")
	for _, want := range []string{"infrahubAPIURL", "targetBranch", "targetDate", "artefactName", "credentialsSecretRef", "base URL of Infrahub"} {
		assert.Assert(t, is.Contains(out, want), "kubectl explain lacks %q:\n%s", want, out)
	}
	out = kubectl(t, ctx, "explain", "vidraresource.status.managedResources")
	assert.Assert(t, is.Contains(out, "inventory"))
	assert.Assert(t, is.Contains(kubectl(t, ctx, "get", "vr"), "HEALTH"))

	// Health and wait explain themselves.
	for resource, wants := range map[string][]string{
		"infrahubsync.spec.wait":                              {"applied and healthy", "timeout", "HealthCheckFailed"},
		"vidraresource.spec.wait":                             {"applied and healthy", "timeout"},
		"vidraresource.status.health":                         {"current", "inProgress", "failed", "unknown", "worst health"},
		"vidraresource.status.managedResources.health":        {"Current", "InProgress", "Failed", "Unknown"},
		"infrahubsync.status.health":                          {"every VidraResource"},
		"vidraresource.status.managedResources.healthMessage": {"replicas available"},
	} {
		out := kubectl(t, ctx, "explain", resource)
		for _, want := range wants {
			assert.Assert(t, is.Contains(out, want), "kubectl explain %s lacks %q:\n%s", resource, want, out)
		}
	}
}

func kubectl(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	stdout, stderr, err := cp.Kubectl(ctx, args...)
	assert.NilError(t, err, "kubectl %s: %s", strings.Join(args, " "), stderr)
	return string(stdout)
}

func TestGarbageCollectionOfObjectsOwnedByCustomResources(t *testing.T) {
	ctx := testContext(t)
	vc, kc, _ := clients(t)
	owner, err := vc.InfrahubV1alpha1().InfrahubSyncs().Create(ctx, newSync("gc-owner"), metav1.CreateOptions{})
	assert.NilError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "gc-owned", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "InfrahubSync", Name: owner.Name, UID: owner.UID,
		}},
	}}
	_, err = kc.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	assert.NilError(t, err)
	assert.NilError(t, vc.InfrahubV1alpha1().InfrahubSyncs().Delete(ctx, owner.Name, metav1.DeleteOptions{}))
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().ConfigMaps("default").Get(ctx, "gc-owned", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	assert.NilError(t, err, "the garbage collector did not delete the owned ConfigMap")
}
