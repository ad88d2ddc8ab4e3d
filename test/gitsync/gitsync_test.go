// Package gitsync tests GitSyncs on a real control plane against a real Git
// server on loopback (git http-backend and upload-pack over SSH, from
// test/gitserver).
package gitsync

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/generated/clientset/versioned"
	"github.com/vidra-operator/vidra/test/controlplane"
	"github.com/vidra-operator/vidra/test/gitserver"
	"github.com/vidra-operator/vidra/test/opertest"
)

var (
	cp *controlplane.ControlPlane
	// pluginBin is the kubectl-vidra binary built for this run.
	pluginBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gitsync-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginBin = filepath.Join(dir, "kubectl-vidra")
	build := exec.Command("go", "build", "-o", pluginBin, "github.com/vidra-operator/vidra/cmd/kubectl-vidra")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: building kubectl-vidra: %v\n%s", err, out)
		return 1
	}
	return controlplane.RunMain(m, controlplane.Config{
		Name:     "gitsync",
		CRDPaths: []string{filepath.Join("..", "..", "manifests", "crds")},
	}, &cp)
}

const (
	gitUser     = "deploy"
	gitPassword = "correct-horse-battery"
	credsSecret = "git-credentials"
	vrPath      = "/apis/infrahub.operators.com/v1alpha1/vidraresources"
)

// env is one running operator with its own namespace, a destination
// namespace and a Git server.
type env struct {
	t     *testing.T
	ctx   context.Context
	kube  kubernetes.Interface
	vidra versioned.Interface
	ns    string
	dest  string
	git   *gitserver.Server
	// writes records the operator's writes of VidraResources (not their
	// status), as "METHOD name".
	mu     sync.Mutex
	writes []string
}

var envCounter atomic.Int32

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	cfg := cp.RESTConfig()
	c := opertest.NewClients(cfg)
	n := envCounter.Add(1)
	e := &env{t: t, ctx: ctx, kube: c.Kube, vidra: c.Vidra,
		ns: fmt.Sprintf("vidra-git-%d", n), dest: fmt.Sprintf("git-apps-%d", n)}
	for _, ns := range []string{e.ns, e.dest} {
		_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	e.git = gitserver.New(t, gitserver.Options{Username: gitUser, Password: gitPassword})
	e.secret(credsSecret, map[string]string{"username": gitUser, "password": gitPassword})
	t.Cleanup(func() {
		for _, ns := range []string{e.ns, e.dest} {
			_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
		cancel()
	})

	opCfg := opertest.Config(cfg, e.ns)
	opCfg.GitLimits = gitrepo.Limits{Timeout: 10 * time.Second, MaxBytes: 16 << 20}
	rest := *opCfg.RESTConfig
	rest.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if name, ok := strings.CutPrefix(req.URL.Path, vrPath+"/"); ok && !strings.Contains(name, "/") &&
				(req.Method == http.MethodPatch || req.Method == http.MethodPut || req.Method == http.MethodPost || req.Method == http.MethodDelete) {
				e.mu.Lock()
				e.writes = append(e.writes, req.Method+" "+name)
				e.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	opCfg.RESTConfig = &rest
	opertest.Start(t, opCfg, true)
	return e
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// takeWrites returns the VidraResource writes since the last call.
func (e *env) takeWrites() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.writes
	e.writes = nil
	return out
}

func (e *env) secret(name string, data map[string]string) {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, StringData: data}
	_, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = e.kube.CoreV1().Secrets(e.ns).Update(e.ctx, s, metav1.UpdateOptions{})
	}
	assert.NilError(e.t, err)
}

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

func (e *env) newGitSync(name, url string, tune ...func(*v1alpha1.GitSync)) {
	e.t.Helper()
	gs := &v1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.GitSyncSpec{
			URL: url, Ref: v1alpha1.GitRef{Branch: "main"}, Paths: []string{"apps"},
			SecretRef:   &v1alpha1.LocalSecretReference{Name: credsSecret},
			Destination: v1alpha1.Destination{Namespace: e.dest},
		},
	}
	for _, f := range tune {
		f(gs)
	}
	_, err := e.vidra.InfrahubV1alpha1().GitSyncs().Create(e.ctx, gs, metav1.CreateOptions{})
	assert.NilError(e.t, err)
}

func (e *env) gitSync(name string) *v1alpha1.GitSync {
	e.t.Helper()
	gs, err := e.vidra.InfrahubV1alpha1().GitSyncs().Get(e.ctx, name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	return gs
}

// reconcileNow asks for a pass now, as kubectl vidra reconcile does, and
// waits until the operator has handled it.
func (e *env) reconcileNow(name string) {
	e.t.Helper()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationReconcileRequestedAt, at)
	_, err := e.vidra.InfrahubV1alpha1().GitSyncs().Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	assert.NilError(e.t, err)
	e.eventually("the reconcile request to be handled", func() (bool, error) {
		return e.gitSync(name).Status.LastHandledReconcileAt == at, nil
	})
}

// waitReady waits until the sync is Ready at commit.
func (e *env) waitReady(name, commit string) {
	e.t.Helper()
	e.eventually("GitSync "+name+" Ready at "+commit, func() (bool, error) {
		gs := e.gitSync(name)
		cond := meta.FindStatusCondition(gs.Status.Conditions, v1alpha1.ConditionReady)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != gs.Generation {
			return false, fmt.Errorf("ready: %+v", cond)
		}
		if gs.Status.Commit != commit {
			return false, fmt.Errorf("commit %s", gs.Status.Commit)
		}
		return true, nil
	})
}

// waitReason waits until the sync's Ready condition has reason.
func (e *env) waitReason(name, reason string) *metav1.Condition {
	e.t.Helper()
	var got *metav1.Condition
	e.eventually("GitSync "+name+" reason "+reason, func() (bool, error) {
		gs := e.gitSync(name)
		got = meta.FindStatusCondition(gs.Status.Conditions, v1alpha1.ConditionReady)
		if got == nil || got.Reason != reason || got.ObservedGeneration != gs.Generation {
			return false, fmt.Errorf("ready: %+v", got)
		}
		return true, nil
	})
	return got
}

// resources maps the unit path of each VidraResource of the sync to it.
func (e *env) resources(name string) map[string]v1alpha1.VidraResource {
	e.t.Helper()
	list, err := e.vidra.InfrahubV1alpha1().VidraResources().List(e.ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSync + "=" + name})
	assert.NilError(e.t, err)
	out := map[string]v1alpha1.VidraResource{}
	for _, vr := range list.Items {
		if ref := metav1.GetControllerOf(&vr); ref != nil && ref.Kind == "GitSync" && vr.Spec.Source != nil {
			out[vr.Spec.Source.ArtifactID] = vr
		}
	}
	return out
}

func (e *env) configMap(name string) (*corev1.ConfigMap, error) {
	return e.kube.CoreV1().ConfigMaps(e.dest).Get(e.ctx, name, metav1.GetOptions{})
}

func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// twoDirectories commits apps/web and apps/db, one ConfigMap each.
func twoDirectories(t *testing.T, repo *gitserver.Repo) string {
	return repo.Commit(t, "main", map[string]string{
		"apps/web/configmap.yaml": configMap("web", "1"),
		"apps/db/configmap.yaml":  configMap("db", "1"),
		"apps/README.md":          "Not a manifest.\n",
	}, nil, "Two applications")
}

func writesTo(writes []string, vr string) []string {
	var out []string
	for _, w := range writes {
		if strings.HasSuffix(w, " "+vr) {
			out = append(out, w)
		}
	}
	return out
}

// One repository, followed through its life: two directories become two
// VidraResources; a commit changing one directory rewrites only that one; a
// force-push to an unrelated commit with the same content writes nothing; a
// ref that did not move costs an ls-remote and nothing else; a deleted
// directory is pruned.
func TestRepositoryFeedsVidraResources(t *testing.T) {
	e := newEnv(t)
	repo := e.git.NewRepo(t, "platform")
	first := twoDirectories(t, repo)

	e.newGitSync("platform", e.git.URL("platform"))
	e.waitReady("platform", first)
	vrs := e.resources("platform")
	assert.Equal(t, len(vrs), 2)
	web, db := vrs["apps/web"], vrs["apps/db"]
	assert.Assert(t, web.Name != "" && db.Name != "")
	e.eventually("both ConfigMaps applied", func() (bool, error) {
		_, err1 := e.configMap("web")
		_, err2 := e.configMap("db")
		return err1 == nil && err2 == nil, nil
	})
	gs := e.gitSync("platform")
	assert.Equal(t, gs.Status.CommitMessage, "Two applications")
	assert.Equal(t, gs.Status.ResolvedRef, "refs/heads/main")
	assert.Equal(t, gs.Status.UnitCount, int32(2))

	// A commit changing apps/web rewrites its VidraResource only.
	e.takeWrites()
	second := repo.Commit(t, "main", map[string]string{"apps/web/configmap.yaml": configMap("web", "2")}, nil, "Web 2")
	e.reconcileNow("platform")
	e.waitReady("platform", second)
	writes := e.takeWrites()
	assert.Equal(t, len(writesTo(writes, web.Name)), 1, "%v", writes)
	assert.Equal(t, len(writesTo(writes, db.Name)), 0, "%v", writes)
	e.eventually("web ConfigMap updated", func() (bool, error) {
		cm, err := e.configMap("web")
		return err == nil && cm.Data["value"] == "2", err
	})

	// A force-push to an unrelated commit with the same tree: fetched,
	// but no VidraResource is written.
	fetches := e.git.Fetches()
	unrelated := repo.ForcePushUnrelated(t, "main", "Rewritten history")
	e.reconcileNow("platform")
	e.waitReady("platform", unrelated)
	assert.Equal(t, e.git.Fetches(), fetches+1)
	assert.Equal(t, len(e.takeWrites()), 0)
	assert.Equal(t, e.gitSync("platform").Status.CommitMessage, "Rewritten history")

	// The ref did not move: one ref advertisement, no fetch, no write.
	fetches, ads := e.git.Fetches(), e.git.Advertisements()
	e.reconcileNow("platform")
	assert.Equal(t, e.git.Fetches(), fetches)
	assert.Equal(t, e.git.Advertisements(), ads+1)
	assert.Equal(t, len(e.takeWrites()), 0)

	// A deleted directory is pruned, with its objects.
	third := repo.Commit(t, "main", nil, []string{"apps/db"}, "Retire db")
	e.reconcileNow("platform")
	e.waitReady("platform", third)
	e.eventually("db VidraResource and ConfigMap gone", func() (bool, error) {
		_, err := e.configMap("db")
		_, still := e.resources("platform")["apps/db"]
		return apierrors.IsNotFound(err) && !still, nil
	})
	assert.Equal(t, len(e.resources("platform")), 1)
	_, err := e.configMap("web")
	assert.NilError(t, err)
}

// A repository that becomes unreachable, a wrong password, a missing ref and
// a path that disappears change nothing, and the conditions say why.
func TestRepositoryFailuresChangeNothing(t *testing.T) {
	e := newEnv(t)
	repo := e.git.NewRepo(t, "platform")
	first := twoDirectories(t, repo)
	e.newGitSync("platform", e.git.URL("platform"), func(gs *v1alpha1.GitSync) {
		gs.Spec.Paths = []string{"apps/web", "apps/db"}
	})
	e.waitReady("platform", first)
	before := e.resources("platform")
	assert.Equal(t, len(before), 2)
	unchanged := func(step string) {
		t.Helper()
		after := e.resources("platform")
		assert.Equal(t, len(after), 2, step)
		for path, vr := range before {
			assert.Equal(t, after[path].UID, vr.UID, step)
			assert.Equal(t, after[path].Generation, vr.Generation, step)
			assert.Assert(t, after[path].DeletionTimestamp == nil, step)
		}
		assert.Equal(t, len(e.takeWrites()), 0, step)
		for _, name := range []string{"web", "db"} {
			_, err := e.configMap(name)
			assert.NilError(t, err, step)
		}
	}
	e.takeWrites()

	// Unreachable.
	e.git.SetMode(gitserver.Unreachable)
	e.reconcileNow("platform")
	cond := e.waitReason("platform", "RepositoryUnavailable")
	assert.Assert(t, strings.Contains(cond.Message, "nothing was changed"), cond.Message)
	unchanged("unreachable")
	e.git.SetMode(gitserver.Normal)
	e.reconcileNow("platform")
	e.waitReady("platform", first)

	// Wrong password: the Secret's change triggers the sync by itself.
	e.secret(credsSecret, map[string]string{"username": gitUser, "password": "wrong-password-123"})
	cond = e.waitReason("platform", "AuthenticationFailed")
	assert.Assert(t, !strings.Contains(cond.Message, "wrong-password-123"), cond.Message)
	unchanged("wrong password")
	e.secret(credsSecret, map[string]string{"username": gitUser, "password": gitPassword})
	e.waitReady("platform", first)

	// Missing ref.
	_, err := e.vidra.InfrahubV1alpha1().GitSyncs().Patch(e.ctx, "platform", types.MergePatchType,
		[]byte(`{"spec":{"ref":{"branch":"no-such-branch"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	cond = e.waitReason("platform", "RefNotFound")
	assert.Assert(t, strings.Contains(cond.Message, "no-such-branch"), cond.Message)
	unchanged("missing ref")
	_, err = e.vidra.InfrahubV1alpha1().GitSyncs().Patch(e.ctx, "platform", types.MergePatchType,
		[]byte(`{"spec":{"ref":{"branch":"main"}}}`), metav1.PatchOptions{})
	assert.NilError(t, err)
	e.waitReady("platform", first)

	// A path named in spec.paths disappears.
	repo.Commit(t, "main", nil, []string{"apps/db"}, "Retire db")
	e.reconcileNow("platform")
	cond = e.waitReason("platform", "PathNotFound")
	assert.Assert(t, strings.Contains(cond.Message, "apps/db"), cond.Message)
	unchanged("path gone")
	assert.Equal(t, e.gitSync("platform").Status.Commit, first, "the status keeps the commit applied")

	// Each failure was told once as a Warning event.
	events, err := e.kube.EventsV1().Events("default").List(e.ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	seen := map[string]bool{}
	for _, ev := range events.Items {
		if ev.Regarding.Kind == "GitSync" && ev.Regarding.Name == "platform" && ev.Type == corev1.EventTypeWarning {
			seen[ev.Reason] = true
			assert.Assert(t, !strings.Contains(ev.Note, gitPassword) && !strings.Contains(ev.Note, "wrong-password-123"), ev.Note)
		}
	}
	for _, reason := range []string{"RepositoryUnavailable", "AuthenticationFailed", "RefNotFound", "PathNotFound"} {
		assert.Assert(t, seen[reason], "no Warning event %s: %v", reason, seen)
	}
}

// Over SSH a repository is read with a key and known_hosts; a remote whose
// host key is not in known_hosts is refused before anything is read.
func TestSSHHostKeyIsChecked(t *testing.T) {
	e := newEnv(t)
	repo := e.git.NewRepo(t, "platform")
	first := twoDirectories(t, repo)
	e.secret("ssh-good", map[string]string{"identity": string(e.git.ClientKey), "known_hosts": string(e.git.KnownHosts)})
	e.secret("ssh-other-host", map[string]string{"identity": string(e.git.ClientKey), "known_hosts": string(e.git.OtherHostKnownHosts())})

	e.newGitSync("over-ssh", e.git.SSHURL("platform"), func(gs *v1alpha1.GitSync) {
		gs.Spec.SecretRef = &v1alpha1.LocalSecretReference{Name: "ssh-good"}
	})
	e.waitReady("over-ssh", first)
	assert.Equal(t, len(e.resources("over-ssh")), 2)

	fetches := e.git.Fetches()
	e.newGitSync("unknown-host", e.git.SSHURL("platform"), func(gs *v1alpha1.GitSync) {
		gs.Spec.SecretRef = &v1alpha1.LocalSecretReference{Name: "ssh-other-host"}
	})
	cond := e.waitReason("unknown-host", "HostKeyUnknown")
	assert.Assert(t, strings.Contains(cond.Message, "known_hosts"), cond.Message)
	assert.Equal(t, len(e.resources("unknown-host")), 0)
	assert.Equal(t, e.git.Fetches(), fetches)
	stalled := meta.FindStatusCondition(e.gitSync("unknown-host").Status.Conditions, v1alpha1.ConditionStalled)
	assert.Assert(t, stalled != nil && stalled.Status == metav1.ConditionTrue)
}

// kubectlVidra runs the plugin against the control plane.
func kubectlVidra(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(pluginBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.KubeconfigPath(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl vidra status, reconcile, suspend and resume work on GitSyncs.
func TestPluginOnGitSyncs(t *testing.T) {
	e := newEnv(t)
	repo := e.git.NewRepo(t, "platform")
	first := twoDirectories(t, repo)
	e.newGitSync("platform", e.git.URL("platform"))
	e.waitReady("platform", first)

	out, err := kubectlVidra(t, "status", "platform")
	assert.NilError(t, err, out)
	for _, want := range []string{"GitSync platform", "Ready", e.git.URL("platform") + " branch main paths apps at " + first[:12] + ` "Two applications"`,
		"Directory apps/db", "Directory apps/web", "ConfigMap " + e.dest + "/web"} {
		assert.Assert(t, strings.Contains(out, want), "no %q in:\n%s", want, out)
	}
	out, err = kubectlVidra(t, "status", "-o", "name")
	assert.NilError(t, err, out)
	assert.Assert(t, strings.Contains(out, "gitsync.infrahub.operators.com/platform\n"), out)

	second := repo.Commit(t, "main", map[string]string{"apps/web/configmap.yaml": configMap("web", "2")}, nil, "Web 2")
	out, err = kubectlVidra(t, "reconcile", "platform", "--wait", "--timeout", "60s")
	assert.NilError(t, err, out)
	assert.Assert(t, strings.Contains(out, "Reconcile of GitSync platform requested"), out)
	assert.Equal(t, e.gitSync("platform").Status.Commit, second)

	out, err = kubectlVidra(t, "suspend", "gitsync/platform")
	assert.NilError(t, err, out)
	assert.Equal(t, out, "GitSync platform suspended\n")
	assert.Assert(t, e.gitSync("platform").Spec.Suspend)
	e.eventually("VidraResources suspended", func() (bool, error) {
		for _, vr := range e.resources("platform") {
			if !vr.Spec.Suspend {
				return false, nil
			}
		}
		return true, nil
	})
	out, err = kubectlVidra(t, "resume", "platform")
	assert.NilError(t, err, out)
	assert.Equal(t, out, "GitSync platform resumed\n")
	e.waitReady("platform", second)

	out, err = kubectlVidra(t, "reconcile", "no-such-sync")
	assert.Assert(t, err != nil)
	assert.Assert(t, strings.Contains(out, `InfrahubSync or GitSync "no-such-sync" not found`), out)
}
