// Package infrahubtest is a fake Infrahub (v1.11) for tests and demos, in
// the manner of net/http/httptest: NewServer starts it on a loopback port.
//
// It follows the Infrahub API notes closely: logins with JWTs, refresh,
// API tokens and anonymous access rules; a small real GraphQL engine
// answering CoreArtifact and Branch queries (filters, paging, count,
// {value: ...} attribute objects, fragments, variables, and GraphQL errors
// for anything else); stored queries, including the 502 quirk; the artifact
// and storage endpoints with their exact Content-Type behaviour; branches
// (unknown: 400 on REST, 404 on GraphQL) and time travel with `at`;
// regeneration with MD5 checksums and new storage ids only on change;
// signed webhook deliveries; fault injection; and per-endpoint request
// counters.
//
// Mutations of the fake's data go through Go methods (SetArtifact, ...) or
// the control API under /__fake__/ (see ServeHTTP), never through GraphQL.
package infrahubtest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoint names used by Count, InjectFault and the counters.
const (
	EndpointLogin    = "login"
	EndpointRefresh  = "refresh"
	EndpointLogout   = "logout"
	EndpointGraphQL  = "graphql"
	EndpointQuery    = "query"
	EndpointArtifact = "artifact"
	EndpointStorage  = "storage"
	EndpointConfig   = "config"
	EndpointInfo     = "info"
	EndpointOther    = "other"
	// EndpointWebhook counts webhook delivery attempts made by the fake.
	EndpointWebhook = "webhook"
	// EndpointAny in InjectFault matches every endpoint.
	EndpointAny = "*"
)

// Defaults used by SetArtifact for empty ArtifactSpec fields.
const (
	DefaultArtifactName   = "Webserver_Manifest"
	DefaultDefinitionName = "Webserver_Artifact_Definition"
	DefaultTargetKind     = "KubernetesWebserver"
	DefaultContentType    = "application/yaml"
	// Version is what /api/info reports.
	Version = "1.11.0"
	// ArtifactIDsQuery is the earlier operator's stored query, registered
	// as "ArtifactIDs". Note storage_id { id }: the attribute's id.
	ArtifactIDsQuery = `query ArtifactIDs ($artifactname: [String]) {
  CoreArtifact (name__values: $artifactname) {
    edges { node { id  storage_id { id }  checksum { value }  name { value } } }
  }
}`
)

// Server is a fake Infrahub. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL (set by NewServer; set it yourself when serving
	// the handler elsewhere).
	URL string
	// HTTP is the underlying test server (nil for NewUnstartedServer).
	HTTP *httptest.Server

	log           *slog.Logger
	clock         func() time.Time
	control       bool
	retryDelay    time.Duration
	webhookClient *http.Client
	defaults      ArtifactSpec
	defaultBranch string
	enumsAtStart  bool
	signing       string

	mu sync.Mutex
	st state

	wg sync.WaitGroup // webhook deliveries in flight
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the server's clock (token expiry, history, `at`).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.clock = now } }

// WithLogger logs what the fake does.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithoutControlAPI disables the /__fake__/ control endpoints.
func WithoutControlAPI() Option { return func(s *Server) { s.control = false } }

// WithWebhookRetryDelay sets the pause between webhook delivery attempts
// (Infrahub waits 2 minutes; the default here is 100ms).
func WithWebhookRetryDelay(d time.Duration) Option { return func(s *Server) { s.retryDelay = d } }

// WithWebhookClient sets the HTTP client used for webhook deliveries.
func WithWebhookClient(c *http.Client) Option { return func(s *Server) { s.webhookClient = c } }

// WithArtifactDefaults sets the Name, DefinitionName, TargetKind and
// ContentType used when an ArtifactSpec leaves them empty.
func WithArtifactDefaults(spec ArtifactSpec) Option {
	return func(s *Server) {
		if spec.Name != "" {
			s.defaults.Name = spec.Name
		}
		if spec.DefinitionName != "" {
			s.defaults.DefinitionName = spec.DefinitionName
		}
		if spec.TargetKind != "" {
			s.defaults.TargetKind = spec.TargetKind
		}
		if spec.ContentType != "" {
			s.defaults.ContentType = spec.ContentType
		}
	}
}

// WithDefaultBranch names the default branch (INFRAHUB_INITIAL_DEFAULT_BRANCH;
// default "main").
func WithDefaultBranch(name string) Option { return func(s *Server) { s.defaultBranch = name } }

// WithGraphQLEnums starts the fake with experimental_features.graphql_enums
// on (see SetGraphQLEnums).
func WithGraphQLEnums() Option { return func(s *Server) { s.enumsAtStart = true } }

// NewServer starts a fake Infrahub on a loopback port. Close it when done.
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.HTTP = httptest.NewServer(s)
	s.URL = s.HTTP.URL
	return s
}

// NewUnstartedServer returns the fake as an http.Handler without listening.
func NewUnstartedServer(opts ...Option) *Server {
	s := &Server{
		clock:      time.Now,
		control:    true,
		retryDelay: 100 * time.Millisecond,
		defaults: ArtifactSpec{
			Name: DefaultArtifactName, DefinitionName: DefaultDefinitionName,
			TargetKind: DefaultTargetKind, ContentType: DefaultContentType,
		},
	}
	for _, o := range opts {
		o(s)
	}
	if s.webhookClient == nil {
		s.webhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	s.st.init(s.clock(), s.defaultBranch)
	s.st.enums = s.enumsAtStart
	return s
}

// Close stops the server after pending webhook deliveries finish.
func (s *Server) Close() {
	s.wg.Wait()
	if s.HTTP != nil {
		s.HTTP.Close()
	}
}

func (s *Server) now() time.Time { return s.clock() }

func (s *Server) logf(msg string, args ...any) {
	if s.log != nil {
		s.log.Info(msg, args...)
	}
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- counters ----

// Counts returns the number of requests per endpoint since the last reset.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.st.counts))
	for k, v := range s.st.counts {
		out[k] = v
	}
	return out
}

// Count returns the number of requests to one endpoint.
func (s *Server) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.counts[endpoint]
}

// ResetCounts zeroes all counters.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.st.counts)
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	s.st.counts[endpoint]++
	s.mu.Unlock()
}

// ---- faults ----

// Fault describes a misbehaviour injected into responses of one endpoint.
type Fault struct {
	// Status, when set, answers with this status: Body if set, else the
	// envelope Infrahub uses for it (429: the load-shedding message).
	Status int
	// RetryAfter adds a Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
	// Latency delays the response (cut short when the client gives up).
	Latency time.Duration
	// Body, without Status, answers 200 with these bytes (garbage).
	Body []byte
	// Truncate sends the normal response's headers and half of its body,
	// then drops the connection.
	Truncate bool
	// GraphQLError makes GraphQL fail with this message: HTTP 200 with
	// errors on /graphql, the 502 quirk on /api/query.
	GraphQLError string
	// Times is how many requests the fault affects; 0 means until cleared.
	Times int
}

type activeFault struct {
	Fault
	used int
}

// InjectFault adds a fault for an endpoint (or EndpointAny). Faults apply
// in the order they were added.
func (s *Server) InjectFault(endpoint string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.faults[endpoint] = append(s.st.faults[endpoint], &activeFault{Fault: f})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.st.faults)
}

func (s *Server) takeFault(endpoint string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range []string{endpoint, EndpointAny} {
		list := s.st.faults[ep]
		for i, f := range list {
			if f.Times > 0 && f.used >= f.Times {
				continue
			}
			f.used++
			out := f.Fault
			if f.Times > 0 && f.used >= f.Times {
				s.st.faults[ep] = append(list[:i:i], list[i+1:]...)
			}
			return &out
		}
	}
	return nil
}

// ---- HTTP plumbing ----

// processTimeWriter adds X-Process-Time when headers are written.
type processTimeWriter struct {
	http.ResponseWriter
	start       time.Time
	wroteHeader bool
}

func (w *processTimeWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		w.Header().Set("X-Process-Time", strconv.FormatFloat(time.Since(w.start).Seconds(), 'f', 6, 64))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *processTimeWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *processTimeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func endpointOf(path string) string {
	switch {
	case path == "/api/auth/login":
		return EndpointLogin
	case path == "/api/auth/refresh":
		return EndpointRefresh
	case path == "/api/auth/logout":
		return EndpointLogout
	case path == "/graphql" || strings.HasPrefix(path, "/graphql/"):
		return EndpointGraphQL
	case strings.HasPrefix(path, "/api/query/"):
		return EndpointQuery
	case strings.HasPrefix(path, "/api/artifact/"):
		return EndpointArtifact
	case strings.HasPrefix(path, "/api/storage/object/"):
		return EndpointStorage
	case path == "/api/config":
		return EndpointConfig
	case path == "/api/info":
		return EndpointInfo
	}
	return EndpointOther
}

// ServeHTTP serves the Infrahub API, and the control API under /__fake__/:
//
//	POST   /__fake__/artifacts?name=&target=&branch=&definition=&kind=&content_type=&status=&id=
//	       body = new content: create or regenerate an artifact (JSON info back)
//	GET    /__fake__/artifacts?branch=           list artifacts
//	DELETE /__fake__/artifacts?branch=&id=        delete an artifact
//	POST   /__fake__/artifacts/status?branch=&id=&status=
//	POST   /__fake__/branches?name=
//	POST   /__fake__/settings?graphql_enums=&paging_by_name=  real-Infrahub switches
//	GET    /__fake__/counts                       request counters
//	POST   /__fake__/counts/reset
//	POST   /__fake__/faults?endpoint=&status=&retry_after=&latency=&times=&truncate=&graphql_error=
//	DELETE /__fake__/faults
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &processTimeWriter{ResponseWriter: rw, start: time.Now()}
	w.Header().Set("X-Request-ID", newUUID())
	if s.control && strings.HasPrefix(r.URL.Path, "/__fake__/") {
		s.serveControl(w, r)
		return
	}
	ep := endpointOf(r.URL.Path)
	s.count(ep)
	if f := s.takeFault(ep); f != nil && s.applyFault(w, r, ep, f) {
		return
	}
	s.route(w, r)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/api/auth/login":
		s.onlyMethods(w, r, s.handleLogin, http.MethodPost)
	case p == "/api/auth/refresh":
		s.onlyMethods(w, r, s.handleRefresh, http.MethodPost)
	case p == "/api/auth/logout":
		s.onlyMethods(w, r, s.handleLogout, http.MethodPost)
	case p == "/graphql" || strings.HasPrefix(p, "/graphql/"):
		s.handleGraphQL(w, r)
	case strings.HasPrefix(p, "/api/query/") && !strings.Contains(p[len("/api/query/"):], "/"):
		s.onlyMethods(w, r, s.handleStoredQuery, http.MethodGet, http.MethodPost)
	case strings.HasPrefix(p, "/api/artifact/") && !strings.Contains(p[len("/api/artifact/"):], "/"):
		s.onlyMethods(w, r, s.handleArtifact, http.MethodGet)
	case strings.HasPrefix(p, "/api/storage/object/") && !strings.Contains(p[len("/api/storage/object/"):], "/"):
		s.onlyMethods(w, r, s.handleStorage, http.MethodGet)
	case p == "/api/config":
		s.onlyMethods(w, r, s.handleConfig, http.MethodGet)
	case p == "/api/info":
		s.onlyMethods(w, r, s.handleInfo, http.MethodGet)
	case p == "/api" || strings.HasPrefix(p, "/api/"):
		s.restError(w, r, http.StatusNotFound, "The requested endpoint "+p+" does not exist")
	default:
		// The web UI's catch-all.
		h := "text/html; charset=utf-8"
		s.write(w, r, http.StatusOK, &h, []byte("<!doctype html><title>Infrahub (fake)</title>\n"))
	}
}

func (s *Server) onlyMethods(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, methods ...string) {
	for _, m := range methods {
		if r.Method == m {
			h(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	s.writeJSON(w, r, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
}

// write sends a body; contentType nil means no Content-Type header at all.
// Bodies of 100000 bytes or more are gzipped when the client accepts it,
// as Infrahub's GZip middleware does.
func (s *Server) write(w http.ResponseWriter, r *http.Request, status int, contentType *string, body []byte) {
	h := w.Header()
	if contentType == nil {
		h["Content-Type"] = nil // no sniffing either
	} else {
		h.Set("Content-Type", *contentType)
	}
	if len(body) >= 100000 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := marshalCompact(v)
	if err != nil {
		body = []byte(`{"data":null,"errors":[{"message":"encoding failed","extensions":{"code":500}}]}`)
		status = http.StatusInternalServerError
	}
	ct := "application/json"
	s.write(w, r, status, &ct, body)
}

// marshalCompact encodes like Python's json.dumps(separators=(",",":"),
// ensure_ascii=False): compact, no HTML escaping. The value types of
// GraphQL results are written directly (fast, in field order); anything
// else goes through encoding/json.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := appendJSON(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func appendJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		appendJSONString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case gqlObject:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			appendJSONString(b, kv.k)
			b.WriteByte(':')
			if err := appendJSON(b, kv.v); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendJSON(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteByte(',')
			}
			appendJSONString(b, k)
			b.WriteByte(':')
			if err := appendJSON(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}

func appendJSONString(b *bytes.Buffer, s string) {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1)
}

// restError writes the REST envelope with an integer code.
func (s *Server) restError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.writeJSON(w, r, status, restEnvelope(status, msg))
}

func restEnvelope(status int, msg any) map[string]any {
	return map[string]any{"data": nil, "errors": []any{map[string]any{"message": msg, "extensions": map[string]any{"code": status}}}}
}

// graphQLEnvelopeError writes the v1.11 GraphQL envelope (string code).
func (s *Server) graphQLEnvelopeError(w http.ResponseWriter, r *http.Request, status int, code, msg string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	s.writeJSON(w, r, status, map[string]any{"data": nil, "errors": []any{map[string]any{
		"message":    msg,
		"extensions": map[string]any{"code": code, "http_status": status, "data": data},
	}}})
}

func defaultFaultMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Server is shedding load; retry later."
	case http.StatusServiceUnavailable:
		return "Database unavailable"
	case http.StatusUnauthorized:
		return "Authentication is required"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error " + strconv.Itoa(status)
}

// applyFault returns true when it answered the request.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, ep string, f *Fault) bool {
	if f.Latency > 0 {
		// Reading the body to its end lets the server notice a client
		// that gives up, which ends the wait below.
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	s.logf("fault", "endpoint", ep, "status", f.Status, "truncate", f.Truncate, "graphql_error", f.GraphQLError, "latency", f.Latency)
	switch {
	case f.Truncate:
		rec := httptest.NewRecorder()
		s.route(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	case f.GraphQLError != "" && ep == EndpointGraphQL:
		s.writeJSON(w, r, http.StatusOK, map[string]any{"data": nil, "errors": []any{map[string]any{
			"message": f.GraphQLError, "locations": []gqlLoc{{Line: 2, Column: 3}}, "path": []any{"CoreArtifact"},
			"extensions": map[string]any{"code": "UNDEFINED_ERROR", "http_status": 500, "data": map[string]any{}},
		}}})
	case f.GraphQLError != "" && ep == EndpointQuery:
		s.storedQueryFailure(w, r, strings.TrimPrefix(r.URL.Path, "/api/query/"),
			[]*gqlError{{Message: f.GraphQLError, Path: []any{"CoreArtifact"}, Locations: []gqlLoc{{Line: 2, Column: 3}}}})
	case f.Status != 0:
		if f.Body != nil {
			ct := "application/json"
			s.write(w, r, f.Status, &ct, f.Body)
		} else {
			s.restError(w, r, f.Status, defaultFaultMessage(f.Status))
		}
	case f.Body != nil:
		ct := "application/json"
		s.write(w, r, http.StatusOK, &ct, f.Body)
	default:
		return false // latency only
	}
	return true
}

// sortedKeys is a helper for deterministic output.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
