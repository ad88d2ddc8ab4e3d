package gitrepo_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/test/gitserver"
)

// The tests run against test/gitserver: git http-backend and git
// upload-pack over SSH on loopback.

func seed(t *testing.T, s *gitserver.Server) (*gitserver.Repo, string) {
	t.Helper()
	repo := s.NewRepo(t, "platform")
	commit := repo.Commit(t, "main", map[string]string{
		"apps/web/deploy.yaml":  "kind: Deployment\n",
		"apps/web/service.yaml": "kind: Service\n",
		"apps/db/stateful.yaml": "kind: StatefulSet\n",
		"README.md":             "# platform\n",
	}, nil, "first\n\nbody")
	return repo, commit
}

func TestResolveRefs(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	repo, first := seed(t, s)
	second := repo.Commit(t, "main", map[string]string{"apps/web/deploy.yaml": "kind: Deployment # 2\n"}, nil, "second")
	third := repo.Commit(t, "main", map[string]string{"apps/web/deploy.yaml": "kind: Deployment # 3\n"}, nil, "third")
	feature := repo.Commit(t, "feature", map[string]string{"x.yaml": "x"}, nil, "feature")
	repo.Tag(t, "v1.2.0", first, false)
	repo.Tag(t, "v1.4.1", second, true) // annotated: peeled to the commit
	repo.Tag(t, "v2.0.0", third, false)
	repo.Tag(t, "v2.1.0-rc.1", feature, false)
	repo.Tag(t, "nightly", feature, false)

	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()
	for _, tc := range []struct {
		ref  gitrepo.Ref
		want gitrepo.Resolved
	}{
		{gitrepo.Ref{Branch: "main"}, gitrepo.Resolved{RefName: "refs/heads/main", Commit: third}},
		{gitrepo.Ref{Branch: "refs/heads/main"}, gitrepo.Resolved{RefName: "refs/heads/main", Commit: third}},
		{gitrepo.Ref{Branch: "feature"}, gitrepo.Resolved{RefName: "refs/heads/feature", Commit: feature}},
		{gitrepo.Ref{Tag: "v1.2.0"}, gitrepo.Resolved{RefName: "refs/tags/v1.2.0", Commit: first}},
		{gitrepo.Ref{Tag: "v1.4.1"}, gitrepo.Resolved{RefName: "refs/tags/v1.4.1", Commit: second}},
		{gitrepo.Ref{SemVer: ">=1.2.0 <2.0.0"}, gitrepo.Resolved{RefName: "refs/tags/v1.4.1", Commit: second}},
		{gitrepo.Ref{SemVer: "^1.2"}, gitrepo.Resolved{RefName: "refs/tags/v1.4.1", Commit: second}},
		{gitrepo.Ref{SemVer: "~1.2.0"}, gitrepo.Resolved{RefName: "refs/tags/v1.2.0", Commit: first}},
		{gitrepo.Ref{SemVer: "1.x"}, gitrepo.Resolved{RefName: "refs/tags/v1.4.1", Commit: second}},
		{gitrepo.Ref{SemVer: "*"}, gitrepo.Resolved{RefName: "refs/tags/v2.0.0", Commit: third}},
		{gitrepo.Ref{SemVer: ">=2.1.0-rc.0"}, gitrepo.Resolved{RefName: "refs/tags/v2.1.0-rc.1", Commit: feature}},
		{gitrepo.Ref{Commit: second}, gitrepo.Resolved{RefName: "refs/tags/v1.4.1", Commit: second}},
		// A branch is preferred over a tag at the same commit.
		{gitrepo.Ref{Commit: strings.ToUpper(third)}, gitrepo.Resolved{RefName: "refs/heads/main", Commit: third}},
	} {
		got, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, tc.ref)
		if err != nil {
			t.Errorf("Resolve(%s): %v", tc.ref, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Resolve(%s) = %+v, want %+v", tc.ref, got, tc.want)
		}
	}
}

func TestResolveAsksForRefsOnlyAndFetchIsShallow(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	repo, first := seed(t, s)
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()

	res, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != first {
		t.Fatalf("resolved %s, want %s", res.Commit, first)
	}
	if a, f := s.Advertisements(), s.Fetches(); a != 1 || f != 0 {
		t.Fatalf("after Resolve: %d advertisements, %d fetches; want 1, 0", a, f)
	}
	snap, err := c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, res, []string{"apps/web", "/README.md", "apps/web/deploy.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Fetches(); f != 1 {
		t.Fatalf("after Fetch: %d fetches, want 1", f)
	}
	want := []gitrepo.File{
		{Path: "README.md", Content: []byte("# platform\n")},
		{Path: "apps/web/deploy.yaml", Content: []byte("kind: Deployment\n")},
		{Path: "apps/web/service.yaml", Content: []byte("kind: Service\n")},
	}
	if diff := cmp.Diff(want, snap.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if snap.Commit != first || snap.Message != "first\n\nbody\n" || snap.Author != "Vidra Test <test@vidra.invalid>" || snap.Time.IsZero() {
		t.Errorf("snapshot = %s %q %q %s", snap.Commit, snap.Message, snap.Author, snap.Time)
	}

	// A later commit, fetched shallowly by ref; then the first commit, no
	// ref points at any more, by its id.
	second := repo.Commit(t, "main", nil, []string{"apps/db"}, "drop db")
	res2, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"})
	if err != nil || res2.Commit != second {
		t.Fatalf("Resolve after a commit = %+v, %v; want %s", res2, err, second)
	}
	snap, err = c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, res2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(snap.Files); !cmp.Equal(got, []string{"README.md", "apps/web/deploy.yaml", "apps/web/service.yaml"}) {
		t.Errorf("whole tree after removing apps/db = %v", got)
	}
	pinned, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Commit: first})
	if err != nil || pinned.RefName != "" {
		t.Fatalf("Resolve(first commit) = %+v, %v; want no ref name", pinned, err)
	}
	snap, err = c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, pinned, []string{"apps/db"})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Commit != first || len(snap.Files) != 1 || snap.Files[0].Path != "apps/db/stateful.yaml" {
		t.Errorf("pinned fetch = %s %v", snap.Commit, paths(snap.Files))
	}
}

func paths(files []gitrepo.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func TestAuthentication(t *testing.T) {
	const password = "s3cret-token-value"
	s := gitserver.New(t, gitserver.Options{Username: "vidra", Password: password})
	seed(t, s)
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()

	res, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{Username: "vidra", Password: password}, gitrepo.Ref{Branch: "main"})
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if _, err := c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{Username: "vidra", Password: password}, res, nil); err != nil {
		t.Fatalf("fetch with the right password: %v", err)
	}
	// Credentials in the URL work too, and never show up in errors.
	withUser := strings.Replace(s.URL("platform"), "http://", "http://vidra:"+password+"@", 1)
	if _, err := c.Resolve(ctx, withUser, gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); err != nil {
		t.Fatalf("password in the URL: %v", err)
	}
	for name, tc := range map[string]struct {
		url  string
		auth gitrepo.Auth
	}{
		"wrong password":     {s.URL("platform"), gitrepo.Auth{Username: "vidra", Password: "wrong-" + password}},
		"no credentials":     {s.URL("platform"), gitrepo.Auth{}},
		"wrong one in URL":   {strings.Replace(s.URL("platform"), "http://", "http://vidra:x"+password+"@", 1), gitrepo.Auth{}},
		"token, no username": {s.URL("platform"), gitrepo.Auth{Password: password}},
	} {
		_, err := c.Resolve(ctx, tc.url, tc.auth, gitrepo.Ref{Branch: "main"})
		if !errors.Is(err, gitrepo.ErrAuthentication) {
			t.Errorf("%s: Resolve error = %v, want ErrAuthentication", name, err)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		_, err = c.Fetch(ctx, tc.url, tc.auth, res, nil)
		if !errors.Is(err, gitrepo.ErrAuthentication) || strings.Contains(err.Error(), password) {
			t.Errorf("%s: Fetch error = %v, want ErrAuthentication without the password", name, err)
		}
	}
	// A server that refuses everyone.
	s.SetMode(gitserver.Unauthorized)
	_, err = c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{Username: "vidra", Password: password}, gitrepo.Ref{Branch: "main"})
	if !errors.Is(err, gitrepo.ErrAuthentication) {
		t.Errorf("401 for everyone: %v, want ErrAuthentication", err)
	}
}

func TestMissingRefAndPath(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	_, first := seed(t, s)
	s.NewRepo(t, "empty")
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()
	for _, ref := range []gitrepo.Ref{
		{Branch: "release"}, {Tag: "v9"}, {SemVer: ">=3"},
	} {
		_, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, ref)
		if !errors.Is(err, gitrepo.ErrRefNotFound) {
			t.Errorf("Resolve(%s) = %v, want ErrRefNotFound", ref, err)
		}
	}
	if _, err := c.Resolve(ctx, s.URL("empty"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); !errors.Is(err, gitrepo.ErrRefNotFound) {
		t.Errorf("Resolve on an empty repository = %v, want ErrRefNotFound", err)
	}
	// A commit that does not exist on the remote.
	missing := strings.Repeat("ab", 20)
	res, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Commit: missing})
	if err != nil {
		t.Fatalf("Resolve(unknown commit) = %v; it is checked by Fetch", err)
	}
	if _, err := c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, res, nil); !errors.Is(err, gitrepo.ErrRefNotFound) {
		t.Errorf("Fetch(unknown commit) = %v, want ErrRefNotFound", err)
	}
	// A ref deleted between Resolve and Fetch.
	if _, err := c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Resolved{RefName: "refs/heads/gone", Commit: first}, nil); !errors.Is(err, gitrepo.ErrRefNotFound) {
		t.Errorf("Fetch(deleted ref) = %v, want ErrRefNotFound", err)
	}

	_, err = c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Resolved{RefName: "refs/heads/main", Commit: first}, []string{"apps/web", "apps/cache"})
	if !errors.Is(err, gitrepo.ErrPathNotFound) || !strings.Contains(err.Error(), `"apps/cache"`) {
		t.Errorf("Fetch(missing path) = %v, want ErrPathNotFound naming apps/cache", err)
	}
	_, err = c.Fetch(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Resolved{RefName: "refs/heads/main", Commit: first}, []string{"../etc"})
	if !errors.Is(err, gitrepo.ErrInvalid) {
		t.Errorf("Fetch(../etc) = %v, want ErrInvalid", err)
	}
	// A repository the server does not have.
	if _, err := c.Resolve(ctx, s.URL("nothing"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); !errors.Is(err, gitrepo.ErrUnreachable) {
		t.Errorf("Resolve(no such repository) = %v, want ErrUnreachable", err)
	}
}

func TestUnreachable(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	_, first := seed(t, s)
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()
	res := gitrepo.Resolved{RefName: "refs/heads/main", Commit: first}

	s.SetMode(gitserver.Unreachable)
	for _, url := range []string{s.URL("platform"), s.SSHURL("platform")} {
		auth := gitrepo.Auth{SSHPrivateKey: s.ClientKey, SSHKnownHosts: s.KnownHosts}
		if _, err := c.Resolve(ctx, url, auth, gitrepo.Ref{Branch: "main"}); !errors.Is(err, gitrepo.ErrUnreachable) {
			t.Errorf("Resolve(%s) while unreachable = %v, want ErrUnreachable", url, err)
		}
		if _, err := c.Fetch(ctx, url, auth, res, nil); !errors.Is(err, gitrepo.ErrUnreachable) {
			t.Errorf("Fetch(%s) while unreachable = %v, want ErrUnreachable", url, err)
		}
	}
	s.SetMode(gitserver.Normal)
	if _, err := c.Resolve(ctx, s.URL("platform"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); err != nil {
		t.Errorf("Resolve once reachable again: %v", err)
	}
	// Nobody listening at all.
	url := s.URL("platform")
	s.Close()
	if _, err := c.Resolve(ctx, url, gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); !errors.Is(err, gitrepo.ErrUnreachable) {
		t.Errorf("Resolve(closed server) = %v, want ErrUnreachable", err)
	}
}

func TestLimits(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	repo := s.NewRepo(t, "big")
	noise := make([]byte, 256<<10) // random: does not compress
	rand.Read(noise)
	commit := repo.Commit(t, "main", map[string]string{"blob/data.txt": hex.EncodeToString(noise)}, nil, "big")
	res := gitrepo.Resolved{RefName: "refs/heads/main", Commit: commit}
	ctx := context.Background()

	_, err := gitrepo.New(gitrepo.Limits{MaxBytes: 64 << 10, Timeout: time.Minute}).Fetch(ctx, s.URL("big"), gitrepo.Auth{}, res, nil)
	if !errors.Is(err, gitrepo.ErrTooLarge) || !strings.Contains(err.Error(), "65536 bytes") {
		t.Errorf("Fetch over the size limit = %v, want ErrTooLarge naming 65536 bytes", err)
	}
	if _, err := gitrepo.New(gitrepo.Limits{MaxBytes: 4 << 20, Timeout: time.Minute}).Fetch(ctx, s.URL("big"), gitrepo.Auth{}, res, nil); err != nil {
		t.Errorf("Fetch under the size limit: %v", err)
	}

	s.SetMode(gitserver.Hang)
	short := gitrepo.New(gitrepo.Limits{Timeout: 300 * time.Millisecond})
	if _, err := short.Resolve(ctx, s.URL("big"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); !errors.Is(err, gitrepo.ErrTimeout) || !strings.Contains(err.Error(), "300ms") {
		t.Errorf("Resolve on a hanging server = %v, want ErrTimeout naming 300ms", err)
	}
	if _, err := short.Fetch(ctx, s.URL("big"), gitrepo.Auth{}, res, nil); !errors.Is(err, gitrepo.ErrTimeout) {
		t.Errorf("Fetch on a hanging server = %v, want ErrTimeout", err)
	}
	// The caller's own cancellation is no timeout of ours.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := short.Resolve(cancelled, s.URL("big"), gitrepo.Auth{}, gitrepo.Ref{Branch: "main"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestSSH(t *testing.T) {
	s := gitserver.New(t, gitserver.Options{})
	_, first := seed(t, s)
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute})
	ctx := context.Background()
	auth := gitrepo.Auth{SSHPrivateKey: s.ClientKey, SSHKnownHosts: s.KnownHosts}

	res, err := c.Resolve(ctx, s.SSHURL("platform"), auth, gitrepo.Ref{Branch: "main"})
	if err != nil {
		t.Fatalf("Resolve over SSH: %v", err)
	}
	if res.Commit != first {
		t.Fatalf("Resolve over SSH = %s, want %s", res.Commit, first)
	}
	if a, f := s.Advertisements(), s.Fetches(); a != 1 || f != 0 {
		t.Fatalf("after Resolve over SSH: %d advertisements, %d fetches; want 1, 0", a, f)
	}
	snap, err := c.Fetch(ctx, s.SSHURL("platform"), auth, res, []string{"apps/db"})
	if err != nil {
		t.Fatalf("Fetch over SSH: %v", err)
	}
	if got := paths(snap.Files); !cmp.Equal(got, []string{"apps/db/stateful.yaml"}) || s.Fetches() != 1 {
		t.Errorf("Fetch over SSH = %v after %d fetches", got, s.Fetches())
	}

	for name, tc := range map[string]struct {
		auth gitrepo.Auth
		want error
	}{
		"host key not in known_hosts": {gitrepo.Auth{SSHPrivateKey: s.ClientKey, SSHKnownHosts: s.OtherHostKnownHosts()}, gitrepo.ErrHostKeyUnknown},
		"no known_hosts":              {gitrepo.Auth{SSHPrivateKey: s.ClientKey}, gitrepo.ErrHostKeyUnknown},
		"known_hosts for another host": {gitrepo.Auth{SSHPrivateKey: s.ClientKey,
			SSHKnownHosts: []byte("git.example.com " + strings.SplitN(string(s.KnownHosts), " ", 2)[1])}, gitrepo.ErrHostKeyUnknown},
		"no private key":       {gitrepo.Auth{SSHKnownHosts: s.KnownHosts}, gitrepo.ErrAuthentication},
		"a key not authorized": {gitrepo.Auth{SSHPrivateKey: gitserver.New(t, gitserver.Options{}).ClientKey, SSHKnownHosts: s.KnownHosts}, gitrepo.ErrAuthentication},
	} {
		before := s.Advertisements()
		_, err := c.Resolve(ctx, s.SSHURL("platform"), tc.auth, gitrepo.Ref{Branch: "main"})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Resolve = %v, want %v", name, err, tc.want)
		}
		if tc.want == gitrepo.ErrHostKeyUnknown && s.Advertisements() != before {
			t.Errorf("%s: the server was asked for its refs", name)
		}
		if _, err := c.Fetch(ctx, s.SSHURL("platform"), tc.auth, res, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: Fetch = %v, want %v", name, err, tc.want)
		}
	}
}
