package infrahub

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 64 << 20
	DefaultPageSize         = 500
	DefaultMaxPages         = 1000
	DefaultRetries          = 3
	DefaultRetryBaseDelay   = 250 * time.Millisecond
	DefaultMaxRetryWait     = 30 * time.Second
	DefaultUserAgent        = "vidra-infrahub-client/1"
	// DefaultQueryName is the stored query of the earlier operator's setup.
	DefaultQueryName = "ArtifactIDs"
	// MaxPageSize bounds PageSize; Infrahub pages internally at 5000.
	MaxPageSize = 5000
)

// Endpoint labels used in errors and passed to RequestObserver.
const (
	endpointLogin    = "login"
	endpointRefresh  = "refresh"
	endpointGraphQL  = "graphql"
	endpointQuery    = "query"
	endpointArtifact = "artifact"
	endpointStorage  = "storage"
)

// Config configures a Client. The zero values of the optional fields get
// the defaults above. A Config with neither APIToken nor Username reads
// Infrahub anonymously.
type Config struct {
	// BaseURL is Infrahub's address, e.g. http://infrahub:8000 or
	// https://host/prefix. It must not hold credentials.
	BaseURL string
	// Username and Password log in through /api/auth/login.
	Username, Password string
	// APIToken is sent as X-INFRAHUB-KEY and takes precedence over the login.
	APIToken string
	// CABundle holds PEM certificates trusted in addition to the system roots.
	CABundle []byte
	// InsecureSkipVerify turns off TLS certificate verification.
	InsecureSkipVerify bool
	// Timeout bounds each HTTP request, body included. Default 30s.
	Timeout time.Duration
	// MaxResponseBytes bounds every response body, so also the size of an
	// artifact. Default 64 MiB.
	MaxResponseBytes int64
	// MaxPages bounds the number of GraphQL pages per listing. Default 1000.
	MaxPages int
	// PageSize is the GraphQL `limit` per page. Default 500, at most 5000.
	PageSize int
	// Retries is the number of attempts for transient errors, first
	// included. Default 3; 1 disables retries.
	Retries int
	// RetryBaseDelay is the first backoff; it doubles per attempt, with
	// jitter. Default 250ms.
	RetryBaseDelay time.Duration
	// MaxRetryWait is the longest Retry-After honoured by waiting. A longer
	// one ends the call with a transient error carrying RetryAfter, for the
	// caller to requeue. Default 30s.
	MaxRetryWait time.Duration
	// QueryName, when set, lists artifacts through the stored query
	// /api/query/{QueryName} with the variable "artifactname" (the earlier
	// operator's setup, whose query was named ArtifactIDs) instead of the
	// built-in GraphQL query.
	QueryName string
	// UserAgent is sent with every request.
	UserAgent string
	// Observer, when set, is told about every HTTP attempt.
	Observer RequestObserver
	// HTTPClient replaces the client built from the TLS settings (tests).
	HTTPClient *http.Client
	// Now replaces time.Now.
	Now func() time.Time
}

// String never shows the password or the token.
func (c Config) String() string {
	return fmt.Sprintf("infrahub.Config{BaseURL: %q, auth: %s, QueryName: %q}", c.BaseURL, authDescription(c), c.QueryName)
}

// GoString keeps %#v from printing secrets too.
func (c Config) GoString() string { return c.String() }

func authDescription(c Config) string {
	switch {
	case c.APIToken != "":
		return "api-token"
	case c.Username != "":
		return fmt.Sprintf("password(user=%q)", c.Username)
	default:
		return "anonymous"
	}
}

// RequestObserver receives one call per HTTP attempt. endpoint is one of
// login, refresh, graphql, query, artifact, storage; code is the HTTP
// status, 0 when no response arrived.
type RequestObserver interface {
	ObserveRequest(endpoint string, code int, d time.Duration)
}

type authMode int

const (
	authAnonymous authMode = iota
	authToken
	authPassword
)

// Client talks to one Infrahub with one set of credentials. It is safe for
// concurrent use; logins are shared by all callers.
type Client struct {
	cfg     Config
	base    string // scheme://host[/prefix], no trailing slash
	hc      *http.Client
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	mode    authMode
	session session

	// noOrder is set once the server refused the order argument.
	noOrder atomic.Bool

	branchMu      sync.Mutex
	defaultBranch string
	branchNames   map[string]bool
	branchAt      time.Time
}

type session struct {
	mu      sync.Mutex
	access  string
	refresh string
	gen     uint64 // bumped on every new access token
}

// New validates cfg and returns a Client. Errors never contain secrets.
func New(cfg Config) (*Client, error) {
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	orDefault(&cfg.Timeout, DefaultTimeout)
	orDefault(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	orDefault(&cfg.MaxPages, DefaultMaxPages)
	orDefault(&cfg.PageSize, DefaultPageSize)
	cfg.PageSize = min(cfg.PageSize, MaxPageSize)
	orDefault(&cfg.Retries, DefaultRetries)
	orDefault(&cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	orDefault(&cfg.MaxRetryWait, DefaultMaxRetryWait)
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if strings.ContainsAny(cfg.QueryName, "/?#") {
		return nil, &Error{Kind: KindBadRequest, Message: "query name must not contain '/', '?' or '#'"}
	}
	if cfg.Username != "" && cfg.Password == "" && cfg.APIToken == "" {
		return nil, &Error{Kind: KindAuth, Message: "a username needs a password"}
	}
	c := &Client{cfg: cfg, base: base, now: cfg.Now, sleep: sleepCtx}
	if c.now == nil {
		c.now = time.Now
	}
	switch {
	case cfg.APIToken != "":
		c.mode = authToken
	case cfg.Username != "":
		c.mode = authPassword
	}
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		tr, err := newTransport(cfg)
		if err != nil {
			return nil, err
		}
		c.hc = &http.Client{Transport: tr}
	}
	return c, nil
}

// orDefault replaces a zero or negative setting by its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func normalizeBaseURL(raw string) (string, error) {
	bad := func(msg string) error {
		return &Error{Kind: KindBadRequest, Message: "base URL: " + msg}
	}
	if strings.TrimSpace(raw) == "" {
		return "", bad("empty")
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Parse errors quote the URL, which could hold a password.
		return "", bad("not a valid URL")
	}
	if u.User != nil {
		return "", bad("must not contain credentials; use the username/password or token settings")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", bad("scheme must be http or https")
	}
	if u.Host == "" {
		return "", bad("missing host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", bad("must not have a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u.String(), nil
}

func newTransport(cfg Config) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = cfg.Timeout
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(bytes.TrimSpace(cfg.CABundle)) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, &Error{Kind: KindBadRequest, Message: "CA bundle holds no PEM certificate"}
		}
		tlsCfg.RootCAs = pool
	}
	tlsCfg.InsecureSkipVerify = cfg.InsecureSkipVerify //nolint:gosec // only when asked
	tr.TLSClientConfig = tlsCfg
	return tr, nil
}

// String describes the client without secrets.
func (c *Client) String() string {
	q := "graphql"
	if c.cfg.QueryName != "" {
		q = "stored query " + c.cfg.QueryName
	}
	return fmt.Sprintf("infrahub.Client{url: %s, auth: %s, list: %s}", c.base, authDescription(c.cfg), q)
}

// BaseURL returns the normalised base URL.
func (c *Client) BaseURL() string { return c.base }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request describes one logical call; do turns it into attempts.
type request struct {
	endpoint    string
	method      string
	path        string // escaped, relative to base, starting with '/'
	query       url.Values
	body        []byte
	contentType string
	auth        bool // send credentials
	// header sets extra headers (login/refresh).
	header func(http.Header)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs req with retries for transient errors and one credential renewal
// on 401 for password logins.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	renewed := false
	for attempt := 1; ; attempt++ {
		var gen uint64
		var token string
		if req.auth {
			var err error
			token, gen, err = c.credentials(ctx)
			if err != nil {
				return nil, err
			}
		}
		resp, err := c.once(ctx, req, token)
		if err == nil && resp.status >= 200 && resp.status < 300 {
			return resp, nil
		}
		var e *Error
		if err == nil {
			e = classify(req.endpoint, resp.status, resp.header, resp.body, c.now())
			err = e
		} else if !errors.As(err, &e) {
			return nil, err
		}
		if e.StatusCode == http.StatusUnauthorized && req.auth && c.mode == authPassword && !renewed {
			renewed = true
			if rerr := c.renew(ctx, gen, e.Code == CodeTokenExpired); rerr != nil {
				return nil, rerr
			}
			attempt-- // a renewal does not use up a transient retry
			continue
		}
		if e.Kind != KindTransient || attempt >= c.cfg.Retries || ctx.Err() != nil {
			return nil, err
		}
		wait := c.backoff(attempt)
		if e.RetryAfter > 0 {
			if e.RetryAfter > c.cfg.MaxRetryWait {
				return nil, err
			}
			wait = e.RetryAfter
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, err
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBaseDelay << (attempt - 1)
	if d <= 0 || d > 10*time.Second {
		d = 10 * time.Second
	}
	// ±20% jitter.
	j := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + j
}

// once makes one HTTP attempt and reads the body within the limits.
func (c *Client) once(ctx context.Context, req request, token string) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := c.base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(actx, req.method, u, body)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Endpoint: req.endpoint, Message: "cannot build request"}
	}
	h := hreq.Header
	h.Set("Accept", "application/json")
	h.Set("User-Agent", c.cfg.UserAgent)
	if req.contentType != "" {
		h.Set("Content-Type", req.contentType)
	}
	if token != "" {
		switch c.mode {
		case authToken:
			h.Set("X-INFRAHUB-KEY", token)
		case authPassword:
			h.Set("Authorization", "Bearer "+token)
		}
	}
	if p := priorityOf(ctx); p != "" {
		h.Set(HeaderPriority, string(p))
	}
	if req.header != nil {
		req.header(h)
	}
	start := time.Now()
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		c.observe(req.endpoint, 0, time.Since(start))
		return nil, transportError(ctx, req.endpoint, err)
	}
	defer hresp.Body.Close()
	limit := c.cfg.MaxResponseBytes
	if hresp.StatusCode < 200 || hresp.StatusCode >= 300 {
		limit = min(limit, 64<<10) // error bodies: enough for a message
	}
	data, err := readLimited(hresp, limit)
	c.observe(req.endpoint, hresp.StatusCode, time.Since(start))
	if err != nil {
		if errors.Is(err, errTooLarge) {
			if hresp.StatusCode < 200 || hresp.StatusCode >= 300 {
				// Keep the beginning of an oversized error body.
				return &response{status: hresp.StatusCode, header: hresp.Header, body: data}, nil
			}
			return nil, &Error{Kind: KindTooLarge, Endpoint: req.endpoint, StatusCode: hresp.StatusCode,
				Message: fmt.Sprintf("response exceeds %d bytes", c.cfg.MaxResponseBytes)}
		}
		return nil, transportError(ctx, req.endpoint, err)
	}
	return &response{status: hresp.StatusCode, header: hresp.Header, body: data}, nil
}

var errTooLarge = errors.New("body too large")

func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, errTooLarge
	}
	size := resp.ContentLength
	if size < 0 || size > 1<<20 {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return buf.Bytes()[:limit], errTooLarge
	}
	return buf.Bytes(), nil
}

func transportError(ctx context.Context, endpoint string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return &Error{Kind: KindTransient, Endpoint: endpoint, Message: "request cancelled", Err: cerr}
	}
	// *url.Error repeats the URL; keep only the cause. The URL never holds
	// secrets, but the cause is what matters.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTransient, Endpoint: endpoint, Message: "request timed out", Err: err}
	}
	// A certificate Infrahub's name or CA do not vouch for will not get
	// better by retrying: report it like failed authentication (of the
	// server), with the cause.
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invalidErr x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &authErr) || errors.As(err, &invalidErr) {
		return &Error{Kind: KindAuth, Endpoint: endpoint, Message: "TLS certificate verification failed", Err: err}
	}
	return &Error{Kind: KindTransient, Endpoint: endpoint, Message: "request failed", Err: err}
}

func (c *Client) observe(endpoint string, code int, d time.Duration) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.ObserveRequest(endpoint, code, d)
	}
}
