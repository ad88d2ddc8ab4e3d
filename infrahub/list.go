package infrahub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Artifact statuses (CoreArtifact.status).
const (
	StatusReady      = "Ready"
	StatusPending    = "Pending"
	StatusProcessing = "Processing"
	StatusError      = "Error"
)

// ListOptions selects artifacts.
type ListOptions struct {
	// Name is the artifact name (the definition's artifact_name). Required.
	Name string
	// Branch is the Infrahub branch; "" means the default branch.
	Branch string
	// At is a point in time in any form ParseAt accepts; "" means now.
	At string
}

// Artifact is one CoreArtifact as listed.
type Artifact struct {
	ID          string
	Name        string
	Status      string
	ContentType string
	// Checksum is the MD5 (lowercase hex) of the content; empty before the
	// first generation.
	Checksum string
	// StorageID identifies the immutable stored content; empty before the
	// first generation, and always empty when listed through a stored query
	// that does not select storage_id { value }.
	StorageID      string
	DefinitionID   string
	DefinitionName string
	TargetID       string
	TargetLabel    string
	TargetKind     string
}

// Ready reports whether Infrahub reports the artifact Ready.
func (a Artifact) Ready() bool { return a.Status == StatusReady }

// HasContent reports whether the artifact has content to apply: Ready, or
// in Error with a checksum and a storage id. Infrahub keeps an artifact in
// Error when a failed render is followed by one that produces the same
// bytes (an unchanged checksum skips the update), so its content is good.
// Pending and Processing artifacts, and artifacts never generated, have
// none: keep what was applied last.
func (a Artifact) HasContent() bool {
	switch a.Status {
	case StatusReady:
		return a.Checksum != ""
	case StatusError:
		return validChecksum(a.Checksum) && a.StorageID != ""
	}
	return false
}

func validChecksum(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Infrahub renders a Text attribute with an enum as a GraphQL enum when
// experimental_features.graphql_enums is on: Ready becomes READY and
// application/yaml APPLICATION_YAML. Statuses are compared without case and
// content types mapped back, so both modes read the same.
var (
	knownStatuses     = []string{StatusReady, StatusPending, StatusProcessing, StatusError}
	knownContentTypes = []string{
		"application/json", "application/yaml", "application/xml", "application/hcl",
		"text/plain", "text/markdown", "text/csv", "image/svg+xml",
	}
)

// normalizeStatus returns Infrahub's spelling of an artifact status.
func normalizeStatus(s string) string {
	for _, k := range knownStatuses {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return s
}

// enumName is the GraphQL enum name Infrahub generates for a value.
func enumName(v string) string {
	return strings.ToUpper(strings.NewReplacer("/", "_", "+", "_", "-", "_", ".", "_").Replace(v))
}

// normalizeContentType returns the MIME type of a content_type value, in
// either mode.
func normalizeContentType(s string) string {
	for _, k := range knownContentTypes {
		if strings.EqualFold(s, k) || s == enumName(k) {
			return k
		}
	}
	if !strings.Contains(s, "/") && strings.ToUpper(s) == s {
		if major, minor, ok := strings.Cut(strings.ToLower(s), "_"); ok {
			return major + "/" + minor
		}
	}
	return strings.ToLower(s)
}

// artifactsQuery is the built-in listing query. It reads CoreArtifact
// only: no attribute of the definition (that needs view permission on
// CoreArtifactDefinition too), and of the target only what every
// CoreArtifactTarget has. It selects storage_id { value } (the object-store
// id), not storage_id { id } (the attribute's own id, the earlier
// operator's mistake). Pages come ordered by id (ordering switched off,
// Infrahub falls back to the node id), so they do not overlap when many
// artifacts share a name.
const artifactsQuery = `query VidraArtifacts($names: [String], $offset: Int, $limit: Int) {
  CoreArtifact(name__values: $names, offset: $offset, limit: $limit, order: {disable: true}) {
    count
    edges {
      node {
        id
        name { value }
        status { value }
        content_type { value }
        checksum { value }
        storage_id { value }
        object { node { id display_label __typename } }
      }
    }
  }
}`

// artifactsQueryUnordered is artifactsQuery for servers without the order
// argument; the completeness check still catches overlapping pages.
var artifactsQueryUnordered = strings.Replace(artifactsQuery, ", order: {disable: true}", "", 1)

// ListArtifacts returns the artifacts named opts.Name on opts.Branch as of
// opts.At, in the order Infrahub pages them (by id when it can). The list
// is complete or an error: a GraphQL error, or pages that do not add up to
// count distinct artifacts, is never an empty or partial list.
func (c *Client) ListArtifacts(ctx context.Context, opts ListOptions) ([]Artifact, error) {
	if strings.TrimSpace(opts.Name) == "" {
		return nil, &Error{Kind: KindBadRequest, Message: "artifact name is required"}
	}
	at, err := atParam(opts.At, c.now())
	if err != nil {
		return nil, err
	}
	if c.cfg.QueryName != "" {
		return c.listStored(ctx, opts, at)
	}
	return c.listGraphQL(ctx, opts, at)
}

func (c *Client) listGraphQL(ctx context.Context, opts ListOptions, at string) ([]Artifact, error) {
	out, err := c.listPages(ctx, opts, at, !c.noOrder.Load())
	if err != nil && !c.noOrder.Load() && rejectsOrder(err) {
		// An Infrahub too old to know `order`: page by its default order.
		c.noOrder.Store(true)
		return c.listPages(ctx, opts, at, false)
	}
	return out, err
}

// rejectsOrder reports whether err is a GraphQL validation error about the
// order argument.
func rejectsOrder(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindGraphQL && strings.Contains(e.Message, "'order'")
}

// listPages reads every page of a listing. The result is complete or an
// error: the count must not change between pages and the distinct ids read
// must number exactly count, otherwise pages overlapped or skipped
// artifacts (artifacts added or removed meanwhile, or a server ordering by
// name only) and a partial list would look like deletions.
func (c *Client) listPages(ctx context.Context, opts ListOptions, at string, ordered bool) ([]Artifact, error) {
	path := "/graphql"
	if opts.Branch != "" {
		path += "/" + url.PathEscape(opts.Branch)
	}
	var q url.Values
	if at != "" {
		q = url.Values{"at": {at}}
	}
	query := artifactsQuery
	if !ordered {
		query = artifactsQueryUnordered
	}
	const maxRestarts = 2
	var problem string
	for restart := 0; restart <= maxRestarts; restart++ {
		out, complete, err := c.readPages(ctx, path, q, query, opts.Name)
		if err != nil {
			return nil, err
		}
		if complete == "" {
			return out, nil
		}
		problem = complete
	}
	return nil, &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL,
		Message: "incomplete listing: " + problem}
}

// readPages reads the pages once; a non-empty problem says why the result
// is not a complete listing.
func (c *Client) readPages(ctx context.Context, path string, q url.Values, query, name string) (out []Artifact, problem string, err error) {
	seen := map[string]bool{}
	total := -1
	offset := 0
	for page := 1; ; page++ {
		if page > c.cfg.MaxPages {
			return nil, "", &Error{Kind: KindTooLarge, Endpoint: endpointGraphQL,
				Message: fmt.Sprintf("more than %d pages of %d artifacts", c.cfg.MaxPages, c.cfg.PageSize)}
		}
		body, err := json.Marshal(graphQLRequest{
			Query:         query,
			OperationName: "VidraArtifacts",
			Variables:     map[string]any{"names": []string{name}, "offset": offset, "limit": c.cfg.PageSize},
		})
		if err != nil {
			return nil, "", &Error{Kind: KindBadRequest, Message: "cannot encode query"}
		}
		resp, err := c.do(ctx, request{
			endpoint: endpointGraphQL, method: http.MethodPost, path: path, query: q,
			body: body, contentType: "application/json", auth: true,
		})
		if err != nil {
			return nil, "", err
		}
		arts, count, err := decodeArtifactPage(resp.body)
		if err != nil {
			return nil, "", err
		}
		if total >= 0 && count != total {
			return nil, fmt.Sprintf("the count changed from %d to %d between pages", total, count), nil
		}
		total = count
		for _, a := range arts {
			if !seen[a.ID] {
				seen[a.ID] = true
				out = append(out, a)
			}
		}
		if len(arts) == 0 && offset < total {
			return nil, fmt.Sprintf("empty page at offset %d of %d artifacts", offset, total), nil
		}
		offset += len(arts)
		if offset >= total {
			if len(out) != total {
				return nil, fmt.Sprintf("%d distinct artifacts read, Infrahub counts %d", len(out), total), nil
			}
			return out, "", nil
		}
	}
}

type graphQLRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

// attrValue decodes { value } attribute objects. A missing or null
// attribute, or a null value, gives "". Non-string values give their JSON.
type attrValue struct {
	Value scalarText `json:"value"`
}

func (a *attrValue) String() string {
	if a == nil {
		return ""
	}
	return string(a.Value)
}

// scalarText is a JSON string as text; other JSON values as their JSON.
type scalarText string

func (s *scalarText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = scalarText(v)
	case string(b) == "null":
		*s = ""
	default:
		*s = scalarText(b)
	}
	return nil
}

type relNode struct {
	ID           string     `json:"id"`
	DisplayLabel string     `json:"display_label"`
	Typename     string     `json:"__typename"`
	Name         *attrValue `json:"name"`
}

type relOne struct {
	Node *relNode `json:"node"`
}

type artifactNode struct {
	ID          string     `json:"id"`
	Name        *attrValue `json:"name"`
	Status      *attrValue `json:"status"`
	ContentType *attrValue `json:"content_type"`
	Checksum    *attrValue `json:"checksum"`
	StorageID   *attrValue `json:"storage_id"`
	Object      *relOne    `json:"object"`
	Definition  *relOne    `json:"definition"`
}

func (n *artifactNode) artifact() Artifact {
	a := Artifact{
		ID:          n.ID,
		Name:        n.Name.String(),
		Status:      normalizeStatus(n.Status.String()),
		ContentType: normalizeContentType(n.ContentType.String()),
		Checksum:    strings.ToLower(n.Checksum.String()),
		StorageID:   n.StorageID.String(),
	}
	if n.Object != nil && n.Object.Node != nil {
		o := n.Object.Node
		a.TargetID, a.TargetLabel, a.TargetKind = o.ID, o.DisplayLabel, o.Typename
	}
	if n.Definition != nil && n.Definition.Node != nil {
		d := n.Definition.Node
		a.DefinitionID, a.DefinitionName = d.ID, d.Name.String()
		if a.DefinitionName == "" {
			a.DefinitionName = d.DisplayLabel
		}
	}
	return a
}

type artifactEdges struct {
	Count *int `json:"count"`
	Edges []struct {
		Node *artifactNode `json:"node"`
	} `json:"edges"`
}

type graphQLResponse struct {
	Data *struct {
		CoreArtifact *artifactEdges `json:"CoreArtifact"`
	} `json:"data"`
	Errors json.RawMessage `json:"errors"`
}

// decodeGraphQL reads a GraphQL response body; errors inside it (even with
// data) are a KindGraphQL error.
func decodeGraphQL(endpoint string, body []byte) (*artifactEdges, error) {
	var r graphQLResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &Error{Kind: KindInvalidResponse, Endpoint: endpoint, Message: "response is not a GraphQL JSON object", Err: err}
	}
	if hasErrors(r.Errors) {
		info := parseErrorBody(append(append([]byte(`{"errors":`), r.Errors...), '}'))
		msg := info.message()
		if msg == "" {
			msg = "query failed"
		}
		return nil, &Error{Kind: KindGraphQL, Endpoint: endpoint, StatusCode: http.StatusOK, Code: info.code, Message: msg}
	}
	if r.Data == nil || r.Data.CoreArtifact == nil {
		return nil, &Error{Kind: KindInvalidResponse, Endpoint: endpoint, Message: "response has no data.CoreArtifact"}
	}
	for i, e := range r.Data.CoreArtifact.Edges {
		if e.Node == nil || e.Node.ID == "" {
			return nil, &Error{Kind: KindInvalidResponse, Endpoint: endpoint, Message: fmt.Sprintf("edge %d has no node id", i)}
		}
	}
	return r.Data.CoreArtifact, nil
}

func hasErrors(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("[]"))
}

// decodeArtifactPage decodes one page of the built-in query.
func decodeArtifactPage(body []byte) ([]Artifact, int, error) {
	ce, err := decodeGraphQL(endpointGraphQL, body)
	if err != nil {
		return nil, 0, err
	}
	if ce.Count == nil || *ce.Count < 0 {
		return nil, 0, &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "response has no count"}
	}
	arts := make([]Artifact, 0, len(ce.Edges))
	for _, e := range ce.Edges {
		arts = append(arts, e.Node.artifact())
	}
	return arts, *ce.Count, nil
}

// listStored runs the stored query the earlier operator used:
// POST /api/query/{name}?update_group=false&branch=..&at=.. with
// {"variables":{"artifactname": name}}. Anonymous clients use GET, which
// Infrahub allows without credentials, with the variable in the query string.
func (c *Client) listStored(ctx context.Context, opts ListOptions, at string) ([]Artifact, error) {
	q := url.Values{"update_group": {"false"}}
	if opts.Branch != "" {
		q.Set("branch", opts.Branch)
	}
	if at != "" {
		q.Set("at", at)
	}
	req := request{
		endpoint: endpointQuery,
		path:     "/api/query/" + url.PathEscape(c.cfg.QueryName),
		auth:     true,
	}
	if c.mode == authAnonymous {
		q.Set("artifactname", opts.Name)
		req.method = http.MethodGet
	} else {
		body, err := json.Marshal(map[string]any{"variables": map[string]any{"artifactname": opts.Name}})
		if err != nil {
			return nil, &Error{Kind: KindBadRequest, Message: "cannot encode variables"}
		}
		req.method, req.body, req.contentType = http.MethodPost, body, "application/json"
	}
	req.query = q
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return decodeStoredQuery(opts.Name, resp.body)
}

// decodeStoredQuery reads data.CoreArtifact.edges[].node of a stored query.
// Such queries may select fewer fields than the built-in one: without a
// status, an artifact with a checksum counts as Ready and one without as
// Pending; storage_id { id } (the attribute id) is ignored. Nodes whose
// name is known and differs from name are dropped, as are duplicates.
func decodeStoredQuery(name string, body []byte) ([]Artifact, error) {
	ce, err := decodeGraphQL(endpointQuery, body)
	if err != nil {
		return nil, err
	}
	out := make([]Artifact, 0, len(ce.Edges))
	seen := map[string]bool{}
	for _, e := range ce.Edges {
		a := e.Node.artifact()
		if a.Name != "" && a.Name != name {
			continue
		}
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		if a.Name == "" {
			a.Name = name
		}
		if a.Status == "" {
			if a.Checksum != "" {
				a.Status = StatusReady
			} else {
				a.Status = StatusPending
			}
		}
		out = append(out, a)
	}
	return out, nil
}
