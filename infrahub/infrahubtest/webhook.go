package infrahubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

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
	Attempts  int
	Status    int // of the last attempt, 0 for a network error
	Err       string
	Done      bool
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

type artifactEventData struct {
	NodeID                 string  `json:"node_id"`
	ArtifactDefinitionID   string  `json:"artifact_definition_id"`
	ArtifactDefinitionName string  `json:"artifact_definition_name"`
	TargetID               string  `json:"target_id"`
	TargetKind             string  `json:"target_kind"`
	Checksum               string  `json:"checksum"`
	ChecksumPrevious       *string `json:"checksum_previous"`
	StorageID              string  `json:"storage_id"`
	StorageIDPrevious      *string `json:"storage_id_previous"`
}

type nodeEventData struct {
	Kind      string         `json:"kind"`
	NodeID    string         `json:"node_id"`
	Action    string         `json:"action"`
	Fields    []string       `json:"fields"`
	Changelog map[string]any `json:"changelog"`
}

type eventPayload struct {
	Data      any     `json:"data"`
	ID        string  `json:"id"`
	Branch    *string `json:"branch"`
	AccountID *string `json:"account_id"`
	OccuredAt string  `json:"occured_at"`
	Event     string  `json:"event"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) emitArtifactEventLocked(branchName string, rec *artifactRecord, prev, next *artifactVersion, event string) {
	s.emitLocked(branchName, "CoreArtifact", event, artifactEventData{
		NodeID:                 rec.id,
		ArtifactDefinitionID:   next.def.id,
		ArtifactDefinitionName: next.def.name,
		TargetID:               next.tgt.id,
		TargetKind:             next.tgt.kind,
		Checksum:               next.checksum,
		ChecksumPrevious:       nullable(prev.checksum),
		StorageID:              next.storageID,
		StorageIDPrevious:      nullable(prev.storageID),
	})
}

func (s *Server) emitNodeDeletedLocked(branchName string, rec *artifactRecord, prev *artifactVersion) {
	s.emitLocked(branchName, "CoreArtifact", "infrahub.node.deleted", nodeEventData{
		Kind: "CoreArtifact", NodeID: rec.id, Action: "deleted", Fields: []string{},
		Changelog: map[string]any{"node_id": rec.id, "node_kind": "CoreArtifact", "display_label": prev.name,
			"attributes": map[string]any{}, "relationships": map[string]any{}},
	})
}

// emitLocked sends an event to every matching webhook, asynchronously.
func (s *Server) emitLocked(branchName, kind, event string, data any) {
	now := s.now().UTC()
	payload := eventPayload{
		Data:      data,
		ID:        newUUID(),
		Branch:    nullable(branchName),
		OccuredAt: now.Format("2006-01-02 15:04:05.000000+00:00"),
		Event:     event,
	}
	body, err := marshalCompact(payload)
	if err != nil {
		return
	}
	for _, h := range s.st.webhooks {
		switch h.BranchScope {
		case ScopeDefaultBranch:
			if branchName != "main" {
				continue
			}
		case ScopeOtherBranches:
			if branchName == "main" {
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
		s.st.deliveries = append(s.st.deliveries, Delivery{URL: h.URL, EventType: event, EventID: payload.ID,
			Branch: branchName, Body: body})
		s.wg.Add(1)
		go s.deliver(i, h, body)
	}
}

// deliver POSTs one event: up to 4 attempts (the first and 3 retries),
// each signed anew with a fresh webhook-id, like Infrahub 1.11.
func (s *Server) deliver(i int, h WebhookConfig, body []byte) {
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
				req.Header.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(h.Secret, id, ts, body))
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
