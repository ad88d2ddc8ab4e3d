package infrahub

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// defaultBranchTTL bounds how long the default branch's name is reused. It
// is chosen when Infrahub is installed (INFRAHUB_INITIAL_DEFAULT_BRANCH)
// and practically never changes.
const defaultBranchTTL = 10 * time.Minute

const branchesQuery = `query VidraBranches { Branch { name is_default } }`

// DefaultBranch returns the name of Infrahub's default branch, the one a
// read without a branch goes to. It need not be "main". The branch list is
// cached for a few minutes per client.
func (c *Client) DefaultBranch(ctx context.Context) (string, error) {
	def, _, err := c.branches(ctx)
	return def, err
}

// ResolveBranch returns the branch a sync's targetBranch designates: ""
// is the default branch; so is "main" (the API's default value) on an
// Infrahub whose default branch has another name and that has no branch
// called main. Any other name is itself.
func (c *Client) ResolveBranch(ctx context.Context, name string) (string, error) {
	if name != "" && name != "main" {
		return name, nil
	}
	def, all, err := c.branches(ctx)
	if err != nil {
		return "", err
	}
	if name == "main" && all["main"] {
		return "main", nil
	}
	return def, nil
}

// branches returns the default branch and the set of branch names.
func (c *Client) branches(ctx context.Context) (string, map[string]bool, error) {
	now := c.now()
	c.branchMu.Lock()
	if c.defaultBranch != "" && now.Sub(c.branchAt) < defaultBranchTTL {
		def, all := c.defaultBranch, c.branchNames
		c.branchMu.Unlock()
		return def, all, nil
	}
	c.branchMu.Unlock()

	body, err := json.Marshal(graphQLRequest{Query: branchesQuery, OperationName: "VidraBranches"})
	if err != nil {
		return "", nil, &Error{Kind: KindBadRequest, Message: "cannot encode query"}
	}
	resp, err := c.do(ctx, request{
		endpoint: endpointGraphQL, method: http.MethodPost, path: "/graphql",
		body: body, contentType: "application/json", auth: true,
	})
	if err != nil {
		return "", nil, err
	}
	var r struct {
		Data *struct {
			Branch []struct {
				Name      string `json:"name"`
				IsDefault bool   `json:"is_default"`
			} `json:"Branch"`
		} `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(resp.body, &r); err != nil {
		return "", nil, &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "branch list is not a GraphQL JSON object", Err: err}
	}
	if hasErrors(r.Errors) {
		info := parseErrorBody(append(append([]byte(`{"errors":`), r.Errors...), '}'))
		return "", nil, &Error{Kind: KindGraphQL, Endpoint: endpointGraphQL, StatusCode: http.StatusOK, Code: info.code, Message: info.message()}
	}
	if r.Data == nil {
		return "", nil, &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "response has no data.Branch"}
	}
	def := ""
	all := map[string]bool{}
	for _, b := range r.Data.Branch {
		all[b.Name] = true
		if b.IsDefault && b.Name != "" {
			def = b.Name
		}
	}
	if def == "" {
		return "", nil, &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "no branch is marked is_default"}
	}
	c.branchMu.Lock()
	c.defaultBranch, c.branchNames, c.branchAt = def, all, now
	c.branchMu.Unlock()
	return def, all, nil
}
