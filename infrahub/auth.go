package infrahub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// credentials returns the token to send and the session generation it
// belongs to, logging in first when a password session has no token yet.
func (c *Client) credentials(ctx context.Context) (string, uint64, error) {
	switch c.mode {
	case authToken:
		return c.cfg.APIToken, 0, nil
	case authPassword:
	default:
		return "", 0, nil
	}
	s := &c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.access == "" {
		if err := c.loginLocked(ctx); err != nil {
			return "", 0, err
		}
	}
	return s.access, s.gen, nil
}

// renew replaces the access token after a 401 obtained with generation gen.
// Concurrent callers that saw the same 401 renew only once. An expired
// token is refreshed first; if the refresh fails (or the 401 was not about
// expiry) the client logs in again.
func (c *Client) renew(ctx context.Context, gen uint64, expired bool) error {
	s := &c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen && s.access != "" {
		return nil // someone else already renewed
	}
	if expired && s.refresh != "" {
		err := c.refreshLocked(ctx)
		if err == nil {
			return nil
		}
		if !IsAuth(err) {
			return err
		}
	}
	return c.loginLocked(ctx)
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (c *Client) loginLocked(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"username": c.cfg.Username, "password": c.cfg.Password})
	if err != nil {
		return &Error{Kind: KindAuth, Endpoint: endpointLogin, Message: "cannot encode login"}
	}
	resp, err := c.do(ctx, request{
		endpoint: endpointLogin, method: http.MethodPost, path: "/api/auth/login",
		body: body, contentType: "application/json",
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind != KindTransient && e.Kind != KindTooLarge {
			// Any refusal of a login is an authentication problem.
			e.Kind = KindAuth
		}
		return err
	}
	var tok tokenResponse
	if json.Unmarshal(resp.body, &tok) != nil || tok.AccessToken == "" {
		return &Error{Kind: KindInvalidResponse, Endpoint: endpointLogin, StatusCode: resp.status,
			Message: "login response has no access_token"}
	}
	s := &c.session
	s.access, s.refresh = tok.AccessToken, tok.RefreshToken
	s.gen++
	return nil
}

func (c *Client) refreshLocked(ctx context.Context) error {
	refresh := c.session.refresh
	resp, err := c.do(ctx, request{
		endpoint: endpointRefresh, method: http.MethodPost, path: "/api/auth/refresh",
		contentType: "application/json",
		header:      func(h http.Header) { h.Set("Authorization", "Bearer "+refresh) },
	})
	if err != nil {
		return err
	}
	var tok tokenResponse
	if json.Unmarshal(resp.body, &tok) != nil || tok.AccessToken == "" {
		return &Error{Kind: KindInvalidResponse, Endpoint: endpointRefresh, StatusCode: resp.status,
			Message: "refresh response has no access_token"}
	}
	s := &c.session
	s.access = tok.AccessToken
	if tok.RefreshToken != "" {
		s.refresh = tok.RefreshToken
	}
	s.gen++
	return nil
}
