package gitsync

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/controllers/infrahubsync"
	"github.com/vidra-operator/vidra/controllers/webhook"
	"github.com/vidra-operator/vidra/generated/clientset/versioned/fake"
	externalversions "github.com/vidra-operator/vidra/generated/informers/externalversions"
)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	commitC = "cccccccccccccccccccccccccccccccccccccccc"
)

// fakeRemote is a repository in memory: where the branch points, the files
// of each commit, and errors to answer with. It counts what it is asked.
type fakeRemote struct {
	mu         sync.Mutex
	head       string
	commits    map[string][]gitrepo.File
	resolveErr error
	fetchErr   error
	resolves   int
	fetches    int
}

func (r *fakeRemote) Resolve(_ context.Context, _ string, _ gitrepo.Auth, ref gitrepo.Ref) (gitrepo.Resolved, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolves++
	if r.resolveErr != nil {
		return gitrepo.Resolved{}, r.resolveErr
	}
	return gitrepo.Resolved{RefName: "refs/heads/" + ref.Branch, Commit: r.head}, nil
}

func (r *fakeRemote) Fetch(_ context.Context, _ string, _ gitrepo.Auth, resolved gitrepo.Resolved, paths []string) (*gitrepo.Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetches++
	if r.fetchErr != nil {
		return nil, r.fetchErr
	}
	var files []gitrepo.File
	for _, f := range r.commits[resolved.Commit] {
		for _, p := range paths {
			if p == "." || f.Path == p || strings.HasPrefix(f.Path, p+"/") {
				files = append(files, f)
				break
			}
		}
	}
	return &gitrepo.Snapshot{Commit: resolved.Commit, Message: "commit " + resolved.Commit[:4] + "\n\nbody", Files: files}, nil
}

func (r *fakeRemote) set(head string, files map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commits == nil {
		r.commits = map[string][]gitrepo.File{}
	}
	r.head = head
	r.commits[head] = nil
	for p, content := range files {
		r.commits[head] = append(r.commits[head], gitrepo.File{Path: p, Content: []byte(content)})
	}
}

func (r *fakeRemote) counts() (resolves, fetches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolves, r.fetches
}

func configMap(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  k: v\n", name)
}

// fixture runs sync passes of one GitSync against a fake clientset whose
// applies answer like the API server, a VidraResource indexer the test
// seeds and a fakeRemote.
type fixture struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	remote   *fakeRemote
	recorder *events.FakeRecorder
	clock    *clocktesting.FakePassiveClock
	obj      *v1alpha1.GitSync

	mu      sync.Mutex
	status  v1alpha1.GitSyncStatus
	applied map[string]*v1alpha1.VidraResource
}

func newFixture(t *testing.T, remote *fakeRemote, secrets []*corev1.Secret, tune ...func(*v1alpha1.GitSync)) *fixture {
	t.Helper()
	obj := &v1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", UID: types.UID("apps-uid"), Generation: 1, Finalizers: []string{v1alpha1.SyncFinalizer}},
		Spec: v1alpha1.GitSyncSpec{URL: "https://git.example.com/platform/apps.git",
			Ref: v1alpha1.GitRef{Branch: "main"}, Paths: []string{"apps"}},
	}
	for _, f := range tune {
		f(obj)
	}
	f := &fixture{t: t, client: fake.NewClientset(obj), remote: remote, obj: obj,
		recorder: events.NewFakeRecorder(50), applied: map[string]*v1alpha1.VidraResource{},
		clock: clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))}
	f.client.PrependReactor("patch", "gitsyncs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		var written v1alpha1.GitSync
		if err := json.Unmarshal(action.(k8stesting.PatchAction).GetPatch(), &written); err != nil {
			return true, nil, err
		}
		f.mu.Lock()
		f.status = written.Status
		f.mu.Unlock()
		out := obj.DeepCopy()
		out.Status = written.Status
		return true, out, nil
	})
	f.client.PrependReactor("patch", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		var written v1alpha1.VidraResource
		if err := json.Unmarshal(patch.GetPatch(), &written); err != nil {
			return true, nil, err
		}
		written.UID, written.Generation = types.UID("uid-"+patch.GetName()), 1
		f.mu.Lock()
		f.applied[patch.GetName()] = written.DeepCopy()
		f.mu.Unlock()
		return true, written.DeepCopy(), nil
	})
	f.client.PrependReactor("delete", "vidraresources", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, nil
	})
	kube := kubefake.NewClientset()
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace("vidra-system"))
	secretInformer := kubeFactory.Core().V1().Secrets()
	for _, s := range secrets {
		assert.NilError(t, secretInformer.Informer().GetIndexer().Add(s))
	}
	factory := externalversions.NewSharedInformerFactory(f.client, 0)
	c, err := NewController(f.client, factory.Infrahub().V1alpha1().GitSyncs(), factory.Infrahub().V1alpha1().VidraResources(),
		secretInformer, remote, f.recorder, nil, Options{Namespace: "vidra-system", Interval: time.Minute})
	assert.NilError(t, err)
	c.clock = f.clock
	assert.NilError(t, factory.Infrahub().V1alpha1().GitSyncs().Informer().GetIndexer().Add(obj))
	f.c = c
	return f
}

// pass runs one sync pass with the sync as last written, and returns the
// API actions it took.
func (f *fixture) pass() []k8stesting.Action {
	f.t.Helper()
	f.client.ClearActions()
	current := f.obj.DeepCopy()
	f.mu.Lock()
	current.Status = f.status
	f.mu.Unlock()
	_, _ = f.c.sync(context.Background(), current)
	return f.client.Actions()
}

// settle puts what was applied into the informer cache, reconciled and
// Ready, as the VidraResource controller would leave it.
func (f *fixture) settle() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, vr := range f.applied {
		vr = vr.DeepCopy()
		vr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Applied", ObservedGeneration: vr.Generation}}
		vr.Status.Health = &v1alpha1.HealthSummary{Status: v1alpha1.HealthCurrent, Current: 1}
		assert.NilError(f.t, f.c.vrIndex.Update(vr))
	}
}

func (f *fixture) ready() *metav1.Condition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return meta.FindStatusCondition(f.status.Conditions, v1alpha1.ConditionReady)
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// writes lists the VidraResource writes among actions, as "verb name".
func writes(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		if a.GetResource().Resource != "vidraresources" {
			continue
		}
		switch a := a.(type) {
		case k8stesting.PatchAction:
			out = append(out, "patch "+a.GetName())
		case k8stesting.DeleteAction:
			out = append(out, "delete "+a.GetName())
		}
	}
	return out
}

func statusWrites(actions []k8stesting.Action) int {
	n := 0
	for _, a := range actions {
		if a.GetResource().Resource == "gitsyncs" && a.GetVerb() == "patch" {
			n++
		}
	}
	return n
}

func twoDirectories() map[string]string {
	return map[string]string{
		"apps/web/deploy.yaml": configMap("web"),
		"apps/web/svc.yml":     configMap("web-svc"),
		"apps/db/db.yaml":      configMap("db"),
		"apps/README.md":       "not a manifest",
		"other/x.yaml":         configMap("outside"),
	}
}

func name(path string) string { return infrahubsync.ResourceName("apps", path) }

func TestTwoDirectoriesBecomeTwoVidraResources(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)

	actions := f.pass()
	assert.DeepEqual(t, sortedCopy(writes(actions)), sortedCopy([]string{"patch " + name("apps/db"), "patch " + name("apps/web")}))
	web := f.applied[name("apps/web")]
	assert.Check(t, is.Contains(web.Spec.Manifest, "name: web\n"))
	assert.Check(t, is.Contains(web.Spec.Manifest, "name: web-svc\n"))
	assert.Check(t, !strings.Contains(web.Spec.Manifest, "outside"))
	assert.Equal(t, web.Spec.Source.ArtifactID, "apps/web")
	assert.Equal(t, web.Spec.Source.Sync, "apps")
	assert.Equal(t, web.OwnerReferences[0].Kind, "GitSync")
	assert.Equal(t, web.Labels[v1alpha1.LabelSync], "apps")

	assert.Equal(t, f.status.Commit, commitA)
	assert.Equal(t, f.status.ShortCommit, commitA[:12])
	assert.Equal(t, f.status.CommitMessage, "commit aaaa")
	assert.Equal(t, f.status.ResolvedRef, "refs/heads/main")
	assert.Equal(t, f.status.UnitCount, int32(2))
	assert.Equal(t, f.status.Units[1].Path, "apps/web")
	assert.Equal(t, f.status.Units[1].Files, int32(2))
	assert.Equal(t, f.ready().Reason, ReasonResourcesNotReady)

	f.settle()
	f.pass()
	assert.Equal(t, f.ready().Reason, ReasonSynced)
	assert.Equal(t, f.ready().Status, metav1.ConditionTrue)
}

func TestRefThatDidNotMoveCostsNoFetchAndNoWrite(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()
	f.pass()

	// Before the interval: the remote is not even asked.
	f.clock.SetTime(f.clock.Now().Add(30 * time.Second))
	actions := f.pass()
	resolves, fetches := remote.counts()
	assert.Equal(t, resolves, 1)
	assert.Check(t, is.Len(actions, 0))

	// After it: one ls-remote, no fetch, no write of any kind.
	f.clock.SetTime(f.clock.Now().Add(time.Minute))
	actions = f.pass()
	resolves, fetches = remote.counts()
	assert.Equal(t, resolves, 2)
	assert.Equal(t, fetches, 1)
	assert.Check(t, is.Len(actions, 0), "%v", actions)
}

func TestChangedDirectoryRewritesOnlyItsVidraResource(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()

	files := twoDirectories()
	files["apps/web/deploy.yaml"] = configMap("web-v2")
	remote.set(commitB, files)
	f.c.Trigger("apps")
	actions := f.pass()
	assert.DeepEqual(t, writes(actions), []string{"patch " + name("apps/web")})
	assert.Check(t, is.Contains(f.applied[name("apps/web")].Spec.Manifest, "web-v2"))
	assert.Equal(t, f.status.Commit, commitB)
	assert.Check(t, is.Contains(strings.Join(f.events(), "\n"), "1 VidraResource created, updated or removed from commit bbbbbbbbbbbb"))
}

func TestForcePushToSameContentWritesNoVidraResource(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()
	f.pass()

	remote.set(commitC, twoDirectories())
	f.c.Trigger("apps")
	actions := f.pass()
	_, fetches := remote.counts()
	assert.Equal(t, fetches, 2, "a new commit is fetched")
	assert.Check(t, is.Len(writes(actions), 0))
	assert.Equal(t, f.status.Commit, commitC, "the status names the commit read")
}

func TestDeletedDirectoryIsPruned(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()

	files := twoDirectories()
	delete(files, "apps/db/db.yaml")
	remote.set(commitB, files)
	f.c.Trigger("apps")
	actions := f.pass()
	assert.DeepEqual(t, writes(actions), []string{"delete " + name("apps/db")})
	assert.Check(t, is.Contains(strings.Join(f.events(), "\n"), "Pruned"))
	assert.Equal(t, f.status.UnitCount, int32(1))
}

func TestCommitWithoutManifestsRemovesNothing(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()

	remote.set(commitB, map[string]string{"apps/README.md": "gone"})
	f.c.Trigger("apps")
	actions := f.pass()
	assert.Check(t, is.Len(writes(actions), 0))
	assert.Equal(t, f.ready().Reason, ReasonEmptyListing)
	assert.Check(t, is.Contains(f.ready().Message, "spec.allowEmpty"))
}

func TestRemoteFailuresChangeNothingAndSayWhy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		resolveErr error
		fetchErr   error
		reason     string
		stalled    bool
	}{
		{name: "unreachable", resolveErr: fmt.Errorf("ls-remote https://git.example.com/platform/apps.git: %w: connection refused", gitrepo.ErrUnreachable), reason: ReasonUnreachable},
		{name: "wrong password", resolveErr: fmt.Errorf("ls-remote: %w: authentication required", gitrepo.ErrAuthentication), reason: ReasonAuthentication, stalled: true},
		{name: "missing ref", resolveErr: fmt.Errorf("ls-remote: %w: no branch \"main\"", gitrepo.ErrRefNotFound), reason: ReasonRefNotFound, stalled: true},
		{name: "path gone", fetchErr: fmt.Errorf("fetch: %w: apps", gitrepo.ErrPathNotFound), reason: ReasonPathNotFound, stalled: true},
		{name: "host key", resolveErr: fmt.Errorf("ls-remote: %w", gitrepo.ErrHostKeyUnknown), reason: ReasonHostKeyUnknown, stalled: true},
		{name: "too large", fetchErr: fmt.Errorf("fetch: %w: received more than the limit of 1024 bytes", gitrepo.ErrTooLarge), reason: ReasonTooLarge, stalled: true},
		{name: "timeout", fetchErr: fmt.Errorf("fetch: %w: not done within the limit of 2m0s", gitrepo.ErrTimeout), reason: ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := &fakeRemote{}
			remote.set(commitA, twoDirectories())
			f := newFixture(t, remote, nil)
			f.pass()
			f.settle()
			f.events()

			remote.set(commitB, map[string]string{})
			remote.resolveErr, remote.fetchErr = tc.resolveErr, tc.fetchErr
			f.c.Trigger("apps")
			actions := f.pass()
			assert.Check(t, is.Len(writes(actions), 0), "nothing written or removed")
			cond := f.ready()
			assert.Equal(t, cond.Reason, tc.reason)
			assert.Check(t, is.Contains(cond.Message, "nothing was changed"))
			stalled := meta.FindStatusCondition(f.status.Conditions, v1alpha1.ConditionStalled)
			assert.Equal(t, stalled != nil && stalled.Status == metav1.ConditionTrue, tc.stalled)
			assert.Equal(t, f.status.Commit, commitA, "the status keeps the commit applied")
			assert.Equal(t, f.status.UnitCount, int32(2))
			evs := f.events()
			assert.Assert(t, is.Len(evs, 1))
			assert.Check(t, is.Contains(evs[0], "Warning "+tc.reason))

			// The same failure again records no second event.
			f.c.Trigger("apps")
			f.pass()
			assert.Check(t, is.Len(f.events(), 0))
		})
	}
}

func TestSecretValuesStayOutOfStatusAndEvents(t *testing.T) {
	remote := &fakeRemote{resolveErr: fmt.Errorf("ls-remote https://deploy:s3cr3t-token@git.example.com: %w", gitrepo.ErrAuthentication)}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-creds", Namespace: "vidra-system"},
		Data: map[string][]byte{"username": []byte("deploy"), "password": []byte("s3cr3t-token")}}
	f := newFixture(t, remote, []*corev1.Secret{secret}, func(gs *v1alpha1.GitSync) {
		gs.Spec.SecretRef = &v1alpha1.LocalSecretReference{Name: "git-creds"}
	})
	f.pass()
	data, err := json.Marshal(f.status)
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(data), "s3cr3t-token"), "%s", data)
	assert.Check(t, !strings.Contains(strings.Join(f.events(), "\n"), "s3cr3t-token"))
	assert.Equal(t, f.ready().Reason, ReasonAuthentication)
}

func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		name    string
		url     string
		data    map[string]string
		want    gitrepo.Auth
		wantErr string
	}{
		{name: "token", url: "https://h/r.git", data: map[string]string{"token": "t0k"}, want: gitrepo.Auth{Username: "git", Password: "t0k"}},
		{name: "basic", url: "https://h/r.git", data: map[string]string{"username": "u", "password": "p"}, want: gitrepo.Auth{Username: "u", Password: "p"}},
		{name: "neither", url: "https://h/r.git", data: map[string]string{"username": "u"}, wantErr: `holds neither "token" nor both "username" and "password"`},
		{name: "ssh", url: "ssh://git@h/r.git", data: map[string]string{"identity": "KEY", "known_hosts": "h ssh-ed25519 AAAA"},
			want: gitrepo.Auth{SSHPrivateKey: []byte("KEY"), SSHKnownHosts: []byte("h ssh-ed25519 AAAA")}},
		{name: "ssh without known_hosts", url: "git@h:r.git", data: map[string]string{"identity": "KEY"}, wantErr: `has no "known_hosts"; SSH host keys are always checked`},
		{name: "ssh without key", url: "git@h:r.git", data: map[string]string{"known_hosts": "h ssh-ed25519 AAAA"}, wantErr: `has no "identity"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "vidra-system"}, Data: map[string][]byte{}}
			for k, v := range tc.data {
				secret.Data[k] = []byte(v)
			}
			remote := &fakeRemote{}
			f := newFixture(t, remote, []*corev1.Secret{secret}, func(gs *v1alpha1.GitSync) {
				gs.Spec.URL = tc.url
				gs.Spec.SecretRef = &v1alpha1.LocalSecretReference{Name: "creds"}
			})
			got, err := f.c.auth(f.obj)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				f.pass()
				resolves, _ := remote.counts()
				assert.Equal(t, resolves, 0, "the remote is not asked without usable credentials")
				assert.Equal(t, f.ready().Reason, ReasonCredentials)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestSSHWithoutSecretIsRefused(t *testing.T) {
	remote := &fakeRemote{}
	f := newFixture(t, remote, nil, func(gs *v1alpha1.GitSync) { gs.Spec.URL = "ssh://git@git.example.com/platform/apps.git" })
	f.pass()
	resolves, _ := remote.counts()
	assert.Equal(t, resolves, 0)
	assert.Check(t, is.Contains(f.ready().Message, "known_hosts"))
}

func TestRestartTrustsTheStatusOfTheSameCommit(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()
	f.pass()
	applied := f.applied

	// A new controller (an operator restart) with the same cluster state.
	g := newFixture(t, remote, nil)
	g.status = *f.status.DeepCopy()
	for _, vr := range applied {
		g.applied[vr.Name] = vr
	}
	g.settle()
	actions := g.pass()
	resolves, fetches := remote.counts()
	assert.Equal(t, resolves, 2)
	assert.Equal(t, fetches, 1, "the commit the status names is not fetched again")
	assert.Check(t, is.Len(actions, 0), "%v", actions)

	// A VidraResource deleted by hand meanwhile is written again: the
	// commit is fetched once for it.
	assert.NilError(t, g.c.vrIndex.Delete(applied[name("apps/db")]))
	actions = g.pass()
	_, fetches = remote.counts()
	assert.Equal(t, fetches, 2)
	assert.DeepEqual(t, writes(actions), []string{"patch " + name("apps/db")})
}

func TestFileLayoutWritesOneVidraResourcePerFile(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil, func(gs *v1alpha1.GitSync) { gs.Spec.Layout = v1alpha1.GitLayoutFile })
	actions := f.pass()
	assert.DeepEqual(t, sortedCopy(writes(actions)), sortedCopy([]string{
		"patch " + name("apps/db/db.yaml"), "patch " + name("apps/web/deploy.yaml"), "patch " + name("apps/web/svc.yml")}))
}

func TestSuspendedSyncDoesNotAskTheRemote(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil)
	f.pass()
	f.settle()
	f.obj.Spec.Suspend = true
	actions := f.pass()
	resolves, _ := remote.counts()
	assert.Equal(t, resolves, 1)
	assert.DeepEqual(t, sortedCopy(writes(actions)), sortedCopy([]string{"patch " + name("apps/db"), "patch " + name("apps/web")}))
	suspended := meta.FindStatusCondition(f.status.Conditions, v1alpha1.ConditionSuspended)
	assert.Assert(t, suspended != nil)
	assert.Equal(t, suspended.Status, metav1.ConditionTrue)
}

func TestPushTriggersMatchingSyncs(t *testing.T) {
	gs := func(url string, ref v1alpha1.GitRef) *v1alpha1.GitSync {
		return &v1alpha1.GitSync{Spec: v1alpha1.GitSyncSpec{URL: url, Ref: ref}}
	}
	push := webhook.GitPush{RepoURLs: []string{"https://git.example.com/platform/apps.git", "git@git.example.com:platform/apps.git"}, Ref: "refs/heads/main"}
	assert.Check(t, pushConcerns(gs("https://git.example.com/platform/apps", v1alpha1.GitRef{Branch: "main"}), push))
	assert.Check(t, pushConcerns(gs("ssh://git@git.example.com/platform/apps.git", v1alpha1.GitRef{Branch: "main"}), push))
	assert.Check(t, !pushConcerns(gs("https://git.example.com/platform/apps.git", v1alpha1.GitRef{Branch: "dev"}), push))
	assert.Check(t, !pushConcerns(gs("https://git.example.com/platform/other.git", v1alpha1.GitRef{Branch: "main"}), push))
	assert.Check(t, !pushConcerns(gs("https://git.example.com/platform/apps.git", v1alpha1.GitRef{Commit: commitA}), push))
	tag := webhook.GitPush{RepoURLs: push.RepoURLs, Ref: "refs/tags/v1.2.0"}
	assert.Check(t, pushConcerns(gs("https://git.example.com/platform/apps.git", v1alpha1.GitRef{SemVer: ">=1.0.0"}), tag))
	assert.Check(t, pushConcerns(gs("https://git.example.com/platform/apps.git", v1alpha1.GitRef{Tag: "v1.2.0"}), tag))
	assert.Check(t, !pushConcerns(gs("https://git.example.com/platform/apps.git", v1alpha1.GitRef{Tag: "v1.1.0"}), tag))

	remote := &fakeRemote{}
	f := newFixture(t, remote, nil)
	assert.Equal(t, f.c.TriggerGitPush(push), 1)
	assert.Equal(t, f.c.queue.Len(), 1)
	assert.Equal(t, f.c.TriggerGitPush(webhook.GitPush{RepoURLs: []string{"https://elsewhere/x.git"}, Ref: "refs/heads/main"}), 0)
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// syncMetadataPatches lists the patches of the GitSync's metadata (not of
// its status) among actions.
func syncMetadataPatches(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "gitsyncs" && a.GetSubresource() == "" {
			out = append(out, string(p.GetPatch()))
		}
	}
	return out
}

// A GitSync gets the operator's finalizer; on its way out it deletes its
// VidraResources and lets go only once none is left.
func TestDeletedGitSyncDeletesItsResourcesBeforeLettingGo(t *testing.T) {
	remote := &fakeRemote{}
	remote.set(commitA, twoDirectories())
	f := newFixture(t, remote, nil, func(gs *v1alpha1.GitSync) { gs.Finalizers, gs.ResourceVersion = nil, "4" })
	actions := f.pass()
	assert.DeepEqual(t, syncMetadataPatches(actions), []string{`{"metadata":{"finalizers":["infrahub.operators.com/vidraresources"],"resourceVersion":"4"}}`})
	f.settle()

	now := metav1.Now()
	f.obj.DeletionTimestamp, f.obj.Finalizers = &now, []string{v1alpha1.SyncFinalizer}
	actions = f.pass()
	assert.DeepEqual(t, sortedCopy(writes(actions)), sortedCopy([]string{"delete " + name("apps/db"), "delete " + name("apps/web")}))
	assert.Check(t, is.Len(syncMetadataPatches(actions), 0))
	resolves, _ := remote.counts()
	assert.Equal(t, resolves, 1, "a sync on its way out does not read the repository")

	for _, vr := range f.applied {
		assert.NilError(t, f.c.vrIndex.Delete(vr))
	}
	actions = f.pass()
	assert.Check(t, is.Len(writes(actions), 0))
	assert.DeepEqual(t, syncMetadataPatches(actions), []string{`{"metadata":{"finalizers":[],"resourceVersion":"4"}}`})
}
