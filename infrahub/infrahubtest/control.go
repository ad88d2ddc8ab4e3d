package infrahubtest

import (
	"io"
	"net/http"
	"strconv"
	"time"
)

// serveControl implements the /__fake__/ control API documented on
// ServeHTTP. It is meant for demo scripts (curl) and needs no credentials.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) { s.writeJSON(w, r, http.StatusBadRequest, map[string]any{"error": msg}) }
	switch r.URL.Path {
	case "/__fake__/artifacts":
		switch r.Method {
		case http.MethodGet:
			list := s.Artifacts(q.Get("branch"))
			if list == nil {
				list = []ArtifactInfo{}
			}
			s.writeJSON(w, r, http.StatusOK, list)
		case http.MethodPost, http.MethodPut:
			body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
			if err != nil {
				bad("cannot read body")
				return
			}
			info := s.SetArtifact(q.Get("branch"), ArtifactSpec{
				ID: q.Get("id"), Name: q.Get("name"), DefinitionName: q.Get("definition"),
				TargetLabel: q.Get("target"), TargetKind: q.Get("kind"),
				ContentType: q.Get("content_type"), Status: q.Get("status"), Content: body,
			})
			s.writeJSON(w, r, http.StatusOK, info)
		case http.MethodDelete:
			if !s.DeleteArtifact(q.Get("branch"), q.Get("id")) {
				s.writeJSON(w, r, http.StatusNotFound, map[string]any{"error": "no such artifact"})
				return
			}
			s.writeJSON(w, r, http.StatusOK, map[string]any{"deleted": q.Get("id")})
		default:
			s.writeJSON(w, r, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		}
	case "/__fake__/artifacts/status":
		if !s.SetArtifactStatus(q.Get("branch"), q.Get("id"), q.Get("status")) {
			s.writeJSON(w, r, http.StatusNotFound, map[string]any{"error": "no such artifact"})
			return
		}
		s.writeJSON(w, r, http.StatusOK, map[string]any{"id": q.Get("id"), "status": q.Get("status")})
	case "/__fake__/branches":
		if q.Get("name") == "" {
			bad("name is required")
			return
		}
		s.AddBranch(q.Get("name"))
		s.writeJSON(w, r, http.StatusOK, map[string]any{"branch": q.Get("name")})
	case "/__fake__/settings":
		// Switches of the real behaviours: ?graphql_enums=true|false,
		// ?paging_by_name=true|false.
		for key, set := range map[string]func(bool){"graphql_enums": s.SetGraphQLEnums, "paging_by_name": s.SetPagingByName} {
			if v := q.Get(key); v != "" {
				on, err := strconv.ParseBool(v)
				if err != nil {
					bad(key + ": not a boolean")
					return
				}
				set(on)
			}
		}
		s.mu.Lock()
		out := map[string]any{"graphql_enums": s.st.enums, "paging_by_name": s.st.pagingByName, "default_branch": s.st.defaultBranch}
		s.mu.Unlock()
		s.writeJSON(w, r, http.StatusOK, out)
	case "/__fake__/counts":
		s.writeJSON(w, r, http.StatusOK, s.Counts())
	case "/__fake__/counts/reset":
		s.ResetCounts()
		s.writeJSON(w, r, http.StatusOK, map[string]any{})
	case "/__fake__/deliveries":
		s.writeJSON(w, r, http.StatusOK, s.Deliveries())
	case "/__fake__/faults":
		if r.Method == http.MethodDelete {
			s.ClearFaults()
			s.writeJSON(w, r, http.StatusOK, map[string]any{})
			return
		}
		var f Fault
		var err error
		num := func(k string) int {
			if err != nil || q.Get(k) == "" {
				return 0
			}
			var n int
			n, err = strconv.Atoi(q.Get(k))
			return n
		}
		dur := func(k string) time.Duration {
			if err != nil || q.Get(k) == "" {
				return 0
			}
			var d time.Duration
			d, err = time.ParseDuration(q.Get(k))
			return d
		}
		f.Status, f.Times = num("status"), num("times")
		f.RetryAfter, f.Latency = dur("retry_after"), dur("latency")
		f.Truncate = q.Get("truncate") == "true"
		f.GraphQLError = q.Get("graphql_error")
		if b := q.Get("body"); b != "" {
			f.Body = []byte(b)
		}
		if err != nil {
			bad(err.Error())
			return
		}
		ep := q.Get("endpoint")
		if ep == "" {
			ep = EndpointAny
		}
		s.InjectFault(ep, f)
		s.writeJSON(w, r, http.StatusOK, map[string]any{"endpoint": ep})
	default:
		s.writeJSON(w, r, http.StatusNotFound, map[string]any{"error": "unknown control endpoint"})
	}
}
