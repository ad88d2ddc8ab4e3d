package infrahubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/vidra-operator/vidra/infrahub"
)

// Webhook branch scopes (CoreWebhook.branch_scope).
const (
	ScopeAllBranches   = "all_branches"
	ScopeDefaultBranch = "default_branch"
	ScopeOtherBranches = "other_branches"
)

// WebhookConfig is one CoreStandardWebhook.
type WebhookConfig struct {
	URL    string
	Secret []byte
	// BranchScope defaults to default_branch, as in Infrahub: artifact
	// changes on other branches are then not delivered.
	BranchScope string
	// EventType is "all" (default) or one event type.
	EventType string
	// NodeKind, when set, filters events by node kind ("CoreArtifact").
	NodeKind string
	// Headers are added to deliveries (they cannot replace the webhook-*).
	Headers map[string]string
}

type webhookConfig = WebhookConfig

// Delivery records one webhook delivery.
type Delivery struct {
	WebhookID string // the webhook-id header of the last attempt
	URL       string
	EventType string
	EventID   string
	Branch    string
	Body      []byte
	// Signed is the text the signature covers: Infrahub's rendering of the
	// payload (see WithWebhookSigning), not Body when it holds non-ASCII.
	Signed   []byte
	Attempts int
	Status   int // of the last attempt, 0 for a network error
	Err      string
	Done     bool
}

// SetWebhook replaces all webhooks by one to url signed with secret, with
// Infrahub's default scope (default branch only) and all event types.
func (s *Server) SetWebhook(url string, secret []byte) {
	s.SetWebhooks(WebhookConfig{URL: url, Secret: secret})
}

// SetWebhooks replaces all webhooks; none disables deliveries.
func (s *Server) SetWebhooks(hooks ...WebhookConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.webhooks = nil
	for _, h := range hooks {
		if h.BranchScope == "" {
			h.BranchScope = ScopeDefaultBranch
		}
		if h.EventType == "" {
			h.EventType = "all"
		}
		h.Secret = append([]byte(nil), h.Secret...)
		s.st.webhooks = append(s.st.webhooks, h)
	}
}

// Deliveries returns the webhook deliveries so far.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.st.deliveries))
	copy(out, s.st.deliveries)
	return out
}

// FlushWebhooks waits until every delivery started so far has finished
// (succeeded or used up its attempts), or ctx ends.
func (s *Server) FlushWebhooks(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Event payloads are ordered objects: Infrahub builds them as Python dicts,
// whose insertion order both the body and the signed rendering keep.

func (s *Server) emitArtifactEventLocked(branchName string, rec *artifactRecord, prev, next *artifactVersion, event string) {
	s.emitLocked(branchName, "CoreArtifact", event, gqlObject{
		{"node_id", rec.id},
		{"artifact_definition_id", next.def.id},
		{"artifact_definition_name", next.def.name},
		{"target_id", next.tgt.id},
		{"target_kind", next.tgt.kind},
		{"checksum", next.checksum},
		{"checksum_previous", nullable(prev.checksum)},
		{"storage_id", next.storageID},
		{"storage_id_previous", nullable(prev.storageID)},
	})
}

// emitNodeDeletedLocked sends the node deletion event Infrahub emits when
// an artifact is deleted, e.g. by 1.11's artifact generation when its
// target left the definition's group.
func (s *Server) emitNodeDeletedLocked(branchName string, rec *artifactRecord, prev *artifactVersion) {
	s.emitLocked(branchName, "CoreArtifact", "infrahub.node.deleted", gqlObject{
		{"kind", "CoreArtifact"},
		{"node_id", rec.id},
		{"action", "deleted"},
		{"fields", []any{}},
		{"changelog", gqlObject{
			{"node_id", rec.id},
			{"node_kind", "CoreArtifact"},
			{"display_label", prev.name},
			{"attributes", gqlObject{}},
			{"relationships", gqlObject{}},
		}},
	})
}

// emitLocked sends an event to every matching webhook, asynchronously.
func (s *Server) emitLocked(branchName, kind, event string, data any) {
	now := s.now().UTC()
	eventID := newUUID()
	payload := gqlObject{
		{"data", data},
		{"id", eventID},
		{"branch", nullable(branchName)},
		{"account_id", nil},
		{"occured_at", now.Format("2006-01-02 15:04:05.000000+00:00")},
		{"event", event},
	}
	// httpx sends json.dumps(ensure_ascii=False, compact); Infrahub signs
	// its own rendering of the same dict.
	body, err := marshalCompact(payload)
	if err != nil {
		return
	}
	signed := renderSigned(payload, s.signing)
	for _, h := range s.st.webhooks {
		switch h.BranchScope {
		case ScopeDefaultBranch:
			if branchName != s.st.defaultBranch {
				continue
			}
		case ScopeOtherBranches:
			if branchName == s.st.defaultBranch {
				continue
			}
		}
		if h.EventType != "all" && h.EventType != event {
			continue
		}
		if h.NodeKind != "" && h.NodeKind != kind {
			continue
		}
		i := len(s.st.deliveries)
		s.st.deliveries = append(s.st.deliveries, Delivery{URL: h.URL, EventType: event, EventID: eventID,
			Branch: branchName, Body: body, Signed: signed})
		s.wg.Add(1)
		go s.deliver(i, h, body, signed)
	}
}

// deliver POSTs one event: up to 4 attempts (the first and 3 retries),
// each signed anew with a fresh webhook-id, like Infrahub 1.11.
func (s *Server) deliver(i int, h WebhookConfig, body, signed []byte) {
	defer s.wg.Done()
	const attempts = 4
	for n := 1; n <= attempts; n++ {
		var idb [16]byte
		_, _ = rand.Read(idb[:])
		id := "msg_" + hex.EncodeToString(idb[:])
		ts := s.now()
		req, err := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader(body))
		status, errText := 0, ""
		if err == nil {
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "python-httpx/0.28.1")
			for k, v := range h.Headers {
				req.Header.Set(k, v)
			}
			if len(h.Secret) > 0 {
				req.Header.Set(infrahub.HeaderWebhookID, id)
				req.Header.Set(infrahub.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
				req.Header.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(h.Secret, id, ts, signed))
			}
			s.count(EndpointWebhook)
			resp, derr := s.webhookClient.Do(req)
			if derr != nil {
				errText = derr.Error()
			} else {
				status = resp.StatusCode
				resp.Body.Close()
			}
		} else {
			errText = err.Error()
		}
		ok := status >= 200 && status < 300
		s.mu.Lock()
		d := &s.st.deliveries[i]
		d.WebhookID, d.Attempts, d.Status, d.Err = id, n, status, errText
		d.Done = ok || n == attempts
		s.mu.Unlock()
		s.logf("webhook delivery", "url", h.URL, "attempt", n, "status", status, "error", errText)
		if ok {
			return
		}
		if n < attempts {
			time.Sleep(s.retryDelay)
		}
	}
}

// Webhook signing modes: how the payload is rendered for the signature, by
// Infrahub release. The body sent is always compact UTF-8 JSON.
const (
	// SigningCompactASCII: json.dumps(payload, separators=(",", ":")) with
	// ASCII escapes, Infrahub 1.11 (the default).
	SigningCompactASCII = "json-compact-ascii"
	// SigningSpacedASCII: json.dumps(payload), the releases before compact
	// separators were pinned.
	SigningSpacedASCII = "json-spaced-ascii"
	// SigningPythonStr: str(payload), releases up to 1.2.
	SigningPythonStr = "python-str"
	// SigningBody: the body bytes themselves (not an Infrahub release; what
	// a receiver verifying only the raw body expects).
	SigningBody = "body"
)

// WithWebhookSigning sets the signing mode (default SigningCompactASCII).
func WithWebhookSigning(mode string) Option { return func(s *Server) { s.signing = mode } }

// renderSigned renders an event payload as the given mode signs it.
func renderSigned(payload any, mode string) []byte {
	var b bytes.Buffer
	switch mode {
	case SigningBody:
		out, _ := marshalCompact(payload)
		return out
	case SigningPythonStr:
		pyStr(&b, payload)
	case SigningSpacedASCII:
		pyDumps(&b, payload, ", ", ": ")
	default:
		pyDumps(&b, payload, ",", ":")
	}
	return b.Bytes()
}

// pyDumps writes v as Python's json.dumps with ensure_ascii (its default).
func pyDumps(b *bytes.Buffer, v any, itemSep, keySep string) {
	switch x := v.(type) {
	case gqlObject:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteString(itemSep)
			}
			pyDumps(b, kv.k, itemSep, keySep)
			b.WriteString(keySep)
			pyDumps(b, kv.v, itemSep, keySep)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteString(itemSep)
			}
			pyDumps(b, it, itemSep, keySep)
		}
		b.WriteByte(']')
	case string:
		b.WriteByte('"')
		for _, u := range utf16.Encode([]rune(x)) {
			switch {
			case u == '"' || u == '\\':
				b.WriteByte('\\')
				b.WriteByte(byte(u))
			case u == '\n':
				b.WriteString(`\n`)
			case u == '\r':
				b.WriteString(`\r`)
			case u == '\t':
				b.WriteString(`\t`)
			case u == '\b':
				b.WriteString(`\b`)
			case u == '\f':
				b.WriteString(`\f`)
			case u < 0x20 || u > 0x7e:
				fmt.Fprintf(b, `\u%04x`, u)
			default:
				b.WriteByte(byte(u))
			}
		}
		b.WriteByte('"')
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	}
}

// pyStr writes v as Python's str() of the dict.
func pyStr(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case gqlObject:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			pyStr(b, kv.k)
			b.WriteString(": ")
			pyStr(b, kv.v)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			pyStr(b, it)
		}
		b.WriteByte(']')
	case string:
		q := byte('\'')
		if strings.ContainsRune(x, '\'') && !strings.ContainsRune(x, '"') {
			q = '"'
		}
		b.WriteByte(q)
		for _, r := range x {
			switch {
			case r == rune(q) || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r < 0x20 || r == 0x7f || (r > 0x7f && r <= 0xff && !unicode.IsPrint(r)):
				fmt.Fprintf(b, `\x%02x`, r)
			case !unicode.IsPrint(r) && r <= 0xffff:
				fmt.Fprintf(b, `\u%04x`, r)
			case !unicode.IsPrint(r):
				fmt.Fprintf(b, `\U%08x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte(q)
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int:
		b.WriteString(strconv.Itoa(x))
	}
}
