package infrahubtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// JWTs as Infrahub issues them: HS256 with claims sub, iat, nbf, exp,
// fresh, type (access/refresh) and session_id.

type jwtClaims struct {
	Sub       string `json:"sub"`
	Iat       int64  `json:"iat"`
	Nbf       int64  `json:"nbf"`
	Exp       int64  `json:"exp"`
	Fresh     bool   `json:"fresh"`
	Type      string `json:"type"`
	SessionID string `json:"session_id"`
	// JTI is not in Infrahub's tokens; it keeps two tokens issued in the
	// same second distinct, which ExpireAccessTokens relies on.
	JTI string `json:"jti,omitempty"`
}

var b64url = base64.RawURLEncoding

func signJWT(key []byte, c jwtClaims) string {
	head := b64url.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(c)
	msg := head + "." + b64url.EncodeToString(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return msg + "." + b64url.EncodeToString(m.Sum(nil))
}

// parseJWT checks the signature; it does not check expiry.
func parseJWT(key []byte, tok string) (jwtClaims, bool) {
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64url.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return c, false
	}
	body, err := b64url.DecodeString(parts[1])
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, false
	}
	return c, true
}

// bearerOrCookie returns the Bearer token of the Authorization header, else
// the named cookie's value.
func bearerOrCookie(r *http.Request, cookie string) string {
	if scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if tok := strings.TrimSpace(rest); tok != "" {
			return tok
		}
	}
	if c, err := r.Cookie(cookie); err == nil {
		return c.Value
	}
	return ""
}

// principal is who made a request.
type principal struct {
	anonymous bool
	name      string // "user:<name>" or "token:<prefix>"
	viaJWT    bool
}

type authFailure struct {
	status int
	msg    string
	code   string // GraphQL catalogue code
}

const (
	msgInvalidToken  = "Invalid token"
	msgExpired       = "Expired Signature"
	msgAuthRequired  = "Authentication is required"
	msgAuthRequiredG = "Authentication is required to perform this operation"
)

// authenticate resolves credentials: X-INFRAHUB-KEY, then a Bearer JWT,
// then the access_token cookie. Present but invalid credentials fail even
// when anonymous access is allowed.
func (s *Server) authenticate(r *http.Request) (principal, *authFailure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key := r.Header.Get("X-INFRAHUB-KEY"); key != "" {
		name, ok := s.st.tokens[key]
		if !ok {
			return principal{}, &authFailure{http.StatusUnauthorized, msgInvalidToken, "AUTHENTICATION_REQUIRED"}
		}
		return principal{name: name}, nil
	}
	tok := bearerOrCookie(r, "access_token")
	if tok == "" {
		return principal{anonymous: true}, nil
	}
	c, ok := parseJWT(s.st.jwtKey, tok)
	if !ok || c.Type != "access" {
		return principal{}, &authFailure{http.StatusUnauthorized, msgInvalidToken, "AUTHENTICATION_REQUIRED"}
	}
	if s.st.expired[tok] || s.now().Unix() >= c.Exp {
		return principal{}, &authFailure{http.StatusUnauthorized, msgExpired, "TOKEN_EXPIRED"}
	}
	for user, id := range s.st.accounts {
		if id == c.Sub {
			return principal{name: "user:" + user, viaJWT: true}, nil
		}
	}
	return principal{}, &authFailure{http.StatusUnauthorized, "This account has been deactivated", "AUTHENTICATION_REQUIRED"}
}

// authorizeREST applies the anonymous and permission rules to a REST call
// and writes the refusal; it returns false when refused.
func (s *Server) authorizeREST(w http.ResponseWriter, r *http.Request) (principal, bool) {
	p, fail := s.authenticate(r)
	if fail != nil {
		s.restError(w, r, fail.status, fail.msg)
		return p, false
	}
	s.mu.Lock()
	anon, denied := s.st.anonymous, s.st.denied[p.name]
	if p.anonymous {
		denied = s.st.denied[""]
	}
	s.mu.Unlock()
	if p.anonymous && (!anon || (r.Method != http.MethodGet && r.Method != http.MethodOptions)) {
		s.restError(w, r, http.StatusUnauthorized, msgAuthRequired)
		return p, false
	}
	if denied {
		s.restError(w, r, http.StatusForbidden, "You do not have one of the following permissions: global:view")
		return p, false
	}
	return p, true
}

func (s *Server) issueTokens(user string) (access, refresh string, accessTTL, refreshTTL time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	session := newUUID()
	s.st.sessions[session] = true
	sub := s.st.accounts[user]
	accessTTL, refreshTTL = s.st.accessLifetime, s.st.refreshTTL
	access = signJWT(s.st.jwtKey, jwtClaims{Sub: sub, Iat: now, Nbf: now, Exp: now + int64(accessTTL/time.Second),
		Type: "access", SessionID: session, JTI: newUUID()})
	refresh = signJWT(s.st.jwtKey, jwtClaims{Sub: sub, Iat: now, Nbf: now, Exp: now + int64(refreshTTL/time.Second),
		Type: "refresh", SessionID: session, JTI: newUUID()})
	s.st.issued = append(s.st.issued, access)
	return access, refresh, accessTTL, refreshTTL
}

func setTokenCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, MaxAge: int(ttl / time.Second), HttpOnly: true, Path: "/"})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var in map[string]any
	if json.Unmarshal(body, &in) != nil || in == nil {
		s.writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
			"type": "json_invalid", "loc": []any{"body"}, "msg": "JSON decode error", "input": map[string]any{},
		}}})
		return
	}
	var missing []any
	for _, f := range []string{"username", "password"} {
		if _, ok := in[f].(string); !ok {
			missing = append(missing, map[string]any{"type": "missing", "loc": []any{"body", f}, "msg": "Field required", "input": in})
		}
	}
	if len(missing) > 0 {
		s.writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"detail": missing})
		return
	}
	user, pass := in["username"].(string), in["password"].(string)
	s.mu.Lock()
	want, ok := s.st.users[user]
	s.mu.Unlock()
	switch {
	case !ok:
		s.restError(w, r, http.StatusNotFound, "That login user doesn't exist in the system")
		return
	case !hmac.Equal([]byte(want), []byte(pass)):
		s.restError(w, r, http.StatusUnauthorized, "Incorrect password")
		return
	}
	access, refresh, attl, rttl := s.issueTokens(user)
	setTokenCookie(w, "access_token", access, attl)
	setTokenCookie(w, "refresh_token", refresh, rttl)
	s.logf("login", "user", user)
	s.writeJSON(w, r, http.StatusOK, map[string]any{"access_token": access, "refresh_token": refresh})
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	tok := bearerOrCookie(r, "refresh_token")
	if tok == "" {
		s.restError(w, r, http.StatusUnauthorized, "A JWT refresh token is required to perform this operation.")
		return
	}
	s.mu.Lock()
	c, ok := parseJWT(s.st.jwtKey, tok)
	now := s.now().Unix()
	var msg string
	switch {
	case !ok:
		msg = msgInvalidToken
	case now >= c.Exp:
		msg = msgExpired
	case c.Type != "refresh":
		msg = "Invalid token, current token is not a refresh token"
	case !s.st.sessions[c.SessionID]:
		msg = "The provided refresh token has been invalidated in the database"
	}
	var access string
	var ttl time.Duration
	if msg == "" {
		ttl = s.st.accessLifetime
		access = signJWT(s.st.jwtKey, jwtClaims{Sub: c.Sub, Iat: now, Nbf: now, Exp: now + int64(ttl/time.Second),
			Type: "access", SessionID: c.SessionID, JTI: newUUID()})
		s.st.issued = append(s.st.issued, access)
	}
	s.mu.Unlock()
	if msg != "" {
		s.restError(w, r, http.StatusUnauthorized, msg)
		return
	}
	setTokenCookie(w, "access_token", access, ttl)
	s.logf("token refreshed")
	s.writeJSON(w, r, http.StatusOK, map[string]any{"access_token": access})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-INFRAHUB-KEY") != "" {
		s.restError(w, r, http.StatusUnauthorized, msgAuthRequired)
		return
	}
	p, fail := s.authenticate(r)
	if fail != nil {
		s.restError(w, r, fail.status, fail.msg)
		return
	}
	if !p.viaJWT {
		s.restError(w, r, http.StatusUnauthorized, msgAuthRequired)
		return
	}
	tok := bearerOrCookie(r, "access_token")
	s.mu.Lock()
	if c, ok := parseJWT(s.st.jwtKey, tok); ok {
		delete(s.st.sessions, c.SessionID)
	}
	s.mu.Unlock()
	setTokenCookie(w, "access_token", "", -time.Second)
	setTokenCookie(w, "refresh_token", "", -time.Second)
	s.writeJSON(w, r, http.StatusOK, nil)
}
