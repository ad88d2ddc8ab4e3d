package infrahubtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/vidra-operator/vidra/infrahub"
)

const maxRequestBody = 10 << 20

// parseAt applies Infrahub's `at` rules with the server's clock. An absent
// parameter means now (zero time).
func (s *Server) parseAt(r *http.Request) (time.Time, string, bool) {
	vals, present := r.URL.Query()["at"]
	if !present {
		return time.Time{}, "", true
	}
	raw := vals[0]
	t, err := infrahub.ParseAt(raw, s.now())
	if err != nil {
		return time.Time{}, "Invalid time format for " + raw, false
	}
	return t, "", true
}

// restBranchAndAt resolves the `branch` and `at` query parameters of a REST
// call, answering 400 when either is bad.
func (s *Server) restBranchAndAt(w http.ResponseWriter, r *http.Request) (*branch, time.Time, bool) {
	s.mu.Lock()
	name := s.st.branchOr(r.URL.Query().Get("branch"))
	s.mu.Unlock()
	s.mu.Lock()
	br := s.st.branches[name]
	s.mu.Unlock()
	if br == nil {
		s.restError(w, r, http.StatusBadRequest, "Branch: "+name+" not found.")
		return nil, time.Time{}, false
	}
	at, badAt, ok := s.parseAt(r)
	if !ok {
		s.restError(w, r, http.StatusBadRequest, badAt)
		return nil, time.Time{}, false
	}
	return br, at, true
}

// ---- GraphQL ----

func (s *Server) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		s.write(w, r, http.StatusOK, nil, nil)
		return
	case http.MethodGet, http.MethodHead:
		// GET never reaches GraphQL: the web UI's catch-all answers.
		h := "text/html; charset=utf-8"
		s.write(w, r, http.StatusOK, &h, []byte("<!doctype html><title>Infrahub (fake)</title>\n"))
		return
	case http.MethodPost:
	default:
		s.writeJSON(w, r, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/graphql"), "/")
	s.mu.Lock()
	name = s.st.branchOr(name)
	br := s.st.branches[name]
	s.st.priorities[r.Header.Get("X-Priority")]++
	s.mu.Unlock()
	if br == nil {
		s.writeJSON(w, r, http.StatusNotFound, map[string]any{"errors": []string{"Branch: " + name + " not found."}})
		return
	}
	p, fail := s.authenticate(r)
	if fail != nil {
		s.graphQLEnvelopeError(w, r, fail.status, fail.code, fail.msg, expiredData(fail))
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" && ct != "multipart/form-data" {
		s.writeJSON(w, r, http.StatusBadRequest, map[string]any{"errors": []string{"Content-type must be application/json or multipart/form-data"}})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		s.writeJSON(w, r, http.StatusBadRequest, map[string]any{"errors": []string{"This server does not support batching"}})
		return
	}
	var req struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, map[string]any{"errors": []string{"Request body is not a valid JSON"}})
		return
	}
	at, badAt, ok := s.parseAt(r)
	if !ok {
		s.graphQLEnvelopeError(w, r, http.StatusBadRequest, "UNDEFINED_ERROR", badAt, nil)
		return
	}

	mutation := isMutation(req.Query, req.OperationName)
	if mutation {
		at = time.Time{} // `at` is ignored for mutations
	}
	s.mu.Lock()
	anon, denied := s.st.anonymous, s.st.denied[p.name]
	viewKinds := s.st.viewKinds[p.name]
	mainCreated := s.st.branches[s.st.defaultBranch].created
	s.mu.Unlock()
	if p.anonymous && (!anon || mutation) {
		s.graphQLEnvelopeError(w, r, http.StatusUnauthorized, "AUTHENTICATION_REQUIRED", msgAuthRequiredG, nil)
		return
	}
	if denied {
		s.graphQLEnvelopeError(w, r, http.StatusForbidden, "PERMISSION_DENIED",
			"You do not have one of the following permissions: object:*:CoreArtifact:view:allow_all",
			map[string]any{"action": "view", "resource_kind": "CoreArtifact"})
		return
	}
	if viewKinds != nil {
		if kind := deniedKind(req.Query, viewKinds); kind != "" {
			s.graphQLEnvelopeError(w, r, http.StatusForbidden, "PERMISSION_DENIED",
				"You do not have one of the following permissions: object:*:"+kind+":view:allow_all",
				map[string]any{"action": "view", "resource_kind": kind})
			return
		}
	}
	if !at.IsZero() && at.Before(mainCreated) {
		// The boundary of every branch is its origin's creation: main's.
		s.graphQLEnvelopeError(w, r, http.StatusUnprocessableEntity, "UNDEFINED_ERROR",
			"Requested time '"+infrahub.FormatAt(at)+"' is before branch 'main' was created at '"+infrahub.FormatAt(mainCreated)+"'.", nil)
		return
	}
	s.mu.Lock()
	res := s.runGraphQL(req.Query, req.OperationName, req.Variables, br, at)
	s.mu.Unlock()
	s.writeGraphQLResult(w, r, res)
}

// isMutation reports whether the operation to run is a mutation.
func isMutation(query, opName string) bool {
	doc, err := parseGraphQL(query)
	if err != nil {
		return false
	}
	for _, op := range doc.ops {
		if (opName == "" || op.name == opName) && op.kind == "mutation" {
			return true
		}
	}
	return false
}

func expiredData(f *authFailure) map[string]any {
	if f.code == "TOKEN_EXPIRED" {
		return map[string]any{"expired_at": nil}
	}
	return nil
}

func (s *Server) writeGraphQLResult(w http.ResponseWriter, r *http.Request, res gqlResult) {
	out := gqlObject{}
	if len(res.errs) > 0 {
		errs := make([]any, len(res.errs))
		for i, e := range res.errs {
			item := gqlObject{{"message", e.Message}}
			if len(e.Locations) > 0 {
				item = append(item, gqlKV{"locations", e.Locations})
			}
			if e.Path != nil {
				item = append(item, gqlKV{"path", e.Path})
			}
			item = append(item, gqlKV{"extensions", map[string]any{"code": "UNDEFINED_ERROR", "http_status": 500, "data": map[string]any{}}})
			errs[i] = item
		}
		if res.data == nil {
			out = append(out, gqlKV{"data", nil})
		} else {
			out = append(out, gqlKV{"data", res.data})
		}
		out = append(out, gqlKV{"errors", errs})
	} else {
		out = append(out, gqlKV{"data", res.data})
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// ---- stored queries ----

func (s *Server) handleStoredQuery(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/query/")
	q := r.URL.Query()
	// Branch and `at` are resolved before authentication.
	br, at, ok := s.restBranchAndAt(w, r)
	if !ok {
		return
	}
	if v, present := q["update_group"]; present {
		switch strings.ToLower(v[0]) {
		case "true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n":
		default:
			s.writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
				"type": "bool_parsing", "loc": []any{"query", "update_group"},
				"msg": "Input should be a valid boolean, unable to interpret input", "input": v[0],
			}}})
			return
		}
	}
	if _, ok := s.authorizeREST(w, r); !ok {
		return
	}
	s.mu.Lock()
	text, found := s.st.queries[name]
	s.mu.Unlock()
	if !found {
		s.restError(w, r, http.StatusNotFound, "Unable to find the node "+name+" / CoreGraphQLQuery in the database.")
		return
	}
	vars := map[string]any{}
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if len(bytes.TrimSpace(body)) > 0 {
			var in struct {
				Variables map[string]any `json:"variables"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&in); err != nil {
				s.writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
					"type": "json_invalid", "loc": []any{"body"}, "msg": "JSON decode error",
				}}})
				return
			}
			if in.Variables != nil {
				vars = in.Variables
			}
		}
	} else {
		for k, v := range q {
			switch k {
			case "branch", "at", "update_group", "subscribers":
				continue
			}
			vars[k] = v[0]
		}
	}
	s.mu.Lock()
	res := s.runGraphQL(text, "", vars, br, at)
	s.mu.Unlock()
	if len(res.errs) > 0 {
		s.storedQueryFailure(w, r, name, res.errs)
		return
	}
	s.writeJSON(w, r, http.StatusOK, gqlObject{{"data", res.data}})
}

// storedQueryFailure reproduces Infrahub's 502 for a failing stored query:
// the REST envelope whose messages are GraphQL error objects.
func (s *Server) storedQueryFailure(w http.ResponseWriter, r *http.Request, name string, errs []*gqlError) {
	items := make([]any, len(errs))
	for i, e := range errs {
		msg := gqlObject{{"message", "GraphQLQuery " + name + ": " + e.Message}}
		if e.Path != nil {
			msg = append(msg, gqlKV{"path", e.Path})
		}
		if len(e.Locations) > 0 {
			msg = append(msg, gqlKV{"locations", e.Locations})
		}
		items[i] = map[string]any{"message": msg, "extensions": map[string]any{"code": http.StatusBadGateway}}
	}
	s.writeJSON(w, r, http.StatusBadGateway, map[string]any{"data": nil, "errors": items})
}

// ---- artifacts and storage ----

func (s *Server) handleArtifact(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/artifact/")
	br, at, ok := s.restBranchAndAt(w, r)
	if !ok {
		return
	}
	if _, ok := s.authorizeREST(w, r); !ok {
		return
	}
	s.mu.Lock()
	v := s.st.artifactAt(br, id, at)
	var content []byte
	var found bool
	if v != nil && v.storageID != "" {
		content, found = s.st.storage[v.storageID]
	}
	s.mu.Unlock()
	switch {
	case v == nil:
		s.restError(w, r, http.StatusNotFound, "Unable to find the node "+id+" / CoreArtifact in the database.")
	case !found:
		sid := v.storageID
		if sid == "" {
			sid = "None"
		}
		s.restError(w, r, http.StatusNotFound, "Unable to find the node "+sid+" / StorageObject in the database.")
	default:
		ct := v.contentType // raw header: no charset appended
		s.write(w, r, http.StatusOK, &ct, content)
	}
}

func (s *Server) handleStorage(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/storage/object/")
	if _, ok := s.authorizeREST(w, r); !ok {
		return
	}
	s.mu.Lock()
	content, found := s.st.storage[id]
	s.mu.Unlock()
	if !found {
		s.restError(w, r, http.StatusNotFound, "Unable to find the node "+id+" / StorageObject in the database.")
		return
	}
	s.write(w, r, http.StatusOK, nil, content) // no Content-Type at all
}

// ---- config and info ----

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	anon, enums := s.st.anonymous, s.st.enums
	s.mu.Unlock()
	s.writeJSON(w, r, http.StatusOK, map[string]any{
		"main": map[string]any{
			"docs_index_path": "/opt/infrahub/docs/build/search-index.json", "internal_address": nil,
			"allow_anonymous_access": anon, "anonymous_access_role": "Anonymous User",
			"telemetry_optout": true, "telemetry_endpoint": "", "permission_backends": []string{},
			"public_url": s.URL, "schema_strict_mode": true,
			"diff_update_after_merge": true, "delete_branch_after_merge": false,
		},
		"logging":               map[string]any{"remote": map[string]any{"enable": false}},
		"analytics":             map[string]any{"enable": false},
		"experimental_features": map[string]any{"graphql_enums": enums},
		"sso":                   map[string]any{"providers": []any{}, "enabled": false},
	})
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorizeREST(w, r); !ok {
		return
	}
	s.mu.Lock()
	id := s.st.branches[s.st.defaultBranch].id
	s.mu.Unlock()
	s.writeJSON(w, r, http.StatusOK, map[string]any{"deployment_id": id, "version": Version})
}
