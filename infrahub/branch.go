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
// read without a branch goes to. It need not be "main". The answer is
// cached for a few minutes per client.
func (c *Client) DefaultBranch(ctx context.Context) (string, error) {
	now := c.now()
	c.branchMu.Lock()
	if c.defaultBranch != "" && now.Sub(c.branchAt) < defaultBranchTTL {
		name := c.defaultBranch
		c.branchMu.Unlock()
		return name, nil
	}
	c.branchMu.Unlock()

	body, err := json.Marshal(graphQLRequest{Query: branchesQuery, OperationName: "VidraBranches"})
	if err != nil {
		return "", &Error{Kind: KindBadRequest, Message: "cannot encode query"}
	}
	resp, err := c.do(ctx, request{
		endpoint: endpointGraphQL, method: http.MethodPost, path: "/graphql",
		body: body, contentType: "application/json", auth: true,
	})
	if err != nil {
		return "", err
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
		return "", &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "branch list is not a GraphQL JSON object", Err: err}
	}
	if hasErrors(r.Errors) {
		info := parseErrorBody(append(append([]byte(`{"errors":`), r.Errors...), '}'))
		return "", &Error{Kind: KindGraphQL, Endpoint: endpointGraphQL, StatusCode: http.StatusOK, Code: info.code, Message: info.message()}
	}
	if r.Data == nil {
		return "", &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "response has no data.Branch"}
	}
	for _, b := range r.Data.Branch {
		if b.IsDefault && b.Name != "" {
			c.branchMu.Lock()
			c.defaultBranch, c.branchAt = b.Name, now
			c.branchMu.Unlock()
			return b.Name, nil
		}
	}
	return "", &Error{Kind: KindInvalidResponse, Endpoint: endpointGraphQL, Message: "no branch is marked is_default"}
}
