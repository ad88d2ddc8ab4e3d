package infrahub

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook verification errors. Verify wraps them with detail; test with
// errors.Is.
var (
	// ErrBadSignature: headers missing or malformed, no secret configured,
	// or no signature matches the body.
	ErrBadSignature = errors.New("infrahub webhook: bad signature")
	// ErrStaleTimestamp: webhook-timestamp is missing, not a number, or
	// further from now than the tolerance.
	ErrStaleTimestamp = errors.New("infrahub webhook: timestamp outside tolerance")
	// ErrDuplicate: a delivery with this webhook-id was already accepted.
	ErrDuplicate = errors.New("infrahub webhook: duplicate delivery")
)

// Webhook header names (Standard Webhooks style, as Infrahub sends them).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Defaults of WebhookVerifier.
const (
	DefaultWebhookTolerance = 5 * time.Minute
	DefaultWebhookMaxIDs    = 10000
)

// SignWebhook computes a webhook-signature header value:
// "v1," + base64(HMAC-SHA256(secret, id + "." + unix seconds + "." + body)).
// Infrahub passes its own rendering of the payload as body (see
// PythonJSON), which differs from the bytes it sends for non-ASCII text.
// The secret is the raw shared key (no whsec_ prefix, no base64 decoding).
func SignWebhook(secret []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(webhookMAC(secret, id, strconv.FormatInt(ts.Unix(), 10), body))
}

func webhookMAC(secret []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// WebhookVerifier checks Infrahub webhook deliveries: the signature over the
// raw body bytes or over one of the renderings of its payload that the
// supported Infrahub releases sign (WebhookEncodings; constant-time), the
// timestamp within Tolerance of Now, and
// that the webhook-id was not accepted before (remembered for twice the
// tolerance, at most MaxIDs ids). Infrahub gives every delivery, retries
// included, a new id, so a duplicate id is a replay. Safe for concurrent use;
// the zero value with Secret set is ready.
type WebhookVerifier struct {
	// Secret is the webhook's shared key.
	Secret []byte
	// Tolerance bounds |now - webhook-timestamp|; 0 means 5 minutes.
	Tolerance time.Duration
	// Now replaces time.Now.
	Now func() time.Time
	// MaxIDs bounds the remembered ids; 0 means 10000.
	MaxIDs int

	mu    sync.Mutex
	seen  map[string]time.Time // id -> expiry
	order []seenID             // insertion order, for expiry and bounding
}

type seenID struct {
	id     string
	expiry time.Time
}

// Verify checks one delivery and returns its webhook-id. The id is recorded
// only when everything else is valid.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) (string, error) {
	id, _, err := v.VerifyEncoding(h, body)
	return id, err
}

// VerifyEncoding is Verify that also says which rendering of the payload
// the signature covers (see WebhookEncodings). The signature is compared in
// constant time against the raw body and every re-rendering, all of them
// always computed, so the time taken does not tell which one matched.
func (v *WebhookVerifier) VerifyEncoding(h http.Header, body []byte) (string, WebhookEncoding, error) {
	id := h.Get(HeaderWebhookID)
	tsRaw := h.Get(HeaderWebhookTimestamp)
	sigs := h.Get(HeaderWebhookSignature)
	if len(v.Secret) == 0 {
		return id, "", fmt.Errorf("%w: no shared key configured", ErrBadSignature)
	}
	if id == "" || sigs == "" {
		return id, "", fmt.Errorf("%w: missing %s or %s header", ErrBadSignature, HeaderWebhookID, HeaderWebhookSignature)
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(tsRaw), 10, 64)
	if err != nil {
		return id, "", fmt.Errorf("%w: bad %s header", ErrStaleTimestamp, HeaderWebhookTimestamp)
	}
	tsText := strings.TrimSpace(tsRaw)
	var got [][]byte
	for _, s := range strings.Fields(sigs) {
		version, b64, found := strings.Cut(s, ",")
		if !found || version != "v1" {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil {
			got = append(got, sig)
		}
	}
	matched := WebhookEncoding("")
	for _, enc := range WebhookEncodings {
		signed, ok := renderPayload(enc, body)
		if !ok {
			// Not JSON: only the raw body can have been signed. Still
			// compute a MAC so the work does not depend on the body.
			signed = body
		}
		want := webhookMAC(v.Secret, id, tsText, signed)
		for _, sig := range got {
			if hmac.Equal(sig, want) && ok && matched == "" {
				matched = enc
			}
		}
	}
	if matched == "" {
		return id, "", ErrBadSignature
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultWebhookTolerance
	}
	sent := time.Unix(ts, 0)
	if d := now.Sub(sent); d > tol || d < -tol {
		return id, matched, fmt.Errorf("%w: sent %s, now %s", ErrStaleTimestamp, sent.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !v.remember(id, now, now.Add(2*tol)) {
		return id, matched, ErrDuplicate
	}
	return id, matched, nil
}

// renderPayload returns the bytes an Infrahub release using enc signed for
// body; false when body is not a JSON document.
func renderPayload(enc WebhookEncoding, body []byte) ([]byte, bool) {
	switch enc {
	case EncodingBody:
		return body, true
	case EncodingCompactASCII:
		out, err := PythonJSON(body, true)
		return out, err == nil
	case EncodingSpacedASCII:
		out, err := PythonJSON(body, false)
		return out, err == nil
	case EncodingPythonRepr:
		out, err := PythonRepr(body)
		return out, err == nil
	}
	return nil, false
}

// remember records id; false when it is already known.
func (v *WebhookVerifier) remember(id string, now, expiry time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	// Drop expired ids (they are in insertion order, expiry grows with it).
	n := 0
	for n < len(v.order) && !v.order[n].expiry.After(now) {
		if exp, ok := v.seen[v.order[n].id]; ok && exp.Equal(v.order[n].expiry) {
			delete(v.seen, v.order[n].id)
		}
		n++
	}
	v.order = v.order[n:]
	if exp, ok := v.seen[id]; ok && exp.After(now) {
		return false
	}
	maxIDs := v.MaxIDs
	if maxIDs <= 0 {
		maxIDs = DefaultWebhookMaxIDs
	}
	for len(v.order) >= maxIDs {
		old := v.order[0]
		if exp, ok := v.seen[old.id]; ok && exp.Equal(old.expiry) {
			delete(v.seen, old.id)
		}
		v.order = v.order[1:]
	}
	v.seen[id] = expiry
	v.order = append(v.order, seenID{id: id, expiry: expiry})
	return true
}

// Event types of artifact webhooks.
const (
	EventArtifactCreated = "infrahub.artifact.created"
	EventArtifactUpdated = "infrahub.artifact.updated"
	// EventNodeDeleted with kind CoreArtifact is how an artifact's deletion
	// is delivered (Infrahub 1.11 deletes artifacts whose target left the
	// definition's group).
	EventNodeDeleted = "infrahub.node.deleted"
	// KindArtifact is the node kind of artifacts.
	KindArtifact = "CoreArtifact"
)

// Event is a decoded Infrahub webhook payload. Artifact fields are filled
// for infrahub.artifact.* events; NodeKind and ArtifactID (node_id) also for
// infrahub.node.* events.
type Event struct {
	// ID is the event id (not the webhook-id of the delivery).
	ID        string
	EventType string
	// OccurredAt is Infrahub's occured_at text, e.g.
	// "2026-08-20 10:15:02.123456+00:00"; OccurredTime is it parsed (zero
	// when unparseable).
	OccurredAt   string
	OccurredTime time.Time
	// Branch is empty for global events.
	Branch    string
	AccountID string
	// NodeKind is data.kind when present (node events).
	NodeKind               string
	ArtifactID             string
	ArtifactDefinitionID   string
	ArtifactDefinitionName string
	TargetID               string
	TargetKind             string
	Checksum               string
	ChecksumPrevious       string
	StorageID              string
	StorageIDPrevious      string
	// Raw is the whole payload.
	Raw json.RawMessage
}

// IsArtifactEvent reports whether e is an artifact created/updated event.
func (e Event) IsArtifactEvent() bool {
	return e.EventType == EventArtifactCreated || e.EventType == EventArtifactUpdated
}

// IsArtifactDeletion reports whether e says an artifact (ArtifactID) was
// deleted.
func (e Event) IsArtifactDeletion() bool {
	return e.EventType == EventNodeDeleted && e.NodeKind == KindArtifact
}

// DecodeEvent decodes a webhook body. It needs a JSON object with a
// non-empty "event"; "data" may be absent or null.
func DecodeEvent(body []byte) (Event, error) {
	var p struct {
		Data *struct {
			Kind                   *string `json:"kind"`
			NodeID                 *string `json:"node_id"`
			ArtifactDefinitionID   *string `json:"artifact_definition_id"`
			ArtifactDefinitionName *string `json:"artifact_definition_name"`
			TargetID               *string `json:"target_id"`
			TargetKind             *string `json:"target_kind"`
			Checksum               *string `json:"checksum"`
			ChecksumPrevious       *string `json:"checksum_previous"`
			StorageID              *string `json:"storage_id"`
			StorageIDPrevious      *string `json:"storage_id_previous"`
		} `json:"data"`
		ID         *string `json:"id"`
		Branch     *string `json:"branch"`
		AccountID  *string `json:"account_id"`
		OccuredAt  *string `json:"occured_at"`
		OccurredAt *string `json:"occurred_at"`
		Event      *string `json:"event"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, errors.New("infrahub webhook: payload is not a JSON object")
	}
	if err := json.Unmarshal(trimmed, &p); err != nil {
		return Event{}, fmt.Errorf("infrahub webhook: bad payload: %w", err)
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	e := Event{
		ID:        str(p.ID),
		EventType: str(p.Event),
		Branch:    str(p.Branch),
		AccountID: str(p.AccountID),
		Raw:       json.RawMessage(append([]byte(nil), trimmed...)),
	}
	if e.EventType == "" {
		return Event{}, errors.New("infrahub webhook: payload has no event type")
	}
	e.OccurredAt = str(p.OccuredAt)
	if e.OccurredAt == "" {
		e.OccurredAt = str(p.OccurredAt)
	}
	e.OccurredTime = parseOccurredAt(e.OccurredAt)
	if d := p.Data; d != nil {
		e.NodeKind = str(d.Kind)
		e.ArtifactID = str(d.NodeID)
		e.ArtifactDefinitionID = str(d.ArtifactDefinitionID)
		e.ArtifactDefinitionName = str(d.ArtifactDefinitionName)
		e.TargetID = str(d.TargetID)
		e.TargetKind = str(d.TargetKind)
		e.Checksum = str(d.Checksum)
		e.ChecksumPrevious = str(d.ChecksumPrevious)
		e.StorageID = str(d.StorageID)
		e.StorageIDPrevious = str(d.StorageIDPrevious)
	}
	return e, nil
}

// OccurredAtLayout is how Infrahub renders occured_at.
const OccurredAtLayout = "2006-01-02 15:04:05.999999-07:00"

func parseOccurredAt(s string) time.Time {
	for _, layout := range []string{OccurredAtLayout, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
