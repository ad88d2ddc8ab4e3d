package infrahub_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// testClock is a settable clock shared by the fake and the client.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	user     = "admin"
	password = "s3cret-pass"
	apiToken = "06438eb2-8019-4776-878c-0941b1f1d1ec"
)

type fixture struct {
	srv    *infrahubtest.Server
	clock  *testClock
	sleeps []time.Duration
	mu     sync.Mutex
}

func newFixture(t *testing.T, opts ...infrahubtest.Option) *fixture {
	t.Helper()
	f := &fixture{clock: newClock()}
	f.srv = infrahubtest.NewServer(append([]infrahubtest.Option{infrahubtest.WithClock(f.clock.Now)}, opts...)...)
	t.Cleanup(f.srv.Close)
	f.srv.AddUser(user, password)
	f.srv.AddAPIToken(apiToken)
	return f
}

// client returns a password client that never really sleeps.
func (f *fixture) client(t *testing.T, mutate ...func(*infrahub.Config)) *infrahub.Client {
	t.Helper()
	cfg := infrahub.Config{BaseURL: f.srv.URL, Username: user, Password: password, Now: f.clock.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := infrahub.New(cfg)
	assert.NilError(t, err)
	infrahub.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.sleeps = append(f.sleeps, d)
		f.mu.Unlock()
		return ctx.Err()
	})
	return c
}

func (f *fixture) seed(t *testing.T, branch string, n int) []infrahubtest.ArtifactInfo {
	t.Helper()
	var out []infrahubtest.ArtifactInfo
	for i := range n {
		out = append(out, f.srv.SetArtifact(branch, infrahubtest.ArtifactSpec{
			TargetLabel: fmt.Sprintf("web-%03d", i),
			Content:     []byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-%03d\n", i)),
		}))
	}
	return out
}

func wantArtifact(i infrahubtest.ArtifactInfo) infrahub.Artifact {
	return infrahub.Artifact{
		ID: i.ID, Name: i.Name, Status: i.Status, ContentType: i.ContentType, Checksum: i.Checksum,
		StorageID: i.StorageID,
		TargetID:  i.TargetID, TargetLabel: i.TargetLabel, TargetKind: i.TargetKind,
	}
}

var ctx = context.Background()

func sortByID() cmp.Option {
	return cmpopts.SortSlices(func(a, b infrahub.Artifact) bool { return a.ID < b.ID })
}

func TestListArtifacts(t *testing.T) {
	f := newFixture(t)
	seeded := f.seed(t, "main", 5)
	f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{Name: "Other_Manifest", TargetLabel: "x", Content: []byte("x")})

	tests := []struct {
		name     string
		cfg      func(*infrahub.Config)
		requests int
	}{
		{name: "one page", cfg: func(*infrahub.Config) {}, requests: 1},
		{name: "pages of two", cfg: func(c *infrahub.Config) { c.PageSize = 2 }, requests: 3},
		{name: "exact pages", cfg: func(c *infrahub.Config) { c.PageSize = 5 }, requests: 1},
		{name: "api token", cfg: func(c *infrahub.Config) { c.Username, c.Password, c.APIToken = "", "", apiToken }, requests: 1},
		{name: "anonymous", cfg: func(c *infrahub.Config) { c.Username, c.Password = "", "" }, requests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.ResetCounts()
			c := f.client(t, tc.cfg)
			got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
			assert.NilError(t, err)
			var want []infrahub.Artifact
			for _, s := range seeded {
				want = append(want, wantArtifact(s))
			}
			assert.DeepEqual(t, got, want, sortByID())
			assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), tc.requests)
			for _, a := range got {
				assert.Assert(t, a.Ready())
				assert.Equal(t, a.ContentType, "application/yaml")
				// The listing does not read the definition (least privilege).
				assert.Equal(t, a.DefinitionName, "")
				assert.Equal(t, a.TargetKind, infrahubtest.DefaultTargetKind)
			}
		})
	}
}

func TestListArtifactsSortedByNameThenID(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 4)
	got, err := f.client(t).ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	for i := 1; i < len(got); i++ {
		assert.Assert(t, got[i-1].ID < got[i].ID)
	}
}

func TestListNotReadyArtifacts(t *testing.T) {
	f := newFixture(t)
	ready := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "a", Content: []byte("a: 1\n")})
	pending := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "b", Status: infrahub.StatusPending})
	failed := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "c", Content: []byte("c: 1\n")})
	f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{ID: failed.ID, Status: infrahub.StatusError})
	processing := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "d", Content: []byte("d: 1\n")})
	f.srv.SetArtifactStatus("main", processing.ID, infrahub.StatusProcessing)

	c := f.client(t)
	got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	status := map[string]string{}
	byID := map[string]infrahub.Artifact{}
	for _, a := range got {
		status[a.ID] = a.Status
		byID[a.ID] = a
	}
	assert.DeepEqual(t, status, map[string]string{
		ready.ID: "Ready", pending.ID: "Pending", failed.ID: "Error", processing.ID: "Processing",
	})
	assert.Assert(t, byID[ready.ID].Ready())
	assert.Assert(t, !byID[failed.ID].Ready())
	// An artifact in Error keeps its last content, which can still be read.
	assert.Equal(t, byID[failed.ID].Checksum, failed.Checksum)
	data, err := c.FetchContent(ctx, byID[failed.ID], infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, string(data), "c: 1\n")
	// A Pending artifact has no content.
	_, err = c.FetchContent(ctx, byID[pending.ID], infrahub.ListOptions{})
	assert.Assert(t, infrahub.IsNotFound(err), "%v", err)
}

func TestBranchesAndTimeTravel(t *testing.T) {
	f := newFixture(t)
	v1 := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: 1\n")})
	t1 := f.clock.Now()
	f.clock.Advance(time.Hour)
	v2 := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: 2\n")})
	assert.Equal(t, v1.ID, v2.ID)
	assert.Assert(t, v1.StorageID != v2.StorageID)
	f.clock.Advance(time.Minute)
	f.srv.AddBranch("feature/x")
	onBranch := f.srv.SetArtifact("feature/x", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: branch\n")})

	c := f.client(t)
	list := func(opts infrahub.ListOptions) []infrahub.Artifact {
		t.Helper()
		opts.Name = infrahubtest.DefaultArtifactName
		got, err := c.ListArtifacts(ctx, opts)
		assert.NilError(t, err)
		return got
	}
	assert.DeepEqual(t, list(infrahub.ListOptions{}), []infrahub.Artifact{wantArtifact(v2)})
	assert.DeepEqual(t, list(infrahub.ListOptions{At: infrahub.FormatAt(t1)}), []infrahub.Artifact{wantArtifact(v1)})
	// Relative: v2 was made 61 minutes ago.
	assert.DeepEqual(t, list(infrahub.ListOptions{At: "now-30s"}), []infrahub.Artifact{wantArtifact(v2)})
	assert.DeepEqual(t, list(infrahub.ListOptions{At: "1h30s"}), []infrahub.Artifact{wantArtifact(v1)})
	assert.DeepEqual(t, list(infrahub.ListOptions{Branch: "feature/x"}), []infrahub.Artifact{wantArtifact(onBranch)})

	// Content as of `at` through the artifact endpoint (no storage id).
	old := wantArtifact(v1)
	old.StorageID = ""
	data, err := c.FetchContent(ctx, old, infrahub.ListOptions{At: infrahub.FormatAt(t1)})
	assert.NilError(t, err)
	assert.Equal(t, string(data), "v: 1\n")
	// Old storage ids stay readable.
	data, err = c.FetchContent(ctx, wantArtifact(v1), infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, string(data), "v: 1\n")
	// Branch content through the artifact endpoint.
	br := wantArtifact(onBranch)
	br.StorageID = ""
	data, err = c.FetchContent(ctx, br, infrahub.ListOptions{Branch: "feature/x"})
	assert.NilError(t, err)
	assert.Equal(t, string(data), "v: branch\n")
}

func TestFetchContentPaths(t *testing.T) {
	f := newFixture(t)
	info := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("kind: Namespace\n")})
	c := f.client(t)
	a := wantArtifact(info)

	f.srv.ResetCounts()
	data, err := c.FetchContent(ctx, a, infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, string(data), "kind: Namespace\n")
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 1, "storage": 1})

	f.srv.ResetCounts()
	noStorage := a
	noStorage.StorageID = ""
	_, err = c.FetchContent(ctx, noStorage, infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"artifact": 1})

	// A storage id that vanished: fall back to the artifact endpoint.
	f.srv.ResetCounts()
	gone := a
	gone.StorageID = "00000000-0000-4000-8000-000000000000"
	_, err = c.FetchContent(ctx, gone, infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, f.srv.Counts(), map[string]int{"storage": 1, "artifact": 1})

	// Content that does not match the checksum.
	bad := a
	bad.Checksum = infrahub.Checksum([]byte("something else"))
	_, err = c.FetchContent(ctx, bad, infrahub.ListOptions{})
	assert.Assert(t, infrahub.IsChecksumMismatch(err), "%v", err)

	// Unknown artifact.
	_, err = c.FetchContent(ctx, infrahub.Artifact{ID: "nope", Checksum: a.Checksum}, infrahub.ListOptions{})
	assert.Assert(t, infrahub.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "Unable to find the node nope / CoreArtifact in the database.")
}

func TestStoredQuery(t *testing.T) {
	f := newFixture(t)
	seeded := f.seed(t, "main", 3)
	f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "p", Status: infrahub.StatusPending})

	for _, tc := range []struct {
		name   string
		cfg    func(*infrahub.Config)
		counts map[string]int
	}{
		{name: "login, POST", cfg: func(*infrahub.Config) {}, counts: map[string]int{"login": 1, "query": 1}},
		{name: "anonymous, GET", cfg: func(c *infrahub.Config) { c.Username, c.Password = "", "" }, counts: map[string]int{"query": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.ResetCounts()
			c := f.client(t, func(c *infrahub.Config) { c.QueryName = infrahub.DefaultQueryName }, tc.cfg)
			got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
			assert.NilError(t, err)
			assert.DeepEqual(t, f.srv.Counts(), tc.counts)
			assert.Equal(t, len(got), 4)
			ready := 0
			for _, a := range got {
				// ArtifactIDs selects storage_id { id }: no storage id.
				assert.Equal(t, a.StorageID, "")
				if a.Ready() {
					ready++
				}
			}
			assert.Equal(t, ready, 3)
			for _, s := range seeded {
				var a infrahub.Artifact
				for _, g := range got {
					if g.ID == s.ID {
						a = g
					}
				}
				assert.Equal(t, a.Checksum, s.Checksum)
				data, err := c.FetchContent(ctx, a, infrahub.ListOptions{})
				assert.NilError(t, err)
				assert.Equal(t, infrahub.Checksum(data), s.Checksum)
			}
		})
	}

	t.Run("unknown query", func(t *testing.T) {
		c := f.client(t, func(c *infrahub.Config) { c.QueryName = "Nope" })
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsNotFound(err), "%v", err)
	})
	t.Run("unknown branch", func(t *testing.T) {
		c := f.client(t, func(c *infrahub.Config) { c.QueryName = infrahub.DefaultQueryName })
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x", Branch: "nope"})
		assert.Assert(t, infrahub.IsBadRequest(err), "%v", err)
		assert.Assert(t, infrahub.IsBranchNotFound(err))
		assert.Equal(t, statusOf(err), 400)
	})
	t.Run("graphql error: 502 quirk", func(t *testing.T) {
		f.srv.ResetCounts()
		f.srv.InjectFault(infrahubtest.EndpointQuery, infrahubtest.Fault{GraphQLError: "boom", Times: 1})
		c := f.client(t, func(c *infrahub.Config) { c.QueryName = infrahub.DefaultQueryName })
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsGraphQL(err), "%v", err)
		assert.ErrorContains(t, err, "GraphQLQuery ArtifactIDs: boom")
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointQuery), 1) // not retried
	})
	t.Run("failing stored query", func(t *testing.T) {
		f.srv.AddStoredQuery("Broken", `query Broken($artifactname: [String]) { CoreArtifact(name__values: $artifactname) { edges { node { nope } } } }`)
		c := f.client(t, func(c *infrahub.Config) { c.QueryName = "Broken" })
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsGraphQL(err), "%v", err)
		assert.ErrorContains(t, err, "Cannot query field 'nope' on type 'CoreArtifact'.")
	})
}

func statusOf(err error) int {
	var e *infrahub.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return -1
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fixture)
		cfg    func(*infrahub.Config)
		opts   infrahub.ListOptions
		kind   infrahub.Kind
		status int
		code   string
		// requests to the graphql endpoint
		graphql int
		msg     string
	}{
		{
			name: "wrong password", cfg: func(c *infrahub.Config) { c.Password = "wrong-secret-pw" },
			kind: infrahub.KindAuth, status: 401, msg: "Incorrect password",
		},
		{
			name: "unknown user", cfg: func(c *infrahub.Config) { c.Username = "ghost" },
			kind: infrahub.KindAuth, status: 404, msg: "That login user doesn't exist in the system",
		},
		{
			name: "bad api token", cfg: func(c *infrahub.Config) { c.APIToken = "bad-token-value" },
			kind: infrahub.KindAuth, status: 401, code: "AUTHENTICATION_REQUIRED", graphql: 1, msg: "Invalid token",
		},
		{
			name:  "anonymous access disabled",
			setup: func(f *fixture) { f.srv.SetAnonymousAccess(false) },
			cfg:   func(c *infrahub.Config) { c.Username, c.Password = "", "" },
			kind:  infrahub.KindAuth, status: 401, code: "AUTHENTICATION_REQUIRED", graphql: 1,
			msg: "Authentication is required to perform this operation",
		},
		{
			name:  "permission denied",
			setup: func(f *fixture) { f.srv.DenyRead(user) },
			kind:  infrahub.KindPermission, status: 403, code: "PERMISSION_DENIED", graphql: 1,
		},
		{
			name: "unknown branch", opts: infrahub.ListOptions{Branch: "nope"},
			kind: infrahub.KindBadRequest, status: 404, code: infrahub.CodeBranchNotFound, graphql: 1,
			msg: "Branch: nope not found.",
		},
		{
			name: "bad at, refused before sending", opts: infrahub.ListOptions{At: "-2d"},
			kind: infrahub.KindBadRequest, msg: "Invalid time format for -2d",
		},
		{
			name: "at before main was created", opts: infrahub.ListOptions{At: "2020-01-01T00:00:00Z"},
			kind: infrahub.KindBadRequest, status: 422, graphql: 1, msg: "is before branch 'main' was created",
		},
		{
			name: "5xx, retried then given up",
			setup: func(f *fixture) {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 503})
			},
			kind: infrahub.KindTransient, status: 503, graphql: 3, msg: "Database unavailable",
		},
		{
			name: "429 with a long Retry-After is returned to the caller",
			setup: func(f *fixture) {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 429, RetryAfter: time.Hour})
			},
			kind: infrahub.KindTransient, status: 429, graphql: 1, msg: "shedding load",
		},
		{
			name: "graphql error in a 200 is an error, not an empty list",
			setup: func(f *fixture) {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{GraphQLError: "resolver exploded"})
			},
			kind: infrahub.KindGraphQL, status: 200, code: "UNDEFINED_ERROR", graphql: 1, msg: "resolver exploded",
		},
		{
			name: "garbage body",
			setup: func(f *fixture) {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Body: []byte("<html>proxy</html>")})
			},
			kind: infrahub.KindInvalidResponse, graphql: 1,
		},
		{
			name: "response too large", cfg: func(c *infrahub.Config) { c.MaxResponseBytes, c.APIToken = 100, apiToken },
			kind: infrahub.KindTooLarge, status: 200, graphql: 1,
		},
		{
			name: "too many pages", cfg: func(c *infrahub.Config) { c.PageSize, c.MaxPages = 1, 2 },
			kind: infrahub.KindTooLarge, graphql: 2,
		},
		{
			// Read again twice before giving up.
			name: "empty page although count says more",
			setup: func(f *fixture) {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Body: []byte(`{"data":{"CoreArtifact":{"count":5,"edges":[]}}}`)})
			},
			kind: infrahub.KindInvalidResponse, graphql: 3, msg: "empty page at offset 0 of 5 artifacts",
		},
		{
			name: "empty name", opts: infrahub.ListOptions{Name: " "},
			kind: infrahub.KindBadRequest, msg: "artifact name is required",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t, "main", 3)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := tc.cfg
			if cfg == nil {
				cfg = func(*infrahub.Config) {}
			}
			c := f.client(t, cfg)
			opts := tc.opts
			if opts.Name == "" {
				opts.Name = infrahubtest.DefaultArtifactName
			}
			got, err := c.ListArtifacts(ctx, opts)
			assert.Assert(t, err != nil, "got %d artifacts", len(got))
			assert.Assert(t, got == nil)
			var e *infrahub.Error
			assert.Assert(t, errors.As(err, &e))
			assert.Equal(t, e.Kind, tc.kind, "%v", err)
			assert.Equal(t, e.StatusCode, tc.status, "%v", err)
			if tc.code != "" {
				assert.Equal(t, e.Code, tc.code)
			}
			assert.Assert(t, is.Contains(err.Error(), tc.msg))
			assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), tc.graphql)
			// Secrets never show.
			for _, secret := range []string{password, "wrong-secret-pw", "bad-token-value", apiToken} {
				assert.Assert(t, !strings.Contains(err.Error(), secret))
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Run("transient then success", func(t *testing.T) {
		f := newFixture(t)
		f.seed(t, "main", 2)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 502, Times: 1})
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 500, Times: 1})
		got, err := f.client(t).ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
		assert.Equal(t, len(got), 2)
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 3)
		assert.Equal(t, len(f.sleeps), 2)
		// Exponential backoff with ±20% jitter from 250ms.
		assert.Assert(t, f.sleeps[0] >= 200*time.Millisecond && f.sleeps[0] <= 300*time.Millisecond, "%v", f.sleeps)
		assert.Assert(t, f.sleeps[1] >= 400*time.Millisecond && f.sleeps[1] <= 600*time.Millisecond, "%v", f.sleeps)
	})
	t.Run("429 honours Retry-After", func(t *testing.T) {
		f := newFixture(t)
		f.seed(t, "main", 1)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 429, RetryAfter: 7 * time.Second, Times: 1})
		_, err := f.client(t).ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
		assert.DeepEqual(t, f.sleeps, []time.Duration{7 * time.Second})
	})
	t.Run("truncated body is retried", func(t *testing.T) {
		f := newFixture(t)
		f.seed(t, "main", 3)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Truncate: true, Times: 1})
		got, err := f.client(t).ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
		assert.Equal(t, len(got), 3)
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 2)
	})
	t.Run("no retry on 4xx", func(t *testing.T) {
		f := newFixture(t)
		f.srv.InjectFault(infrahubtest.EndpointStorage, infrahubtest.Fault{Status: 400})
		info := f.seed(t, "main", 1)[0]
		_, err := f.client(t).FetchContent(ctx, wantArtifact(info), infrahub.ListOptions{})
		assert.Assert(t, infrahub.IsBadRequest(err), "%v", err)
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointStorage), 1)
		assert.Equal(t, len(f.sleeps), 0)
	})
	t.Run("Retries=1 disables retries", func(t *testing.T) {
		f := newFixture(t)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 503})
		_, err := f.client(t, func(c *infrahub.Config) { c.Retries = 1 }).ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsTransient(err))
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 1)
	})
	t.Run("timeout per request", func(t *testing.T) {
		f := newFixture(t)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Latency: time.Second, Times: 1})
		f.seed(t, "main", 1)
		c := f.client(t, func(c *infrahub.Config) { c.Timeout = 20 * time.Millisecond; c.APIToken = apiToken })
		got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
		assert.Equal(t, len(got), 1)
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 2)
	})
	t.Run("cancelled context stops retrying", func(t *testing.T) {
		f := newFixture(t)
		f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 503})
		c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
		cctx, cancel := context.WithCancel(ctx)
		infrahub.SetSleep(c, func(context.Context, time.Duration) error { cancel(); return context.Canceled })
		_, err := c.ListArtifacts(cctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsTransient(err))
		assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 1)
	})
	t.Run("network error", func(t *testing.T) {
		f := newFixture(t)
		url := f.srv.URL
		f.srv.Close()
		c, err := infrahub.New(infrahub.Config{BaseURL: url, Retries: 2})
		assert.NilError(t, err)
		infrahub.SetSleep(c, func(context.Context, time.Duration) error { return nil })
		_, err = c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsTransient(err), "%v", err)
		assert.Equal(t, statusOf(err), 0)
	})
}

func TestAuthentication(t *testing.T) {
	list := func(t *testing.T, c *infrahub.Client) {
		t.Helper()
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
		assert.NilError(t, err)
	}
	t.Run("one login shared by concurrent calls", func(t *testing.T) {
		f := newFixture(t)
		f.seed(t, "main", 1)
		c := f.client(t)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); list(t, c) }()
		}
		wg.Wait()
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 1, "graphql": 21})
	})
	t.Run("expired token: refresh", func(t *testing.T) {
		f := newFixture(t)
		c := f.client(t)
		list(t, c)
		f.srv.ExpireAccessTokens()
		list(t, c)
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 1, "refresh": 1, "graphql": 4})
	})
	t.Run("expiry by lifetime and clock", func(t *testing.T) {
		f := newFixture(t)
		f.srv.SetAccessTokenLifetime(time.Minute)
		c := f.client(t)
		list(t, c)
		f.clock.Advance(2 * time.Minute)
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 1, "refresh": 1, "graphql": 3})
	})
	t.Run("refresh fails: log in again", func(t *testing.T) {
		f := newFixture(t)
		c := f.client(t)
		list(t, c)
		f.srv.ExpireAccessTokens()
		f.srv.RevokeSessions()
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 2, "refresh": 1, "graphql": 3})
	})
	t.Run("refresh token expired too: log in again", func(t *testing.T) {
		f := newFixture(t)
		f.srv.SetAccessTokenLifetime(time.Minute)
		f.srv.SetRefreshTokenLifetime(time.Hour)
		c := f.client(t)
		list(t, c)
		f.clock.Advance(2 * time.Hour)
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"login": 2, "refresh": 1, "graphql": 3})
	})
	t.Run("concurrent 401s renew once", func(t *testing.T) {
		f := newFixture(t)
		c := f.client(t)
		list(t, c)
		f.srv.ExpireAccessTokens()
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() { defer wg.Done(); list(t, c) }()
		}
		wg.Wait()
		counts := f.srv.Counts()
		assert.Equal(t, counts["login"], 1)
		assert.Equal(t, counts["refresh"], 1)
	})
	t.Run("password changed: relogin fails with auth error", func(t *testing.T) {
		f := newFixture(t)
		c := f.client(t)
		list(t, c)
		f.srv.AddUser(user, "new-password")
		f.srv.ExpireAccessTokens()
		f.srv.RevokeSessions()
		_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: "x"})
		assert.Assert(t, infrahub.IsAuth(err), "%v", err)
		assert.ErrorContains(t, err, "Incorrect password")
	})
	t.Run("api token sends X-INFRAHUB-KEY, never logs in", func(t *testing.T) {
		f := newFixture(t)
		c := f.client(t, func(c *infrahub.Config) { c.APIToken = apiToken })
		list(t, c)
		f.srv.ExpireAccessTokens()
		list(t, c)
		assert.DeepEqual(t, f.srv.Counts(), map[string]int{"graphql": 2})
	})
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []string
}

func (o *recordingObserver) ObserveRequest(endpoint string, code int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, fmt.Sprintf("%s %d", endpoint, code))
}

func TestObserver(t *testing.T) {
	f := newFixture(t)
	info := f.seed(t, "main", 1)[0]
	obs := &recordingObserver{}
	c := f.client(t, func(c *infrahub.Config) { c.Observer = obs })
	f.srv.InjectFault(infrahubtest.EndpointGraphQL, infrahubtest.Fault{Status: 503, Times: 1})
	_, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	_, err = c.FetchContent(ctx, wantArtifact(info), infrahub.ListOptions{})
	assert.NilError(t, err)
	f.srv.ExpireAccessTokens()
	_, err = c.FetchContent(ctx, wantArtifact(info), infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, obs.seen, []string{
		"login 200", "graphql 503", "graphql 200", "storage 200",
		"storage 401", "refresh 200", "storage 200",
	})
}

func TestNewAndSecrets(t *testing.T) {
	for _, tc := range []struct {
		url, msg string
	}{
		{"", "empty"},
		{"ftp://host", "scheme"},
		{"http://", "missing host"},
		{"http://admin:hunter2@host:8000", "must not contain credentials"},
		{"http://host/?q=1", "query"},
		{"http://host:8000/%zz", "not a valid URL"},
	} {
		_, err := infrahub.New(infrahub.Config{BaseURL: tc.url})
		assert.ErrorContains(t, err, tc.msg)
		assert.Assert(t, !strings.Contains(err.Error(), "hunter2"))
	}
	_, err := infrahub.New(infrahub.Config{BaseURL: "http://h", Username: "u"})
	assert.Assert(t, infrahub.IsAuth(err))
	_, err = infrahub.New(infrahub.Config{BaseURL: "http://h", CABundle: []byte("not pem")})
	assert.ErrorContains(t, err, "CA bundle")

	cfg := infrahub.Config{BaseURL: "https://infrahub.example.com/prefix/", Username: "admin", Password: "hunter2", APIToken: "tok-secret"}
	c, err := infrahub.New(cfg)
	assert.NilError(t, err)
	assert.Equal(t, c.BaseURL(), "https://infrahub.example.com/prefix")
	for _, s := range []string{c.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(c)} {
		assert.Assert(t, !strings.Contains(s, "hunter2"), s)
		assert.Assert(t, !strings.Contains(s, "tok-secret"), s)
	}
	assert.Equal(t, c.String(), "infrahub.Client{url: https://infrahub.example.com/prefix, auth: api-token, list: graphql}")
}

func TestBaseURLWithPrefix(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 1)
	mux := http.NewServeMux()
	mux.Handle("/infrahub/", http.StripPrefix("/infrahub", f.srv))
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	c, err := infrahub.New(infrahub.Config{BaseURL: proxy.URL + "/infrahub/", APIToken: apiToken})
	assert.NilError(t, err)
	got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	assert.Equal(t, len(got), 1)
	_, err = c.FetchContent(ctx, got[0], infrahub.ListOptions{})
	assert.NilError(t, err)
}

func TestTLS(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 1)
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	opts := infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName}

	c, err := infrahub.New(infrahub.Config{BaseURL: ts.URL, CABundle: caPEM})
	assert.NilError(t, err)
	got, err := c.ListArtifacts(ctx, opts)
	assert.NilError(t, err)
	assert.Equal(t, len(got), 1)

	c, err = infrahub.New(infrahub.Config{BaseURL: ts.URL, InsecureSkipVerify: true})
	assert.NilError(t, err)
	_, err = c.ListArtifacts(ctx, opts)
	assert.NilError(t, err)

	c, err = infrahub.New(infrahub.Config{BaseURL: ts.URL})
	assert.NilError(t, err)
	f.srv.ResetCounts()
	_, err = c.ListArtifacts(ctx, opts)
	assert.Assert(t, infrahub.IsAuth(err), "%v", err)
	assert.ErrorContains(t, err, "TLS certificate verification failed")

}

// observerFunc adapts a function to RequestObserver.
type observerFunc func(endpoint string, code int, d time.Duration)

func (f observerFunc) ObserveRequest(endpoint string, code int, d time.Duration) {
	f(endpoint, code, d)
}

func TestListRestartsWhenArtifactsChangeWhilePaging(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 5)
	pages := 0
	added := false
	c := f.client(t, func(c *infrahub.Config) {
		c.APIToken, c.PageSize = apiToken, 2
		c.Observer = observerFunc(func(endpoint string, _ int, _ time.Duration) {
			pages++
			if pages == 1 && !added {
				// A new artifact shifts the offsets of the next pages.
				added = true
				f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web-000a", Content: []byte("new")})
			}
		})
	})
	got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	assert.Equal(t, len(got), 6)
	// Page 1 (count 5), page 2 (count 6: restart), then 3 pages of 6.
	assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 5)
}
