package infrahub_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// Tests of the behaviours of a real Infrahub that the client must handle
// (issue 13), each against the fake taught that behaviour.

func TestListingEnumMode(t *testing.T) {
	for _, enums := range []bool{false, true} {
		t.Run(fmt.Sprintf("graphql_enums=%t", enums), func(t *testing.T) {
			f := newFixture(t)
			f.srv.SetGraphQLEnums(enums)
			ready := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "a", Content: []byte("a: 1\n")})
			svg := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "b", ContentType: "image/svg+xml", Content: []byte("<svg/>")})
			f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "c", Status: "Pending"})
			got, err := f.client(t).ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
			assert.NilError(t, err)
			byLabel := map[string]infrahub.Artifact{}
			for _, a := range got {
				byLabel[a.TargetLabel] = a
			}
			assert.Equal(t, byLabel["a"].Status, infrahub.StatusReady)
			assert.Assert(t, byLabel["a"].Ready() && byLabel["a"].HasContent())
			assert.Equal(t, byLabel["a"].ContentType, "application/yaml")
			assert.Equal(t, byLabel["a"].Checksum, ready.Checksum)
			assert.Equal(t, byLabel["b"].ContentType, "image/svg+xml")
			assert.Equal(t, byLabel["b"].StorageID, svg.StorageID)
			assert.Equal(t, byLabel["c"].Status, infrahub.StatusPending)
			assert.Assert(t, !byLabel["c"].HasContent())
		})
	}
}

func TestHasContent(t *testing.T) {
	const sum = "72f8d204b6d5eccec9911b6efcd9a308"
	for _, tc := range []struct {
		status, checksum, storage string
		want                      bool
	}{
		{infrahub.StatusReady, sum, "s1", true},
		{infrahub.StatusReady, sum, "", true}, // stored queries may not select storage_id
		{infrahub.StatusReady, "", "", false},
		{infrahub.StatusError, sum, "s1", true},
		{infrahub.StatusError, sum, "", false},
		{infrahub.StatusError, "", "", false},
		{infrahub.StatusError, "not-an-md5", "s1", false},
		{infrahub.StatusPending, sum, "s1", false},
		{infrahub.StatusProcessing, sum, "s1", false},
		{"", sum, "s1", false},
	} {
		a := infrahub.Artifact{Status: tc.status, Checksum: tc.checksum, StorageID: tc.storage}
		assert.Equal(t, a.HasContent(), tc.want, "%+v", tc)
	}
}

// TestErrorWithGoodContent: a failed render followed by one producing the
// same bytes leaves the artifact in Error with its checksum and storage id;
// its content is listed as usable and downloads.
func TestErrorWithGoodContent(t *testing.T) {
	f := newFixture(t)
	content := []byte("kind: ConfigMap\n")
	v1 := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: content})
	f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "web", Status: "Error"})
	again := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: content})
	assert.Assert(t, !again.Changed)
	assert.Equal(t, again.Status, "Error")

	c := f.client(t)
	got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	assert.Equal(t, len(got), 1)
	a := got[0]
	assert.Equal(t, a.Status, infrahub.StatusError)
	assert.Equal(t, a.Checksum, v1.Checksum)
	assert.Equal(t, a.StorageID, v1.StorageID)
	assert.Assert(t, a.HasContent())
	data, err := c.FetchContent(ctx, a, infrahub.ListOptions{})
	assert.NilError(t, err)
	assert.DeepEqual(t, data, content)
}

func TestBranchSemantics(t *testing.T) {
	tests := []struct {
		name     string
		isolated bool
		// labels listed on the branch after main changed
		want []string
	}{
		{name: "isolated: origin as of the branch point", isolated: true, want: []string{"branch-only", "main-early:v1"}},
		{name: "not isolated: origin now", isolated: false, want: []string{"branch-only", "main-early:v2", "main-late:v1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, infrahubtest.WithDefaultBranch("trunk"))
			f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "main-early", Content: []byte("v1")})
			f.clock.Advance(time.Minute)
			f.srv.AddBranchFrom("feature", "", tc.isolated)
			f.clock.Advance(time.Minute)
			f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "main-early", Content: []byte("v2")})
			f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "main-late", Content: []byte("v1")})
			f.srv.SetArtifact("feature", infrahubtest.ArtifactSpec{TargetLabel: "branch-only", Content: []byte("b")})

			c := f.client(t)
			got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName, Branch: "feature"})
			assert.NilError(t, err)
			var labels []string
			for _, a := range got {
				label := a.TargetLabel
				if label != "branch-only" {
					data, err := c.FetchContent(ctx, a, infrahub.ListOptions{Branch: "feature"})
					assert.NilError(t, err)
					label += ":" + string(data)
				}
				labels = append(labels, label)
			}
			sort.Strings(labels)
			assert.DeepEqual(t, labels, tc.want)

			// The default branch is asked from Infrahub, not assumed.
			def, err := c.DefaultBranch(ctx)
			assert.NilError(t, err)
			assert.Equal(t, def, "trunk")
			onDefault, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
			assert.NilError(t, err)
			assert.Equal(t, len(onDefault), 2)
		})
	}
}

// TestBranchChangesInheritedArtifact: regenerating on a branch an artifact
// it sees from main changes it on the branch only, keeping its id.
func TestBranchChangesInheritedArtifact(t *testing.T) {
	f := newFixture(t)
	onMain := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("main")})
	f.srv.AddBranch("feature")
	onBranch := f.srv.SetArtifact("feature", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("branch")})
	assert.Equal(t, onBranch.ID, onMain.ID)
	assert.Assert(t, onBranch.StorageID != onMain.StorageID)
	c := f.client(t)
	for branch, want := range map[string]string{"main": onMain.StorageID, "feature": onBranch.StorageID} {
		got, err := c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName, Branch: branch})
		assert.NilError(t, err)
		assert.Equal(t, len(got), 1)
		assert.Equal(t, got[0].StorageID, want, branch)
	}
}

func TestDefaultBranchCached(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	for range 3 {
		name, err := c.DefaultBranch(ctx)
		assert.NilError(t, err)
		assert.Equal(t, name, "main")
	}
	assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 1)
	f.clock.Advance(11 * time.Minute)
	_, err := c.DefaultBranch(ctx)
	assert.NilError(t, err)
	assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), 2)
}

func TestListingCompleteOrError(t *testing.T) {
	tests := []struct {
		name      string
		byName    bool
		fault     *infrahubtest.Fault
		wantErr   string
		wantCount int
	}{
		{name: "ordered by id: complete", wantCount: 23},
		{name: "server orders by name only: pages overlap", byName: true, wantErr: "incomplete listing"},
		{
			name:      "server without the order argument: falls back",
			fault:     &infrahubtest.Fault{GraphQLError: "Unknown argument 'order' on field 'CoreArtifact'.", Times: 1},
			wantCount: 23,
		},
		{
			name:    "count lies",
			fault:   &infrahubtest.Fault{Body: []byte(`{"data":{"CoreArtifact":{"count":24,"edges":[]}}}`)},
			wantErr: "incomplete listing",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t, "main", 23) // all share one name: only the id orders them
			f.srv.SetPagingByName(tc.byName)
			if tc.fault != nil {
				f.srv.InjectFault(infrahubtest.EndpointGraphQL, *tc.fault)
			}
			got, err := f.client(t, func(c *infrahub.Config) { c.PageSize = 5 }).
				ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Assert(t, got == nil)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, len(got), tc.wantCount)
			seen := map[string]bool{}
			for _, a := range got {
				assert.Assert(t, !seen[a.ID])
				seen[a.ID] = true
			}
		})
	}
}

func TestLeastPrivilegeAndPriority(t *testing.T) {
	f := newFixture(t)
	f.seed(t, "main", 3)
	f.srv.RestrictView(user, "CoreArtifact")
	c := f.client(t)
	got, err := c.ListArtifacts(infrahub.WithPriority(ctx, infrahub.PriorityLow), infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	assert.Equal(t, len(got), 3)
	_, err = c.ListArtifacts(ctx, infrahub.ListOptions{Name: infrahubtest.DefaultArtifactName})
	assert.NilError(t, err)
	assert.DeepEqual(t, f.srv.Priorities(), map[string]int{"low": 1, "": 1})

	// The fake refuses what Infrahub refuses: the earlier query, which read
	// the definition's name.
	f.srv.RestrictView(apiToken, "CoreArtifact")
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/graphql", strings.NewReader(
		`{"query":"{ CoreArtifact { edges { node { id definition { node { id ... on CoreArtifactDefinition { name { value } } } } } } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-INFRAHUB-KEY", apiToken)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusForbidden)
	assert.Assert(t, is.Contains(string(body), "CoreArtifactDefinition"))
}

// TestWebhookSigningLikeInfrahub: the fake signs its own rendering of the
// payload, by release, and sends raw UTF-8; the verifier accepts every
// release and reports which; a verifier of the raw body alone (Vidra before
// this change) rejects the non-ASCII deliveries of every real release.
func TestWebhookSigningLikeInfrahub(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want infrahub.WebhookEncoding
	}{
		{infrahubtest.SigningCompactASCII, infrahub.EncodingCompactASCII},
		{infrahubtest.SigningSpacedASCII, infrahub.EncodingSpacedASCII},
		{infrahubtest.SigningPythonStr, infrahub.EncodingPythonRepr},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			secret := []byte("shared-key")
			var mu sync.Mutex
			var encodings []infrahub.WebhookEncoding
			var events []infrahub.Event
			rawOnly := 0
			var f *fixture
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				verifier := &infrahub.WebhookVerifier{Secret: secret, Now: f.clock.Now}
				_, enc, err := verifier.VerifyEncoding(r.Header, body)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("verify: %v", err)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if infrahub.SignWebhook(secret, r.Header.Get("webhook-id"), time.Unix(unixSeconds(r.Header.Get("webhook-timestamp")), 0), body) == r.Header.Get("webhook-signature") {
					rawOnly++
				}
				e, _ := infrahub.DecodeEvent(body)
				events = append(events, e)
				encodings = append(encodings, enc)
			}))
			defer receiver.Close()
			f = newFixture(t, infrahubtest.WithWebhookSigning(tc.mode), infrahubtest.WithDefaultBranch("développement"))
			f.srv.SetWebhook(receiver.URL, secret)
			a := f.srv.SetArtifact("", infrahubtest.ArtifactSpec{TargetLabel: "café «web» 🚀", Content: []byte("v: 1\n")})
			assert.Assert(t, f.srv.DeleteArtifact("", a.ID))
			assert.NilError(t, f.srv.FlushWebhooks(ctx))

			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, len(events), 2)
			assert.Equal(t, rawOnly, 0, "the raw body alone never verifies a non-ASCII delivery")
			for _, enc := range encodings {
				assert.Equal(t, enc, tc.want)
			}
			for _, e := range events {
				assert.Equal(t, e.Branch, "développement")
				assert.Equal(t, e.ArtifactID, a.ID)
			}
			// Deliveries run concurrently: one of each, in any order.
			assert.Assert(t, events[0].IsArtifactDeletion() != events[1].IsArtifactDeletion())
			// The fake's rendering and the client's re-rendering of the
			// body agree (two independent implementations).
			for _, d := range f.srv.Deliveries() {
				var again []byte
				var err error
				switch tc.want {
				case infrahub.EncodingCompactASCII:
					again, err = infrahub.PythonJSON(d.Body, true)
				case infrahub.EncodingSpacedASCII:
					again, err = infrahub.PythonJSON(d.Body, false)
				default:
					again, err = infrahub.PythonRepr(d.Body)
				}
				assert.NilError(t, err)
				assert.Equal(t, string(again), string(d.Signed))
			}
		})
	}
}

func unixSeconds(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// targetBranch "" and the API's default "main" mean the default branch by
// Infrahub's name for it, unless a branch main exists; other names are
// themselves and cost no request.
func TestResolveBranch(t *testing.T) {
	for _, tc := range []struct {
		name, defaultBranch string
		withMain            bool
		in, want            string
		requests            int
	}{
		{name: "empty, default main", defaultBranch: "main", in: "", want: "main", requests: 1},
		{name: "main, default main", defaultBranch: "main", in: "main", want: "main", requests: 1},
		{name: "empty, default trunk", defaultBranch: "trunk", in: "", want: "trunk", requests: 1},
		{name: "main, default trunk, no main", defaultBranch: "trunk", in: "main", want: "trunk", requests: 1},
		{name: "main, default trunk, main exists", defaultBranch: "trunk", withMain: true, in: "main", want: "main", requests: 1},
		{name: "other name", defaultBranch: "trunk", in: "feature", want: "feature", requests: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, infrahubtest.WithDefaultBranch(tc.defaultBranch))
			if tc.withMain {
				f.srv.AddBranch("main")
			}
			got, err := f.client(t).ResolveBranch(ctx, tc.in)
			assert.NilError(t, err)
			assert.Equal(t, got, tc.want)
			assert.Equal(t, f.srv.Count(infrahubtest.EndpointGraphQL), tc.requests)
		})
	}
}
