package infrahub

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		endpoint string
		status   int
		header   http.Header
		body     string
		want     Error
	}{
		{
			name: "rest expired", endpoint: endpointArtifact, status: 401,
			body: `{"data":null,"errors":[{"message":"Expired Signature","extensions":{"code":401}}]}`,
			want: Error{Kind: KindAuth, Endpoint: "artifact", StatusCode: 401, Code: CodeTokenExpired, Message: "Expired Signature"},
		},
		{
			name: "graphql bad key", endpoint: endpointGraphQL, status: 401,
			body: `{"data":null,"errors":[{"message":"Invalid token","extensions":{"code":"AUTHENTICATION_REQUIRED","http_status":401,"data":{}}}]}`,
			want: Error{Kind: KindAuth, Endpoint: "graphql", StatusCode: 401, Code: "AUTHENTICATION_REQUIRED", Message: "Invalid token"},
		},
		{
			name: "graphql expired", endpoint: endpointGraphQL, status: 401,
			body: `{"data":null,"errors":[{"message":"Expired Signature","extensions":{"code":"TOKEN_EXPIRED","http_status":401,"data":{"expired_at":null}}}]}`,
			want: Error{Kind: KindAuth, Endpoint: "graphql", StatusCode: 401, Code: CodeTokenExpired, Message: "Expired Signature"},
		},
		{
			name: "graphql unknown branch", endpoint: endpointGraphQL, status: 404,
			body: `{"errors":["Branch: nope not found."]}`,
			want: Error{Kind: KindBadRequest, Endpoint: "graphql", StatusCode: 404, Code: CodeBranchNotFound, Message: "Branch: nope not found."},
		},
		{
			name: "rest unknown branch", endpoint: endpointArtifact, status: 400,
			body: `{"data":null,"errors":[{"message":"Branch: nope not found.","extensions":{"code":400}}]}`,
			want: Error{Kind: KindBadRequest, Endpoint: "artifact", StatusCode: 400, Code: CodeBranchNotFound, Message: "Branch: nope not found."},
		},
		{
			name: "login unknown user", endpoint: endpointLogin, status: 404,
			body: `{"data":null,"errors":[{"message":"That login user doesn't exist in the system","extensions":{"code":404}}]}`,
			want: Error{Kind: KindAuth, Endpoint: "login", StatusCode: 404, Message: "That login user doesn't exist in the system"},
		},
		{
			name: "not found", endpoint: endpointStorage, status: 404,
			body: `{"data":null,"errors":[{"message":"Unable to find the node x / StorageObject in the database.","extensions":{"code":404}}]}`,
			want: Error{Kind: KindNotFound, Endpoint: "storage", StatusCode: 404, Message: "Unable to find the node x / StorageObject in the database."},
		},
		{
			name: "permission", endpoint: endpointGraphQL, status: 403,
			body: `{"data":null,"errors":[{"message":"denied","extensions":{"code":"PERMISSION_DENIED","http_status":403,"data":{"action":"view","resource_kind":"CoreArtifact"}}}]}`,
			want: Error{Kind: KindPermission, Endpoint: "graphql", StatusCode: 403, Code: "PERMISSION_DENIED", Message: "denied"},
		},
		{
			name: "validation 422", endpoint: endpointQuery, status: 422,
			body: `{"detail":[{"type":"bool_parsing","loc":["query","update_group"],"msg":"Input should be a valid boolean"}]}`,
			want: Error{Kind: KindBadRequest, Endpoint: "query", StatusCode: 422, Message: "[query update_group] Input should be a valid boolean"},
		},
		{
			name: "shedding", endpoint: endpointGraphQL, status: 429, header: http.Header{"Retry-After": {"7"}},
			body: `{"data":null,"errors":[{"message":"Server is shedding load; retry later.","extensions":{"code":429}}]}`,
			want: Error{Kind: KindTransient, Endpoint: "graphql", StatusCode: 429, Message: "Server is shedding load; retry later.", RetryAfter: 7 * time.Second},
		},
		{
			name: "retry-after date", endpoint: endpointGraphQL, status: 503,
			header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}},
			body:   `<html>down</html>`,
			want:   Error{Kind: KindTransient, Endpoint: "graphql", StatusCode: 503, Message: "<html>down</html>", RetryAfter: 90 * time.Second},
		},
		{
			name: "stored query 502 quirk", endpoint: endpointQuery, status: 502,
			body: `{"data":null,"errors":[{"message":{"message":"GraphQLQuery ArtifactIDs: boom","path":["CoreArtifact"],"locations":[{"line":2,"column":3}]},"extensions":{"code":502}}]}`,
			want: Error{Kind: KindGraphQL, Endpoint: "query", StatusCode: 502, Message: "GraphQLQuery ArtifactIDs: boom"},
		},
		{
			name: "plain 502", endpoint: endpointQuery, status: 502, body: `bad gateway`,
			want: Error{Kind: KindTransient, Endpoint: "query", StatusCode: 502, Message: "bad gateway"},
		},
		{
			name: "fastapi detail", endpoint: endpointStorage, status: 403, body: `{"detail":"Use /api/files/... instead."}`,
			want: Error{Kind: KindPermission, Endpoint: "storage", StatusCode: 403, Message: "Use /api/files/... instead."},
		},
		{
			name: "redirect", endpoint: endpointGraphQL, status: 302, body: ``,
			want: Error{Kind: KindInvalidResponse, Endpoint: "graphql", StatusCode: 302, Message: "unexpected HTTP status"},
		},
		{
			name: "binary body", endpoint: endpointGraphQL, status: 500, body: "\xff\xfe",
			want: Error{Kind: KindTransient, Endpoint: "graphql", StatusCode: 500},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			got := classify(tc.endpoint, tc.status, h, []byte(tc.body), now)
			assert.DeepEqual(t, *got, tc.want, cmp.AllowUnexported(Error{}))
		})
	}
}

func TestDecodeArtifactPage(t *testing.T) {
	body := `{"data":{"CoreArtifact":{"count":2,"edges":[{"node":{
	  "id":"a1","display_label":"Webserver_Manifest","__typename":"CoreArtifact",
	  "name":{"value":"Webserver_Manifest"},"status":{"value":"Ready"},
	  "content_type":{"value":"application/yaml"},"checksum":{"value":"72F8D204B6D5ECCEC9911B6EFCD9A308"},
	  "storage_id":{"value":"s1"},"parameters":{"value":{"webserver":"name__value"}},
	  "object":{"node":{"id":"t1","display_label":"web-1","__typename":"KubernetesWebserver"}},
	  "definition":{"node":{"id":"d1","display_label":"Def","name":{"value":"Webserver_Artifact_Definition"}}}}},
	  {"node":{"id":"a2","name":{"value":"Webserver_Manifest"},"status":{"value":"Pending"},
	  "content_type":{"value":null},"checksum":{"value":null},"storage_id":null,"object":{"node":null},"definition":null}}]}}}`
	arts, count, err := decodeArtifactPage([]byte(body))
	assert.NilError(t, err)
	assert.Equal(t, count, 2)
	assert.DeepEqual(t, arts, []Artifact{
		{ID: "a1", Name: "Webserver_Manifest", Status: "Ready", ContentType: "application/yaml",
			Checksum: "72f8d204b6d5eccec9911b6efcd9a308", StorageID: "s1", DefinitionID: "d1",
			DefinitionName: "Webserver_Artifact_Definition", TargetID: "t1", TargetLabel: "web-1", TargetKind: "KubernetesWebserver"},
		{ID: "a2", Name: "Webserver_Manifest", Status: "Pending"},
	})

	for name, bad := range map[string]struct {
		body string
		kind Kind
	}{
		"errors in 200":  {`{"data":{"CoreArtifact":{"count":0,"edges":[]}},"errors":[{"message":"boom"}]}`, KindGraphQL},
		"errors no data": {`{"data":null,"errors":[{"message":"Cannot query field 'x' on type 'CoreArtifact'."}]}`, KindGraphQL},
		"no data":        {`{"data":null}`, KindInvalidResponse},
		"no count":       {`{"data":{"CoreArtifact":{"edges":[]}}}`, KindInvalidResponse},
		"node null":      {`{"data":{"CoreArtifact":{"count":1,"edges":[{"node":null}]}}}`, KindInvalidResponse},
		"no id":          {`{"data":{"CoreArtifact":{"count":1,"edges":[{"node":{"name":{"value":"x"}}}]}}}`, KindInvalidResponse},
		"garbage":        {`<html>`, KindInvalidResponse},
		"truncated":      {`{"data":{"CoreArtifact":{"count":1,"edg`, KindInvalidResponse},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := decodeArtifactPage([]byte(bad.body))
			assert.Equal(t, KindOf(err), bad.kind, "%v", err)
		})
	}
}

func TestDecodeStoredQuery(t *testing.T) {
	// The earlier operator's ArtifactIDs shape: storage_id { id } is the
	// attribute id and must not be taken for the storage id.
	body := `{"data":{"CoreArtifact":{"edges":[
	  {"node":{"id":"a1","storage_id":{"id":"attr-uuid"},"checksum":{"value":"abc"},"name":{"value":"W"}}},
	  {"node":{"id":"a2","storage_id":{"id":"attr-2"},"checksum":{"value":null},"name":{"value":"W"}}},
	  {"node":{"id":"a3","checksum":{"value":"def"},"name":{"value":"Other"}}},
	  {"node":{"id":"a1","checksum":{"value":"abc"},"name":{"value":"W"}}},
	  {"node":{"id":"a4","checksum":{"value":"x"},"status":{"value":"Error"}}}]}}}`
	arts, err := decodeStoredQuery("W", []byte(body))
	assert.NilError(t, err)
	assert.DeepEqual(t, arts, []Artifact{
		{ID: "a1", Name: "W", Status: StatusReady, Checksum: "abc"},
		{ID: "a2", Name: "W", Status: StatusPending},
		{ID: "a4", Name: "W", Status: StatusError, Checksum: "x"},
	})
}

// BenchmarkDecodeArtifactPage1000 is the client-side cost of one page of
// 1,000 artifacts, without any HTTP.
func BenchmarkDecodeArtifactPage1000(b *testing.B) {
	var buf []byte
	buf = append(buf, `{"data":{"CoreArtifact":{"count":1000,"edges":[`...)
	for i := range 1000 {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, `{"node":{"id":"18a3c2f1-0b6e-4a2d-3f10-c51e2b7d%04d","name":{"value":"Webserver_Manifest"},`+
			`"status":{"value":"Ready"},"content_type":{"value":"application/yaml"},"checksum":{"value":"72f8d204b6d5eccec9911b6efcd9a308"},`+
			`"storage_id":{"value":"18a3c3aa-5b6c-7d8e-3f90-c51e0a1b%04d"},"object":{"node":{"id":"18a3c2d0-1c2d-4e5f-3a6b-c51e7c8d%04d",`+
			`"display_label":"web-%d","__typename":"KubernetesWebserver"}},"definition":{"node":{"id":"18a3c2e9-77aa-4c1e-3f0b-c51e8d2f6b12",`+
			`"display_label":"Webserver_Artifact_Definition","name":{"value":"Webserver_Artifact_Definition"}}}}}`, i, i, i, i)
	}
	buf = append(buf, `]}}}`...)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		arts, _, err := decodeArtifactPage(buf)
		if err != nil || len(arts) != 1000 {
			b.Fatal(err)
		}
	}
}
