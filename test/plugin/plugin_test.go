package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

const (
	appNS      = "plugin-apps"
	fakeToken  = "plugin-token-9f8e7d"
	fakeUser   = "vidra"
	fakePass   = "pass-5a4b3c"
	credsName  = "plugin-creds"
	mainSync   = "plugin-web"
	artifactWS = "Webserver_Manifest"
)

// webManifest renders the web-01 artifact: a namespace, a Deployment, a
// Service and ConfigMaps.
func webManifest(replicas int, configMaps ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: %[1]s
spec:
  selector:
    app: web
  ports:
  - port: 80
`, appNS, replicas)
	for _, cm := range configMaps {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
data:
  owner: %s
`, cm, appNS, cm)
	}
	return []byte(b.String())
}

func configMapManifest(ns, name string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
data:
  greeting: hello
`, name, ns))
}

// statusJSON mirrors the parts of `status -o json` the tests read.
type statusJSON struct {
	Syncs []struct {
		Name                   string     `json:"name"`
		State                  string     `json:"state"`
		Message                string     `json:"message"`
		Suspended              bool       `json:"suspended"`
		Branch                 string     `json:"branch"`
		LastSyncTime           *time.Time `json:"lastSyncTime"`
		LastHandledReconcileAt string     `json:"lastHandledReconcileAt"`
		Artifacts              []struct {
			ID       string `json:"id"`
			Target   string `json:"target"`
			Status   string `json:"status"`
			Resource *struct {
				Name        string `json:"name"`
				State       string `json:"state"`
				ObjectCount int    `json:"objectCount"`
				Objects     []struct {
					Kind      string `json:"kind"`
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
					Server    string `json:"server"`
					State     string `json:"state"`
				} `json:"objects"`
			} `json:"vidraResource"`
		} `json:"artifacts"`
	} `json:"syncs"`
}

func TestVersionAndHelp(t *testing.T) {
	r := kv(t, "", "version")
	assert.Equal(t, r.code, 0, "%s", r)
	assert.Assert(t, strings.HasPrefix(r.stdout, "kubectl-vidra "+testVersion+" "), "%s", r)

	for _, args := range [][]string{{"help"}, {"help", "diff"}, {"status", "--help"}, {"credentials", "create", "-h"}, {"cluster", "--help"}} {
		r := kv(t, "", args...)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "Usage:"), "%s", r)
		assert.Equal(t, r.stderr, "")
	}
	r = kv(t, "", "frobnicate")
	assert.Equal(t, r.code, 2, "%s", r)
	assert.Assert(t, strings.Contains(oneErrorLine(t, r), `unknown command "frobnicate"`), "%s", r)
	r = kv(t, "", "status", "no-such-sync")
	assert.Equal(t, r.code, 1, "%s", r)
	assert.Equal(t, oneErrorLine(t, r), `error: InfrahubSync "no-such-sync" not found`)
}

// TestPlugin walks through the plugin's commands on one operator, in the
// order a user would: credentials, a sync, status, reconcile, suspend and
// resume, and the branch preview.
func TestPlugin(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAPIToken(fakeToken)
	e.fake.AddUser(fakeUser, fakePass)
	dir := t.TempDir()

	t.Run("credentials create", func(t *testing.T) {
		tokenFile := filepath.Join(dir, "token")
		assert.NilError(t, os.WriteFile(tokenFile, []byte(fakeToken+"\n"), 0o600))
		r := kv(t, "", "credentials", "create", e.fake.URL, "--token-file", tokenFile, "--name", credsName)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, !strings.Contains(r.stdout+r.stderr, fakeToken), "token printed: %s", r)
		assert.Assert(t, strings.Contains(r.stdout, "credentialsSecretRef:\n        name: "+credsName), "%s", r)
		s, err := e.kube.CoreV1().Secrets(operatorNamespace).Get(e.ctx, credsName, metav1.GetOptions{})
		assert.NilError(t, err)
		assert.Equal(t, string(s.Type), "Opaque")
		assert.DeepEqual(t, s.Data, map[string][]byte{"token": []byte(fakeToken)})
		assert.Equal(t, s.Labels["infrahub-api-url"], "127.0.0.1")

		// Again: refused without --overwrite, replaced with it.
		r = kv(t, "", "credentials", "create", e.fake.URL, "--token-file", tokenFile, "--name", credsName)
		assert.Equal(t, r.code, 1, "%s", r)
		assert.Assert(t, strings.Contains(oneErrorLine(t, r), "already exists; pass --overwrite"), "%s", r)
		r = kv(t, "", "credentials", "create", e.fake.URL, "--token-file", tokenFile, "--name", credsName, "--overwrite")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "replaced"), "%s", r)

		// Username and password, the password from stdin, found by the
		// operator through the legacy host label (see the legacy sync).
		r = kv(t, fakePass+"\n", "credentials", "create", e.fake.URL+"/", "--username", fakeUser, "--password-file", "-", "-n", operatorNamespace)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, !strings.Contains(r.stdout+r.stderr, fakePass), "password printed: %s", r)
		s, err = e.kube.CoreV1().Secrets(operatorNamespace).Get(e.ctx, "infrahub-credentials-127.0.0.1", metav1.GetOptions{})
		assert.NilError(t, err)
		assert.DeepEqual(t, s.Data, map[string][]byte{"username": []byte(fakeUser), "password": []byte(fakePass)})
		assert.Equal(t, s.Labels["infrahub-api-url"], "127.0.0.1")

		r = kv(t, "", "credentials", "create", e.fake.URL, "--username", fakeUser)
		assert.Equal(t, r.code, 2, "%s", r)
		oneErrorLine(t, r)
	})

	// Infrahub's main branch: web-01 (namespace, Deployment, Service, two
	// ConfigMaps) and web-02 (one ConfigMap).
	web1 := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactWS, TargetLabel: "web-01", Content: webManifest(2, "web-old", "web-kept")})
	web2 := e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: artifactWS, TargetLabel: "web-02", Content: configMapManifest(appNS, "web-02-config")})
	e.newSync(mainSync, artifactWS, func(s *v1alpha1.InfrahubSync) {
		s.Spec.Source.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: credsName}
	})
	e.waitReady(mainSync)

	t.Run("legacy credentials are read by the operator", func(t *testing.T) {
		e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Legacy_Manifest", TargetLabel: "legacy", Content: configMapManifest(appNS, "legacy-config")})
		e.newSync("plugin-legacy", "Legacy_Manifest")
		e.waitReady("plugin-legacy")
	})

	t.Run("status", func(t *testing.T) {
		vr1 := resourceName(t, e, mainSync, web1.ID)
		r := kv(t, "", "status", mainSync)
		assert.Equal(t, r.code, 0, "%s", r)
		for _, want := range []string{
			"InfrahubSync " + mainSync + "  Ready  age ",
			"source: " + e.fake.URL + " branch main artifact " + artifactWS,
			"Artifact " + web1.ID + " (web-01)  Ready  checksum ",
			"Artifact " + web2.ID + " (web-02)  Ready",
			"VidraResource " + vr1 + "  Ready  5 objects",
			"Deployment.apps " + appNS + "/web  InProgress  ",
			"Service " + appNS + "/web  Ready",
			"ConfigMap " + appNS + "/web-old  Ready",
			"Namespace " + appNS + "  Ready",
			"ConfigMap " + appNS + "/web-02-config  Ready",
			"├── ", "└── ",
		} {
			assert.Assert(t, strings.Contains(r.stdout, want), "missing %q in:\n%s", want, r.stdout)
		}
		assert.Assert(t, !strings.Contains(r.stdout, "\x1b["), "colour without a terminal:\n%s", r.stdout)

		r = kv(t, "", "status", mainSync, "--color=always")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "\x1b[32mReady\x1b[0m"), "%s", r)

		r = kv(t, "", "status", "-o", "json")
		assert.Equal(t, r.code, 0, "%s", r)
		var st statusJSON
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		assert.Equal(t, len(st.Syncs), 2) // plugin-legacy and plugin-web, by name
		s := st.Syncs[1]
		assert.Equal(t, s.Name, mainSync)
		assert.Equal(t, s.State, "Ready")
		assert.Equal(t, s.Branch, "main")
		assert.Assert(t, s.LastSyncTime != nil)
		assert.Equal(t, len(s.Artifacts), 2)
		for _, a := range s.Artifacts {
			assert.Assert(t, a.Resource != nil, "artifact %s has no VidraResource", a.ID)
			assert.Equal(t, a.Resource.State, "Ready")
			assert.Equal(t, a.Resource.ObjectCount, len(a.Resource.Objects))
			for _, o := range a.Resource.Objects {
				assert.Assert(t, o.State != "" && o.State != "Missing", "%+v", o)
			}
		}

		r = kv(t, "", "status", mainSync, "-o", "yaml")
		assert.Equal(t, r.code, 0, "%s", r)
		var asYAML statusJSON
		assert.NilError(t, yaml.Unmarshal([]byte(r.stdout), &asYAML), r.stdout)
		assert.Equal(t, asYAML.Syncs[0].Name, mainSync)
	})

	t.Run("kubectl conventions", func(t *testing.T) {
		vr1 := resourceName(t, e, mainSync, web1.ID)
		r := kv(t, "", "status", "-A", "-o", "name")
		assert.Equal(t, r.code, 0, "%s", r)
		for _, want := range []string{"infrahubsync.infrahub.operators.com/" + mainSync + "\n", "vidraresource.infrahub.operators.com/" + vr1 + "\n"} {
			assert.Assert(t, strings.Contains(r.stdout, want), "missing %q in:\n%s", want, r.stdout)
		}

		// Connection flags and -n before the command, -o wide after it.
		r = kv(t, "", "-n", operatorNamespace, "--request-timeout", "20s", "--context", "", "status", mainSync, "-o", "wide")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "VidraResource "+vr1+"  Ready  5 objects"), "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "Applied 5 objects"), "-o wide shows every message:\n%s", r.stdout)

		// --as reaches the API server: a ServiceAccount without rights is
		// refused, a runtime failure (exit 1) in one error line.
		r = kv(t, "", "status", "--as", "system:serviceaccount:default:nobody")
		assert.Equal(t, r.code, 1, "%s", r)
		assert.Assert(t, strings.Contains(oneErrorLine(t, r), `User "system:serviceaccount:default:nobody" cannot list`), "%s", r)

		// --server replaces the kubeconfig's: nothing listens on port 1.
		r = kv(t, "", "--server", "https://127.0.0.1:1", "status")
		assert.Equal(t, r.code, 1, "%s", r)
		assert.Assert(t, strings.Contains(oneErrorLine(t, r), "connection refused"), "%s", r)

		// Usage errors exit 2, before or after the command.
		for _, args := range [][]string{{"status", "-o", "table"}, {"--no-such-flag", "status"}, {"status", "a", "b"}} {
			r = kv(t, "", args...)
			assert.Equal(t, r.code, 2, "%s", r)
			oneErrorLine(t, r)
		}
	})

	t.Run("reconcile --wait", func(t *testing.T) {
		r := kv(t, "", "reconcile", mainSync, "--wait", "--timeout", "90s")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "InfrahubSync "+mainSync+" is Ready"), "%s", r)
		s := e.getSync(mainSync)
		requested := s.Annotations[v1alpha1.AnnotationReconcileRequestedAt]
		_, err := time.Parse(time.RFC3339Nano, requested)
		assert.NilError(t, err)
		assert.Equal(t, s.Status.LastHandledReconcileAt, requested)

		r = kv(t, "", "status", mainSync, "-o", "json")
		var st statusJSON
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		assert.Equal(t, st.Syncs[0].LastHandledReconcileAt, requested)
		r = kv(t, "", "status", mainSync)
		assert.Assert(t, strings.Contains(r.stdout, "last reconcile request handled: "+requested), "%s", r)

		// With --resources every VidraResource handles the request too.
		r = kv(t, "", "reconcile", mainSync, "--resources", "--wait")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "and its 2 VidraResources"), "%s", r)
		requested = e.getSync(mainSync).Annotations[v1alpha1.AnnotationReconcileRequestedAt]
		vrs, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + mainSync})
		assert.NilError(t, err)
		assert.Equal(t, len(vrs.Items), 2)
		for _, vr := range vrs.Items {
			assert.Equal(t, vr.Status.LastHandledReconcileAt, requested, vr.Name)
		}

		// Without --wait it only asks.
		r = kv(t, "", "reconcile", mainSync)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.HasPrefix(r.stdout, "Reconcile of InfrahubSync "+mainSync+" requested at "), "%s", r)
	})

	t.Run("reconcile failure and timeout", func(t *testing.T) {
		e.newSync("plugin-broken", artifactWS, func(s *v1alpha1.InfrahubSync) {
			s.Spec.Source.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: "missing-creds"}
		})
		r := kv(t, "", "reconcile", "plugin-broken", "--wait", "--timeout", "60s")
		assert.Equal(t, r.code, 1, "%s", r)
		line := oneErrorLine(t, r)
		assert.Assert(t, strings.Contains(line, "CredentialsError") && strings.Contains(line, "missing-creds not found"), "%s", r)

		r = kv(t, "", "reconcile", mainSync, "--timeout", "1ns")
		assert.Equal(t, r.code, 1, "%s", r)
		assert.Assert(t, strings.Contains(oneErrorLine(t, r), "timed out after 1ns"), "%s", r)
		assert.NilError(t, e.vidra.InfrahubV1alpha1().InfrahubSyncs().Delete(e.ctx, "plugin-broken", metav1.DeleteOptions{}))
	})

	t.Run("suspend and resume", func(t *testing.T) {
		r := kv(t, "", "suspend", mainSync)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Equal(t, r.stdout, "InfrahubSync "+mainSync+" suspended\n")
		assert.Assert(t, e.getSync(mainSync).Spec.Suspend)
		e.eventually("status shows Suspended", func() (bool, error) {
			r := kv(t, "", "status", mainSync)
			return strings.Contains(r.stdout, "InfrahubSync "+mainSync+"  Suspended"), nil
		})
		// Suspension is its own condition: Ready stays True, so alerts and
		// kubectl wait --for=condition=Ready are not tripped.
		e.eventually("a Suspended condition with Ready kept", func() (bool, error) {
			s := e.getSync(mainSync)
			ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
			return meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionSuspended) &&
				ready != nil && ready.Status == metav1.ConditionTrue && s.Status.Summary == "Suspended", nil
		})
		r = kv(t, "", "suspend", mainSync)
		assert.Equal(t, r.stdout, "InfrahubSync "+mainSync+" is already suspended\n")
		r = kv(t, "", "suspend", mainSync, "-o", "name")
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Equal(t, r.stdout, "infrahubsync.infrahub.operators.com/"+mainSync+"\n")

		r = kv(t, "", "resume", mainSync)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Equal(t, r.stdout, "InfrahubSync "+mainSync+" resumed\n")
		assert.Assert(t, !e.getSync(mainSync).Spec.Suspend)
		e.waitReady(mainSync)
		e.eventually("the Suspended condition gone after resume", func() (bool, error) {
			s := e.getSync(mainSync)
			return meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionSuspended) == nil && s.Status.Summary == "Synced 2 artifacts", nil
		})
	})

	t.Run("diff without changes", func(t *testing.T) {
		r := kv(t, "", "diff", mainSync)
		assert.Equal(t, r.code, 0, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "no changes"), "%s", r)
		assert.Assert(t, !strings.Contains(r.stdout, "==="), "%s", r)
	})

	t.Run("diff previews a branch", func(t *testing.T) {
		// On branch feature, web-01 scales to 3, drops web-old and adds
		// web-new; web-02 is deleted there (a branch sees main's
		// artifacts, as in Infrahub).
		e.fake.AddBranch("feature")
		e.fake.SetArtifact("feature", infrahubtest.ArtifactSpec{ID: web1.ID, Name: artifactWS, TargetLabel: "web-01", Content: webManifest(3, "web-kept", "web-new")})
		assert.Assert(t, e.fake.DeleteArtifact("feature", web2.ID))
		onMain := false
		for _, a := range e.fake.Artifacts("main") {
			onMain = onMain || a.ID == web2.ID
		}
		assert.Assert(t, onMain, "deleted on the branch only")
		before := snapshot(t, e)

		r := kv(t, "", "diff", mainSync, "--branch", "feature")
		assert.Equal(t, r.code, 1, "%s", r)
		out := r.stdout
		for _, want := range []string{
			"=== Deployment.apps " + appNS + "/web (changed)\n--- live/apps/Deployment/" + appNS + "/web\n+++ feature/apps/Deployment/" + appNS + "/web\n",
			"\n-  replicas: 2\n+  replicas: 3\n",
			"=== ConfigMap " + appNS + "/web-new (added)\n--- /dev/null\n+++ feature/core/ConfigMap/" + appNS + "/web-new\n",
			"\n+  name: web-new\n",
			"=== ConfigMap " + appNS + "/web-old (deleted)\n--- live/core/ConfigMap/" + appNS + "/web-old\n+++ /dev/null\n",
			"\n-  name: web-old\n",
			"=== ConfigMap " + appNS + "/web-02-config (deleted)\n",
			"feature would change 4 objects: 1 added, 1 changed, 2 deleted; 3 unchanged\n",
		} {
			assert.Assert(t, strings.Contains(out, want), "missing %q in:\n%s", want, out)
		}
		// Server-managed fields are stripped; the dry run's defaults are not.
		for _, absent := range []string{"managedFields", "resourceVersion", "uid:", "creationTimestamp: \"", "generation:", "status:", "web-kept (", "Service " + appNS} {
			assert.Assert(t, !strings.Contains(out, absent), "unexpected %q in:\n%s", absent, out)
		}
		assert.Assert(t, strings.Contains(out, "+    vidraresource.infrahub.operators.com/content-hash: "), "%s", out)
		assert.Assert(t, strings.Contains(out, "  progressDeadlineSeconds: 600"), "server defaults should show in the context:\n%s", out)

		// A dry run: nothing in the cluster changed.
		assert.DeepEqual(t, snapshot(t, e), before)
		_, err := e.dyn.Resource(gvrConfigMap).Namespace(appNS).Get(e.ctx, "web-new", metav1.GetOptions{})
		assert.Assert(t, apierrors.IsNotFound(err), "web-new was created: %v", err)

		// Colour on request, -U for context.
		r = kv(t, "", "diff", mainSync, "--branch=feature", "--color", "always", "-U", "0")
		assert.Equal(t, r.code, 1, "%s", r)
		assert.Assert(t, strings.Contains(r.stdout, "\x1b[31m-  replicas: 2\x1b[0m\n\x1b[32m+  replicas: 3\x1b[0m"), "%s", r)

		// The sync's own branch is still unchanged; an unknown branch fails.
		r = kv(t, "", "diff", mainSync, "--branch", "main")
		assert.Equal(t, r.code, 0, "%s", r)
		r = kv(t, "", "diff", mainSync, "--branch", "nope")
		assert.Equal(t, r.code, 3, "%s", r)
		assert.Assert(t, strings.Contains(oneErrorLine(t, r), `no branch "nope"`), "%s", r)
		r = kv(t, "", "diff", mainSync, "--at", "yesterday-ish")
		assert.Equal(t, r.code, 2, "%s", r)
		oneErrorLine(t, r)
	})
}

// snapshot records the objects the branch preview must not touch.
func snapshot(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	d, err := e.dyn.Resource(gvrDeployment).Namespace(appNS).Get(e.ctx, "web", metav1.GetOptions{})
	assert.NilError(t, err)
	replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
	out["deployment/web"] = fmt.Sprintf("replicas=%d generation=%d", replicas, d.GetGeneration())
	for _, name := range []string{"web-old", "web-kept", "web-02-config"} {
		cm, err := e.dyn.Resource(gvrConfigMap).Namespace(appNS).Get(e.ctx, name, metav1.GetOptions{})
		assert.NilError(t, err, name)
		out["configmap/"+name] = cm.GetResourceVersion()
	}
	vrs, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	for _, vr := range vrs.Items {
		out["vr/"+vr.Name] = fmt.Sprintf("generation=%d objects=%d", vr.Generation, len(vr.Status.ManagedResources))
	}
	return out
}

// resourceName finds the VidraResource the operator wrote for an artifact.
func resourceName(t *testing.T, e *env, sync, artifactID string) string {
	t.Helper()
	vrs, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + sync})
	assert.NilError(t, err)
	for _, vr := range vrs.Items {
		if vr.Spec.Source != nil && vr.Spec.Source.ArtifactID == artifactID {
			return vr.Name
		}
	}
	t.Fatalf("no VidraResource for artifact %s of %s", artifactID, sync)
	return ""
}

// TestClusterAdd writes a kubeconfig Secret from a kubeconfig whose
// credentials are files, then has the operator apply through it.
func TestClusterAdd(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAPIToken(fakeToken)
	dir := t.TempDir()

	// A kubeconfig for the same control plane, but referring to files, with
	// an extra context and an exec user.
	admin, err := clientcmd.LoadFromFile(cp.KubeconfigPath())
	assert.NilError(t, err)
	var server string
	var caData, certData, keyData []byte
	for _, c := range admin.Clusters {
		server, caData = c.Server, c.CertificateAuthorityData
	}
	for _, u := range admin.AuthInfos {
		certData, keyData = u.ClientCertificateData, u.ClientKeyData
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.WriteFile(p, data, 0o600))
		return name // relative: the loader resolves it against the kubeconfig's directory
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cp"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: write("ca.crt", caData)}
	cfg.Clusters["elsewhere"] = &clientcmdapi.Cluster{Server: "https://elsewhere.example.com:6443", InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: write("admin.crt", certData), ClientKey: write("admin.key", keyData)}
	cfg.AuthInfos["cloud"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "cloud-login", APIVersion: "client.authentication.k8s.io/v1"}}
	cfg.Contexts["edge"] = &clientcmdapi.Context{Cluster: "cp", AuthInfo: "admin"}
	cfg.Contexts["cloud"] = &clientcmdapi.Context{Cluster: "elsewhere", AuthInfo: "cloud"}
	cfg.CurrentContext = "edge"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	assert.NilError(t, clientcmd.WriteToFile(*cfg, kubeconfig))

	r := kv(t, "", "cluster", "add", "edge", "--kubeconfig", kubeconfig)
	assert.Equal(t, r.code, 0, "%s", r)
	assert.Assert(t, strings.Contains(r.stdout, "destination:\n      server: "+server+"\n"), "%s", r)
	assert.Assert(t, strings.Contains(r.stderr, "loopback"), "%s", r)
	assert.Assert(t, !strings.Contains(r.stdout+r.stderr, "BEGIN"), "credentials printed: %s", r)

	s, err := e.kube.CoreV1().Secrets(operatorNamespace).Get(e.ctx, "cluster-kubeconfig-edge", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, s.Labels["cluster-kubeconfig"], "127.0.0.1")
	assert.Equal(t, len(s.Data), 1)
	loaded, err := clientcmd.Load(s.Data["kubeconfig"])
	assert.NilError(t, err)
	assert.Equal(t, len(loaded.Contexts), 1)
	assert.Equal(t, len(loaded.Clusters), 1)
	assert.Equal(t, len(loaded.AuthInfos), 1)
	kctx := loaded.Contexts[loaded.CurrentContext]
	assert.Assert(t, kctx != nil)
	c, u := loaded.Clusters[kctx.Cluster], loaded.AuthInfos[kctx.AuthInfo]
	assert.Equal(t, c.Server, server)
	assert.DeepEqual(t, c.CertificateAuthorityData, caData)
	assert.DeepEqual(t, u.ClientCertificateData, certData)
	assert.DeepEqual(t, u.ClientKeyData, keyData)
	assert.Equal(t, c.CertificateAuthority+u.ClientCertificate+u.ClientKey, "")
	restCfg, err := clientcmd.NewDefaultClientConfig(*loaded, nil).ClientConfig()
	assert.NilError(t, err)
	assert.Equal(t, restCfg.Host, server)

	r = kv(t, "", "cluster", "add", "cloud", "--kubeconfig", kubeconfig)
	assert.Equal(t, r.code, 1, "%s", r)
	assert.Assert(t, strings.Contains(oneErrorLine(t, r), `exec plugin "cloud-login", which the operator cannot run`), "%s", r)
	r = kv(t, "", "cluster", "add", "nope", "--kubeconfig", kubeconfig)
	assert.Equal(t, r.code, 1, "%s", r)
	assert.Assert(t, strings.Contains(oneErrorLine(t, r), "contexts: cloud, edge"), "%s", r)

	// The operator finds the Secret by its label for a sync whose
	// destination is the printed server, and applies through it.
	tokenFile := filepath.Join(dir, "token")
	assert.NilError(t, os.WriteFile(tokenFile, []byte(fakeToken), 0o600))
	r = kv(t, "", "credentials", "create", e.fake.URL, "--token-file", tokenFile, "--name", "remote-creds", "--overwrite")
	assert.Equal(t, r.code, 0, "%s", r)
	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Remote_Manifest", TargetLabel: "edge", Content: []byte(
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plugin-remote\n---\n" + string(configMapManifest("plugin-remote", "remote-config")))})
	e.newSync("plugin-remote", "Remote_Manifest", func(s *v1alpha1.InfrahubSync) {
		s.Spec.Source.CredentialsSecretRef = &v1alpha1.LocalSecretReference{Name: "remote-creds"}
		s.Spec.Destination.Server = server
	})
	e.waitReady("plugin-remote")
	_, err = e.dyn.Resource(gvrConfigMap).Namespace("plugin-remote").Get(e.ctx, "remote-config", metav1.GetOptions{})
	assert.NilError(t, err)

	// status lists the remote objects from the inventory; diff previews the
	// remote destination through the same Secret.
	r = kv(t, "", "status", "plugin-remote")
	assert.Equal(t, r.code, 0, "%s", r)
	assert.Assert(t, strings.Contains(r.stdout, "destination: "+server), "%s", r)
	assert.Assert(t, strings.Contains(r.stdout, "ConfigMap plugin-remote/remote-config  NotChecked"), "%s", r)
	r = kv(t, "", "diff", "plugin-remote")
	assert.Equal(t, r.code, 0, "%s", r)
	assert.Assert(t, strings.Contains(r.stdout, "no changes"), "%s", r)

	e.fake.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Remote_Manifest", TargetLabel: "edge", Content: []byte(
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plugin-remote\n---\n" +
			strings.Replace(string(configMapManifest("plugin-remote", "remote-config")), "hello", "bonjour", 1))})
	r = kv(t, "", "diff", "plugin-remote")
	assert.Equal(t, r.code, 1, "%s", r)
	assert.Assert(t, strings.Contains(r.stdout, "-  greeting: hello\n+  greeting: bonjour\n"), "%s", r)
}
