package infrahubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/vidra-operator/vidra/infrahub"
)

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, s *Server, method, path string, hdr map[string]string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	assert.NilError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

var jsonCT = map[string]string{"Content-Type": "application/json"}

func gql(t *testing.T, s *Server, path, query string, vars map[string]any, hdr map[string]string) reply {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return do(t, s, http.MethodPost, path, h, string(body))
}

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	s.AddUser("admin", "infrahub")
	s.AddAPIToken("tok")
	return s
}

func login(t *testing.T, s *Server) (string, string) {
	t.Helper()
	r := do(t, s, http.MethodPost, "/api/auth/login", jsonCT, `{"username":"admin","password":"infrahub"}`)
	assert.Equal(t, r.status, 200, r.body)
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.body), &tok))
	return tok.AccessToken, tok.RefreshToken
}

func TestAuthEndpoints(t *testing.T) {
	s := newTestServer(t)
	access, refresh := login(t, s)
	parts := strings.Split(access, ".")
	assert.Equal(t, len(parts), 3)
	c, ok := parseJWT(s.st.jwtKey, access)
	assert.Assert(t, ok)
	assert.Equal(t, c.Type, "access")
	assert.Equal(t, c.Exp-c.Iat, int64(3600))

	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		contains                 string
	}{
		{"unknown user", "POST", "/api/auth/login", `{"username":"x","password":"y"}`, jsonCT, 404,
			`{"data":null,"errors":[{"extensions":{"code":404},"message":"That login user doesn't exist in the system"}]}`},
		{"wrong password", "POST", "/api/auth/login", `{"username":"admin","password":"y"}`, jsonCT, 401, `"message":"Incorrect password"`},
		{"missing password", "POST", "/api/auth/login", `{"username":"admin"}`, jsonCT, 422, `"loc":["body","password"]`},
		{"refresh without token", "POST", "/api/auth/refresh", "", nil, 401, "A JWT refresh token is required to perform this operation."},
		{"refresh with access token", "POST", "/api/auth/refresh", "", map[string]string{"Authorization": "Bearer " + access}, 401,
			"Invalid token, current token is not a refresh token"},
		{"refresh garbage", "POST", "/api/auth/refresh", "", map[string]string{"Authorization": "Bearer x.y.z"}, 401, `"Invalid token"`},
		{"refresh ok", "POST", "/api/auth/refresh", "", map[string]string{"Authorization": "Bearer " + refresh}, 200, `{"access_token":"`},
		{"bad api key", "GET", "/api/info", "", map[string]string{"X-INFRAHUB-KEY": "nope"}, 401, `"Invalid token"`},
		{"api key", "GET", "/api/info", "", map[string]string{"x-infrahub-key": "tok"}, 200, `"version":"1.11.0"`},
		{"api key as bearer is a bad JWT", "GET", "/api/info", "", map[string]string{"Authorization": "Bearer tok"}, 401, `"Invalid token"`},
		{"bearer", "GET", "/api/info", "", map[string]string{"Authorization": "Bearer " + access}, 200, `"deployment_id"`},
		{"cookie", "GET", "/api/info", "", map[string]string{"Cookie": "access_token=" + access}, 200, `"deployment_id"`},
		{"anonymous GET", "GET", "/api/info", "", nil, 200, `"version"`},
		{"anonymous POST", "POST", "/api/query/ArtifactIDs", "", nil, 401, `"Authentication is required"`},
		{"config needs nothing", "GET", "/api/config", "", map[string]string{"X-INFRAHUB-KEY": "nope"}, 200, `"allow_anonymous_access":true`},
		{"unknown api path", "GET", "/api/nope/x", "", nil, 404, `The requested endpoint /api/nope/x does not exist`},
		{"wrong method", "PUT", "/api/artifact/x", "", nil, 405, `Method Not Allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path, tc.hdr, tc.body)
			assert.Equal(t, r.status, tc.status, r.body)
			assert.Assert(t, is.Contains(r.body, tc.contains))
			assert.Assert(t, r.header.Get("X-Process-Time") != "")
		})
	}

	// Logout invalidates the refresh token.
	r := do(t, s, "POST", "/api/auth/logout", map[string]string{"Authorization": "Bearer " + access}, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, r.body, "null")
	r = do(t, s, "POST", "/api/auth/refresh", map[string]string{"Authorization": "Bearer " + refresh}, "")
	assert.Equal(t, r.status, 401)
	assert.Assert(t, is.Contains(r.body, "The provided refresh token has been invalidated in the database"))

	s.SetAnonymousAccess(false)
	r = do(t, s, "GET", "/api/info", nil, "")
	assert.Equal(t, r.status, 401)
	r = gql(t, s, "/graphql", `{ Branch { name } }`, nil, nil)
	assert.Equal(t, r.status, 401)
	assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":"AUTHENTICATION_REQUIRED","data":{},"http_status":401},"message":"Authentication is required to perform this operation"}]}`)
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	s := NewServer(WithClock(func() time.Time { return now }))
	defer s.Close()
	s.AddUser("admin", "infrahub")
	s.SetAccessTokenLifetime(time.Minute)
	access, _ := login(t, s)
	now = now.Add(2 * time.Minute)
	r := do(t, s, "GET", "/api/storage/object/x", map[string]string{"Authorization": "Bearer " + access}, "")
	assert.Equal(t, r.status, 401)
	assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":401},"message":"Expired Signature"}]}`)
	r = gql(t, s, "/graphql", `{ Branch { name } }`, nil, map[string]string{"Authorization": "Bearer " + access})
	assert.Equal(t, r.status, 401)
	assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":"TOKEN_EXPIRED","data":{"expired_at":null},"http_status":401},"message":"Expired Signature"}]}`)
}

func TestArtifactAndStorageEndpoints(t *testing.T) {
	s := newTestServer(t)
	info := s.SetArtifact("main", ArtifactSpec{TargetLabel: "web", ContentType: "text/plain", Content: []byte("hello\n")})
	pending := s.SetArtifact("main", ArtifactSpec{TargetLabel: "p", Status: "Pending"})
	assert.Equal(t, info.Checksum, "b1946ac92492d2347c6235b4d2611184") // md5("hello\n")

	r := do(t, s, "GET", "/api/artifact/"+info.ID, nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, r.body, "hello\n")
	assert.DeepEqual(t, r.header.Values("Content-Type"), []string{"text/plain"}) // no charset

	r = do(t, s, "GET", "/api/storage/object/"+info.StorageID, nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, r.body, "hello\n")
	_, hasCT := r.header["Content-Type"]
	assert.Assert(t, !hasCT, "storage objects come without Content-Type: %v", r.header)

	for _, tc := range []struct{ path, msg string }{
		{"/api/artifact/nope", "Unable to find the node nope / CoreArtifact in the database."},
		{"/api/artifact/" + pending.ID, "Unable to find the node None / StorageObject in the database."},
		{"/api/storage/object/nope", "Unable to find the node nope / StorageObject in the database."},
	} {
		r := do(t, s, "GET", tc.path, nil, "")
		assert.Equal(t, r.status, 404)
		assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":404},"message":"`+tc.msg+`"}]}`)
	}
	r = do(t, s, "GET", "/api/artifact/"+info.ID+"?branch=nope", nil, "")
	assert.Equal(t, r.status, 400)
	assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":400},"message":"Branch: nope not found."}]}`)
	r = do(t, s, "GET", "/api/artifact/"+info.ID+"?at=-2d", nil, "")
	assert.Equal(t, r.status, 400)
	assert.Assert(t, is.Contains(r.body, "Invalid time format for -2d"))
	r = do(t, s, "GET", "/api/artifact/"+info.ID+"?at=", nil, "")
	assert.Equal(t, r.status, 400)

	// Regeneration: same content keeps the storage id; new content gets one.
	same := s.SetArtifact("main", ArtifactSpec{ID: info.ID, ContentType: "text/plain", Content: []byte("hello\n")})
	assert.Equal(t, same.StorageID, info.StorageID)
	assert.Assert(t, !same.Changed)
	next := s.SetArtifact("main", ArtifactSpec{ID: info.ID, ContentType: "text/plain", Content: []byte("bye\n")})
	assert.Assert(t, next.StorageID != info.StorageID)
	assert.Equal(t, next.Event, "infrahub.artifact.updated")
	r = do(t, s, "GET", "/api/storage/object/"+info.StorageID, nil, "")
	assert.Equal(t, r.body, "hello\n")

	// An artifact in Error keeps its content; rendering the same bytes again
	// leaves it in Error (Infrahub's early return).
	s.SetArtifact("main", ArtifactSpec{ID: info.ID, Status: "Error"})
	again := s.SetArtifact("main", ArtifactSpec{ID: info.ID, ContentType: "text/plain", Content: []byte("bye\n")})
	assert.Equal(t, again.Status, "Error")
	assert.Equal(t, again.StorageID, next.StorageID)

	// Big bodies are gzipped when asked for.
	big := bytes.Repeat([]byte("x"), 150000)
	bigInfo := s.SetArtifact("main", ArtifactSpec{TargetLabel: "big", Content: big})
	r = do(t, s, "GET", "/api/storage/object/"+bigInfo.StorageID, map[string]string{"Accept-Encoding": "gzip"}, "")
	assert.Equal(t, r.header.Get("Content-Encoding"), "gzip")
	assert.Assert(t, len(r.body) < 10000)

	assert.Assert(t, s.DeleteArtifact("main", info.ID))
	r = do(t, s, "GET", "/api/artifact/"+info.ID, nil, "")
	assert.Equal(t, r.status, 404)
}

const listQuery = `query Q($names: [String], $offset: Int, $limit: Int) {
  CoreArtifact(name__values: $names, offset: $offset, limit: $limit) {
    count
    edges { node { id __typename name { value } checksum { value } storage_id { id value }
      object { node { __typename display_label ... on KubernetesWebserver { name { value } } } }
      definition { node { ...Def } } } }
  }
}
fragment Def on CoreArtifactDefinition { name { value } content_type { value } }`

func TestGraphQL(t *testing.T) {
	s := newTestServer(t)
	var infos []ArtifactInfo
	for _, label := range []string{"c", "a", "b"} {
		infos = append(infos, s.SetArtifact("main", ArtifactSpec{TargetLabel: label, Content: []byte(label)}))
	}
	s.SetArtifact("main", ArtifactSpec{Name: "Other", TargetLabel: "z", Content: []byte("z")})

	r := gql(t, s, "/graphql", listQuery, map[string]any{"names": "Webserver_Manifest", "offset": 1, "limit": 1}, nil)
	assert.Equal(t, r.status, 200, r.body)
	var out struct {
		Data struct {
			CoreArtifact struct {
				Count int
				Edges []struct {
					Node struct {
						ID        string
						Typename  string                     `json:"__typename"`
						StorageID struct{ ID, Value string } `json:"storage_id"`
						Object    struct {
							Node struct {
								Typename     string `json:"__typename"`
								DisplayLabel string `json:"display_label"`
								Name         struct{ Value string }
							}
						}
						Definition struct {
							Node struct {
								Name        struct{ Value string }
								ContentType struct{ Value string } `json:"content_type"`
							}
						}
					}
				}
			}
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(r.body), &out))
	assert.Equal(t, out.Data.CoreArtifact.Count, 3)
	assert.Equal(t, len(out.Data.CoreArtifact.Edges), 1)
	n := out.Data.CoreArtifact.Edges[0].Node
	assert.Equal(t, n.Typename, "CoreArtifact")
	assert.Assert(t, n.StorageID.ID != n.StorageID.Value, "storage_id { id } is the attribute id")
	assert.Equal(t, n.Object.Node.Typename, "KubernetesWebserver")
	assert.Equal(t, n.Object.Node.Name.Value, n.Object.Node.DisplayLabel)
	assert.Equal(t, n.Definition.Node.Name.Value, DefaultDefinitionName)
	assert.Equal(t, n.Definition.Node.ContentType.Value, "application/yaml")
	// Field order follows the query.
	assert.Assert(t, strings.HasPrefix(r.body, `{"data":{"CoreArtifact":{"count":3,"edges":[{"node":{"id":`), r.body)

	r = gql(t, s, "/graphql", `{ CoreArtifact(name__value: "Nope") { count edges { node { id } } } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"count":0,"edges":[]}}}`)
	r = gql(t, s, "/graphql", `{ CoreArtifact(ids: ["`+infos[1].ID+`"]) { count } a: Branch(name: "main") { name is_default } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"count":1},"a":[{"name":"main","is_default":true}]}}`)
	r = gql(t, s, "/graphql", `{ CoreArtifact(definition__name__value: "`+DefaultDefinitionName+`", name__values: ["Other"]) { count } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"count":1}}}`)
	r = gql(t, s, "/graphql", `{ CoreArtifact(definition__name__value: "Nope") { count } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"count":0}}}`)
	r = gql(t, s, "/graphql", `{ Branch(name: "nope") { name } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"Branch":[]}}`)

	errCases := []struct {
		name, query, msg string
		vars             map[string]any
	}{
		{"unknown root", `{ CoreThing { count } }`, `Cannot query field 'CoreThing' on type 'Query'.`, nil},
		{"unknown field", `{ CoreArtifact { edges { node { nope } } } }`, `Cannot query field 'nope' on type 'CoreArtifact'.`, nil},
		{"unknown arg", `{ CoreArtifact(bogus: 1) { count } }`, `Unknown argument 'bogus' on field 'Query.CoreArtifact'.`, nil},
		{"needs subfields", `{ CoreArtifact { edges { node { name } } } }`, `Field 'name' of type 'TextAttribute' must have a selection of subfields.`, nil},
		{"no subfields on scalars", `{ CoreArtifact { count { x } } }`, `Field 'count' must not have a selection since type 'Int!' has no subfields.`, nil},
		{"syntax", `{ CoreArtifact { count }`, `Syntax Error: Expected Name, found <EOF>.`, nil},
		{"undefined variable", `query { CoreArtifact(limit: $l) { count } }`, `Variable '$l' is not defined.`, nil},
		{"unused variable", `query Q($l: Int) { CoreArtifact { count } }`, `Variable '$l' is never used in operation 'Q'.`, nil},
		{"variable type", `query Q($l: String) { CoreArtifact(limit: $l) { count } }`, `Variable '$l' of type 'String' used in position expecting type 'Int'.`, nil},
		{"bad variable value", `query Q($l: Int) { CoreArtifact(limit: $l) { count } }`, `Variable '$l' got invalid value "x"; Int cannot represent non-integer value: "x"`, map[string]any{"l": "x"}},
		{"required variable", `query Q($l: Int!) { CoreArtifact(limit: $l) { count } }`, `Variable '$l' of required type 'Int!' was not provided.`, nil},
		{"bad literal", `{ CoreArtifact(limit: "x") { count } }`, `Int cannot represent non-integer value: "x"`, nil},
		{"negative offset", `{ CoreArtifact(offset: -1) { count } }`, `offset must be a non-negative integer`, nil},
		{"unknown fragment", `{ CoreArtifact { ...F } }`, `Unknown fragment 'F'.`, nil},
		{"unknown type", `{ CoreArtifact { edges { node { object { node { ... on Nope { id } } } } } } }`, `Unknown type 'Nope'.`, nil},
		{"mutation field", `mutation { CoreArtifactCreate { ok } }`, `Cannot query field 'CoreArtifactCreate' on type 'Mutation'.`, nil},
		{"subscription", `subscription { x }`, `Schema is not configured to execute subscription operation.`, nil},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := gql(t, s, "/graphql", tc.query, tc.vars, map[string]string{"X-INFRAHUB-KEY": "tok"})
			assert.Equal(t, r.status, 200, r.body)
			var out struct {
				Data   json.RawMessage
				Errors []struct {
					Message   string
					Locations []gqlLoc
				}
			}
			assert.NilError(t, json.Unmarshal([]byte(r.body), &out), r.body)
			assert.Equal(t, string(out.Data), "null")
			assert.Assert(t, len(out.Errors) > 0)
			assert.Assert(t, is.Contains(out.Errors[0].Message, tc.msg))
		})
	}

	// Transport-level failures.
	r = do(t, s, "POST", "/graphql/nope", jsonCT, `{"query":"{ Branch { name } }"}`)
	assert.Equal(t, r.status, 404)
	assert.Equal(t, r.body, `{"errors":["Branch: nope not found."]}`)
	r = do(t, s, "POST", "/graphql", map[string]string{"Content-Type": "text/plain"}, `{}`)
	assert.Equal(t, r.status, 400)
	assert.Equal(t, r.body, `{"errors":["Content-type must be application/json or multipart/form-data"]}`)
	r = do(t, s, "POST", "/graphql", jsonCT, `{nope`)
	assert.Equal(t, r.body, `{"errors":["Request body is not a valid JSON"]}`)
	r = do(t, s, "POST", "/graphql", jsonCT, `[{"query":"{ Branch { name } }"}]`)
	assert.Equal(t, r.body, `{"errors":["This server does not support batching"]}`)
	r = do(t, s, "OPTIONS", "/graphql", nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, r.header.Get("Allow"), "GET, POST, OPTIONS")
	r = gql(t, s, "/graphql?at=-2d", `{ Branch { name } }`, nil, nil)
	assert.Equal(t, r.status, 400)
	assert.Assert(t, is.Contains(r.body, `"message":"Invalid time format for -2d"`))
	r = gql(t, s, "/graphql?at=2000-01-01", `{ Branch { name } }`, nil, nil)
	assert.Equal(t, r.status, 422)
	assert.Assert(t, is.Contains(r.body, "is before branch 'main' was created at"))
	r = gql(t, s, "/graphql", `mutation { x }`, nil, nil)
	assert.Equal(t, r.status, 401)

	// Branch names with slashes, escaped or not.
	s.AddBranch("feature/x")
	s.SetArtifact("feature/x", ArtifactSpec{TargetLabel: "f", Content: []byte("f")})
	// The branch sees its own artifact and those of main.
	mainCount := len(s.Artifacts("main"))
	for _, p := range []string{"/graphql/feature/x", "/graphql/feature%2Fx"} {
		r = gql(t, s, p, `{ CoreArtifact { count } }`, nil, nil)
		assert.Equal(t, r.body, fmt.Sprintf(`{"data":{"CoreArtifact":{"count":%d}}}`, mainCount+1), p)
	}
}

func TestStoredQueryEndpoint(t *testing.T) {
	s := newTestServer(t)
	info := s.SetArtifact("main", ArtifactSpec{TargetLabel: "a", Content: []byte("a")})
	key := map[string]string{"X-INFRAHUB-KEY": "tok", "Content-Type": "application/json"}
	r := do(t, s, "POST", "/api/query/ArtifactIDs?update_group=false", key, `{"variables":{"artifactname":"Webserver_Manifest"}}`)
	assert.Equal(t, r.status, 200, r.body)
	var out map[string]any
	assert.NilError(t, json.Unmarshal([]byte(r.body), &out))
	assert.DeepEqual(t, sortedKeys(out), []string{"data"})
	assert.Assert(t, is.Contains(r.body, `"checksum":{"value":"`+info.Checksum+`"}`))
	assert.Assert(t, !strings.Contains(r.body, info.StorageID), "ArtifactIDs selects storage_id { id }")

	r = do(t, s, "GET", "/api/query/ArtifactIDs?artifactname=Webserver_Manifest&branch=main", nil, "")
	assert.Equal(t, r.status, 200, r.body)
	assert.Assert(t, is.Contains(r.body, info.ID))
	r = do(t, s, "GET", "/api/query/ArtifactIDs?update_group=maybe", nil, "")
	assert.Equal(t, r.status, 422)
	r = do(t, s, "GET", "/api/query/Nope", nil, "")
	assert.Equal(t, r.status, 404)
	r = do(t, s, "GET", "/api/query/ArtifactIDs?branch=nope", map[string]string{"X-INFRAHUB-KEY": "bad"}, "")
	assert.Equal(t, r.status, 400, "the branch is checked before credentials")

	s.AddStoredQuery("Broken", `query { CoreArtifact { edges { node { nope } } } }`)
	r = do(t, s, "GET", "/api/query/Broken", nil, "")
	assert.Equal(t, r.status, 502)
	assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":502},"message":{"message":"GraphQLQuery Broken: Cannot query field 'nope' on type 'CoreArtifact'.","locations":[{"line":1,"column":39}]}}]}`)
}

func TestFaultsAndCounters(t *testing.T) {
	s := newTestServer(t)
	s.InjectFault(EndpointGraphQL, Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Times: 2})
	s.InjectFault(EndpointAny, Fault{Status: 503, Times: 1})
	for i, want := range []int{429, 429, 503, 200} {
		r := gql(t, s, "/graphql", `{ Branch { name } }`, nil, nil)
		assert.Equal(t, r.status, want, "request %d", i)
		if want == 429 {
			assert.Equal(t, r.header.Get("Retry-After"), "2")
			assert.Equal(t, r.body, `{"data":null,"errors":[{"extensions":{"code":429},"message":"Server is shedding load; retry later."}]}`)
		}
	}
	s.InjectFault(EndpointConfig, Fault{Body: []byte("garbage")})
	r := do(t, s, "GET", "/api/config", nil, "")
	assert.Equal(t, r.body, "garbage")
	s.ClearFaults()
	r = do(t, s, "GET", "/api/config", nil, "")
	assert.Assert(t, strings.HasPrefix(r.body, "{"))
	assert.DeepEqual(t, s.Counts(), map[string]int{"graphql": 4, "config": 2})
	s.ResetCounts()
	assert.DeepEqual(t, s.Counts(), map[string]int{})
}

func TestControlAPI(t *testing.T) {
	s := newTestServer(t)
	r := do(t, s, "POST", "/__fake__/artifacts?name=App&target=web-1&definition=D&content_type=application/json", nil, `{"a":1}`)
	assert.Equal(t, r.status, 200, r.body)
	var info ArtifactInfo
	assert.NilError(t, json.Unmarshal([]byte(r.body), &info))
	assert.DeepEqual(t, info, ArtifactInfo{
		ID: info.ID, Name: "App", Branch: "main", Status: "Ready", ContentType: "application/json",
		Checksum: infrahub.Checksum([]byte(`{"a":1}`)), StorageID: info.StorageID, DefinitionID: info.DefinitionID,
		DefinitionName: "D", TargetID: info.TargetID, TargetLabel: "web-1", TargetKind: DefaultTargetKind,
		Changed: true, Event: "infrahub.artifact.created",
	})
	r = do(t, s, "GET", "/__fake__/artifacts", nil, "")
	assert.Assert(t, is.Contains(r.body, info.ID))
	r = do(t, s, "POST", "/__fake__/artifacts/status?id="+info.ID+"&status=Error", nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, s.Artifacts("main")[0].Status, "Error")
	r = do(t, s, "POST", "/__fake__/faults?endpoint=info&status=500&times=1", nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, do(t, s, "GET", "/api/info", nil, "").status, 500)
	r = do(t, s, "GET", "/__fake__/counts", nil, "")
	assert.Equal(t, r.body, `{"info":1}`)
	r = do(t, s, "DELETE", "/__fake__/artifacts?id="+info.ID, nil, "")
	assert.Equal(t, r.status, 200)
	assert.Equal(t, len(s.Artifacts("main")), 0)
	r = do(t, s, "POST", "/__fake__/faults?latency=nope", nil, "")
	assert.Equal(t, r.status, 400)
}

func TestParseGraphQLErrors(t *testing.T) {
	for _, q := range []string{``, `{`, `{ a(`, `{ a(b: ) }`, `{ a(b: $) }`, `query ($a: ) { a }`, `{ "x" }`, `{ a } }`,
		`fragment on on T { a }`, `{ ... }`, `{ a(b: "x\q") }`, `{ a(b: 01) }`, `{ a(b: 1.) }`, `{ a(b: """x) }`, `{ a }{ b }x`} {
		_, err := parseGraphQL(q)
		assert.Assert(t, err != nil, "%q parsed", q)
		assert.Assert(t, strings.HasPrefix(err.Error(), "Syntax Error"), "%q: %v", q, err)
	}
	doc, err := parseGraphQL(`# comment
query Q($a: [String!]! = ["x"], $b: Int = 2) @dir { x: f(a: $a, o: {k: [1, 2.5e3, true, null, ENUM, "s\u00e9"]}) @skip(if: false) { ... on T { g } ...F } }
fragment F on T { h }`)
	assert.NilError(t, err)
	assert.Equal(t, len(doc.ops), 1)
	assert.Equal(t, doc.ops[0].vars[0].typ.String(), "[String!]!")
	f := doc.ops[0].sel[0].(*gqlField)
	assert.Equal(t, f.key(), "x")
	assert.DeepEqual(t, plain(f.args[1].value), map[string]any{"k": []any{int64(1), 2500.0, true, nil, "ENUM", "sé"}}, cmp.Comparer(func(a, b float64) bool { return a == b }))
}

// The real behaviours the fake can switch on, as raw answers.
func TestRealInfrahubSwitches(t *testing.T) {
	s := newTestServer(t)
	s.SetArtifact("", ArtifactSpec{TargetLabel: "a", ContentType: "image/svg+xml", Content: []byte("<svg/>")})
	q := `{ CoreArtifact { edges { node { status { value } content_type { value } } } } }`

	r := gql(t, s, "/graphql", q, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"edges":[{"node":{"status":{"value":"Ready"},"content_type":{"value":"image/svg+xml"}}}]}}}`)
	r = do(t, s, "POST", "/__fake__/settings?graphql_enums=true", nil, "")
	assert.Equal(t, r.status, 200, r.body)
	r = gql(t, s, "/graphql", q, nil, nil)
	assert.Equal(t, r.body, `{"data":{"CoreArtifact":{"edges":[{"node":{"status":{"value":"READY"},"content_type":{"value":"IMAGE_SVG_XML"}}}]}}}`)
	r = do(t, s, "GET", "/api/config", nil, "")
	assert.Assert(t, is.Contains(r.body, `"graphql_enums":true`))

	// X-Priority is counted per value.
	gql(t, s, "/graphql", q, nil, map[string]string{"X-Priority": "low"})
	assert.Equal(t, s.Priorities()["low"], 1)

	// A default branch not called main.
	trunk := NewServer(WithDefaultBranch("trunk"))
	t.Cleanup(trunk.Close)
	r = gql(t, trunk, "/graphql", `{ Branch { name is_default } }`, nil, nil)
	assert.Equal(t, r.body, `{"data":{"Branch":[{"name":"trunk","is_default":true}]}}`)
	r = gql(t, trunk, "/graphql/main", `{ Branch { name } }`, nil, nil)
	assert.Equal(t, r.status, 404)
}

// Deliveries are signed over Infrahub's rendering of the payload: ASCII
// escapes, while the body is raw UTF-8.
func TestWebhookSignedRendering(t *testing.T) {
	for mode, want := range map[string]string{
		SigningCompactASCII: `"artifact_definition_name":"D\u00e9f"`,
		SigningSpacedASCII:  `"artifact_definition_name": "D\u00e9f"`,
		SigningPythonStr:    `'artifact_definition_name': 'Déf'`,
		SigningBody:         `"artifact_definition_name":"Déf"`,
	} {
		s := NewServer(WithWebhookSigning(mode), WithWebhookRetryDelay(time.Millisecond))
		s.SetWebhook("http://127.0.0.1:1/unreachable", []byte("k"))
		s.SetArtifact("", ArtifactSpec{DefinitionName: "Déf", TargetLabel: "a", Content: []byte("x")})
		d := s.Deliveries()
		assert.Equal(t, len(d), 1)
		assert.Assert(t, is.Contains(string(d[0].Signed), want), mode)
		assert.Assert(t, is.Contains(string(d[0].Body), `"artifact_definition_name":"Déf"`), mode)
		s.Close()
	}
}

// A branch deletes an artifact it sees from main on the branch only.
func TestBranchDeletesInheritedArtifact(t *testing.T) {
	s := newTestServer(t)
	a := s.SetArtifact("", ArtifactSpec{TargetLabel: "a", Content: []byte("a")})
	s.SetArtifact("", ArtifactSpec{TargetLabel: "b", Content: []byte("b")})
	s.AddBranch("feature")
	assert.Equal(t, len(s.Artifacts("feature")), 2)
	assert.Assert(t, s.DeleteArtifact("feature", a.ID))
	assert.Assert(t, !s.DeleteArtifact("feature", a.ID), "deleted twice")
	assert.Equal(t, len(s.Artifacts("feature")), 1)
	assert.Equal(t, len(s.Artifacts("main")), 2)
}
