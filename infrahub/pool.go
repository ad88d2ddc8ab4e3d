package infrahub

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// DefaultPoolIdleTTL is how long a Pool keeps a client nobody asked for.
const DefaultPoolIdleTTL = time.Hour

// Pool hands out one *Client per distinct configuration (base URL,
// credentials, TLS settings, query name and limits), so that all syncs using
// the same Infrahub account share one login. When the password of a
// username changes, the client of the old password is dropped. Clients not
// asked for during IdleTTL are dropped too. Safe for concurrent use.
type Pool struct {
	// IdleTTL overrides DefaultPoolIdleTTL when positive.
	IdleTTL time.Duration

	mu      sync.Mutex
	clients map[string]*poolEntry
	now     func() time.Time
}

type poolEntry struct {
	client    *Client
	principal string // identifies a username on a server; "" for tokens/anonymous
	lastUsed  time.Time
}

// NewPool returns an empty Pool.
func NewPool() *Pool {
	return &Pool{clients: map[string]*poolEntry{}, now: time.Now}
}

// Get returns the pooled client for cfg, creating it (and replacing a
// client of the same user with other credentials) when needed.
func (p *Pool) Get(cfg Config) (*Client, error) {
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	key := fingerprint(cfg)
	principal := ""
	if cfg.APIToken == "" && cfg.Username != "" {
		principal = fingerprint(Config{BaseURL: cfg.BaseURL, Username: cfg.Username, CABundle: cfg.CABundle,
			InsecureSkipVerify: cfg.InsecureSkipVerify, QueryName: cfg.QueryName})
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	ttl := p.IdleTTL
	if ttl <= 0 {
		ttl = DefaultPoolIdleTTL
	}
	for k, e := range p.clients {
		if k != key && now.Sub(e.lastUsed) > ttl {
			delete(p.clients, k)
		}
	}
	if e, ok := p.clients[key]; ok {
		e.lastUsed = now
		return e.client, nil
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if principal != "" {
		for k, e := range p.clients {
			if e.principal == principal {
				delete(p.clients, k) // same user, credentials changed
			}
		}
	}
	p.clients[key] = &poolEntry{client: c, principal: principal, lastUsed: now}
	return c, nil
}

// Len returns the number of pooled clients.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// fingerprint hashes every setting that makes two clients different. Secrets
// only enter the hash.
func fingerprint(cfg Config) string {
	h := sha256.New()
	field := func(v any) { fmt.Fprintf(h, "%v\x00", v) }
	field(cfg.BaseURL)
	field(cfg.Username)
	field(cfg.Password)
	field(cfg.APIToken)
	field(string(cfg.CABundle))
	field(cfg.InsecureSkipVerify)
	field(cfg.Timeout)
	field(cfg.MaxResponseBytes)
	field(cfg.MaxPages)
	field(cfg.PageSize)
	field(cfg.Retries)
	field(cfg.RetryBaseDelay)
	field(cfg.MaxRetryWait)
	field(cfg.QueryName)
	field(cfg.UserAgent)
	field(fmt.Sprintf("%p", cfg.HTTPClient))
	return hex.EncodeToString(h.Sum(nil))
}
