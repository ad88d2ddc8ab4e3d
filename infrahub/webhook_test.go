package infrahub_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// The two vectors published with Infrahub (backend/tests/unit/webhook/test_models.py).
var webhookVectors = []struct {
	secret, id string
	ts         int64
	body, sig  string
}{
	{
		secret: "test", id: "msg_217b4ebcb84f4736b1ee222182aed371", ts: 1740656629,
		body: `{}`, sig: "v1,BQN9AgPA4evuGDChi9VKxNKRwediIXsAQz8hVHMfKNg=",
	},
	{
		secret: "my-webhook-secret", id: "msg_217b4ebcb84f4736b1ee222182aed371", ts: 1740656629,
		body: `{"data":{"id":"abc123","kind":"BuiltinTag","display_label":"my tag"},"event_type":"infrahub.node.created","branch":"main"}`,
		sig:  "v1,5JQxZW3lMNdaSnofcSV0Y3krxQ7aZI7EyThUqHVDGc4=",
	},
}

func TestSignWebhookVectors(t *testing.T) {
	for _, v := range webhookVectors {
		got := infrahub.SignWebhook([]byte(v.secret), v.id, time.Unix(v.ts, 0), []byte(v.body))
		assert.Equal(t, got, v.sig)
	}
	// The spaced-separator rendering of the second payload signs differently.
	spaced := `{"data": {"id": "abc123", "kind": "BuiltinTag", "display_label": "my tag"}, "event_type": "infrahub.node.created", "branch": "main"}`
	v := webhookVectors[1]
	assert.Assert(t, infrahub.SignWebhook([]byte(v.secret), v.id, time.Unix(v.ts, 0), []byte(spaced)) != v.sig)
}

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set("webhook-id", id)
	}
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if sig != "" {
		h.Set("webhook-signature", sig)
	}
	return h
}

func TestWebhookVerify(t *testing.T) {
	v0 := webhookVectors[1]
	at := time.Unix(v0.ts, 0)
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{name: "vector 1", secret: "test", h: headers(webhookVectors[0].id, v0.ts, webhookVectors[0].sig), body: "{}", now: at},
		{name: "vector 2", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at},
		{name: "several signatures, one valid", secret: v0.secret, h: headers(v0.id, v0.ts, "v1,AAAA v2,zzz "+v0.sig), body: v0.body, now: at},
		{name: "within tolerance", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at.Add(4 * time.Minute)},
		{name: "body changed", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: strings.Replace(v0.body, "main", "mainx", 1), now: at, want: infrahub.ErrBadSignature},
		// Infrahub signs the payload, not the bytes: the same payload with
		// other white space is the same delivery.
		{name: "white space only", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: v0.body + " \n", now: at},
		{name: "wrong secret", secret: "other", h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "id changed", secret: v0.secret, h: headers("msg_other", v0.ts, v0.sig), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "timestamp changed", secret: v0.secret, h: headers(v0.id, v0.ts+1, v0.sig), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "no signature", secret: v0.secret, h: headers(v0.id, v0.ts, ""), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "no id", secret: v0.secret, h: headers("", v0.ts, v0.sig), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "no v1 prefix", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig[3:]), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "no secret configured", secret: "", h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at, want: infrahub.ErrBadSignature},
		{name: "too old", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at.Add(6 * time.Minute), want: infrahub.ErrStaleTimestamp},
		{name: "from the future", secret: v0.secret, h: headers(v0.id, v0.ts, v0.sig), body: v0.body, now: at.Add(-6 * time.Minute), want: infrahub.ErrStaleTimestamp},
		{
			name: "bad timestamp", secret: v0.secret, body: v0.body, now: at, want: infrahub.ErrStaleTimestamp,
			h: http.Header{"Webhook-Id": {v0.id}, "Webhook-Timestamp": {"yesterday"}, "Webhook-Signature": {v0.sig}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &infrahub.WebhookVerifier{Secret: []byte(tc.secret), Now: func() time.Time { return tc.now }}
			id, err := v.Verify(tc.h, []byte(tc.body))
			if tc.want != nil {
				assert.Assert(t, errors.Is(err, tc.want), "%v", err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, id, tc.h.Get("webhook-id"))
		})
	}
}

func TestWebhookDuplicates(t *testing.T) {
	now := time.Unix(1740656629, 0)
	v := &infrahub.WebhookVerifier{Secret: []byte("k"), Now: func() time.Time { return now }, MaxIDs: 2}
	deliver := func(id string) error {
		body := []byte(`{}`)
		_, err := v.Verify(headers(id, now.Unix(), infrahub.SignWebhook([]byte("k"), id, now, body)), body)
		return err
	}
	assert.NilError(t, deliver("msg_1"))
	assert.Assert(t, errors.Is(deliver("msg_1"), infrahub.ErrDuplicate))
	// A forged delivery does not record its id.
	_, err := v.Verify(headers("msg_2", now.Unix(), "v1,AAAA"), []byte(`{}`))
	assert.Assert(t, errors.Is(err, infrahub.ErrBadSignature))
	assert.NilError(t, deliver("msg_2"))
	// Bounded: a third id pushes out the first.
	assert.NilError(t, deliver("msg_3"))
	assert.NilError(t, deliver("msg_1"))
	// Ids are forgotten after twice the tolerance.
	now = now.Add(11 * time.Minute)
	assert.NilError(t, deliver("msg_3"))
}

func TestDecodeEvent(t *testing.T) {
	body := `{"data":{"node_id":"a1","artifact_definition_id":"d1","artifact_definition_name":"Webserver_Artifact_Definition",
	"target_id":"t1","target_kind":"KubernetesWebserver","checksum":"new","checksum_previous":null,
	"storage_id":"s2","storage_id_previous":null},"id":"e1","branch":"main","account_id":null,
	"occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.artifact.created"}`
	e, err := infrahub.DecodeEvent([]byte(body))
	assert.NilError(t, err)
	e.Raw = nil
	assert.DeepEqual(t, e, infrahub.Event{
		ID: "e1", EventType: infrahub.EventArtifactCreated, OccurredAt: "2026-08-20 10:15:02.123456+00:00",
		OccurredTime: time.Date(2026, 8, 20, 10, 15, 2, 123456000, time.UTC), Branch: "main",
		ArtifactID: "a1", ArtifactDefinitionID: "d1", ArtifactDefinitionName: "Webserver_Artifact_Definition",
		TargetID: "t1", TargetKind: "KubernetesWebserver", Checksum: "new", StorageID: "s2",
	})
	assert.Assert(t, e.IsArtifactEvent())

	for _, bad := range []string{``, `[]`, `{"data":{}}`, `{"event":5}`, `nope`} {
		_, err := infrahub.DecodeEvent([]byte(bad))
		assert.Assert(t, err != nil, bad)
	}
	e, err = infrahub.DecodeEvent([]byte(`{"event":"infrahub.branch.created","branch":null,"data":null}`))
	assert.NilError(t, err)
	assert.Assert(t, !e.IsArtifactEvent())
}

// TestWebhookEndToEnd: the fake signs deliveries the way Infrahub does and
// the verifier accepts them.
func TestWebhookEndToEnd(t *testing.T) {
	secret := []byte("shared-key")
	verifier := &infrahub.WebhookVerifier{Secret: secret}
	var mu sync.Mutex
	var events []infrahub.Event
	failFirst := true
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if failFirst {
			failFirst = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if _, err := verifier.Verify(r.Header, body); err != nil {
			t.Errorf("verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		e, err := infrahub.DecodeEvent(body)
		if err != nil {
			t.Errorf("decode: %v", err)
		}
		events = append(events, e)
	}))
	defer receiver.Close()

	f := newFixture(t, infrahubtest.WithWebhookRetryDelay(time.Millisecond))
	verifier.Now = f.clock.Now
	f.srv.SetWebhook(receiver.URL, secret)
	v1 := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: 1\n")})
	f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: 1\n")}) // no change, no event
	v2 := f.srv.SetArtifact("main", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: 2\n")})
	f.srv.AddBranch("dev")
	f.srv.SetArtifact("dev", infrahubtest.ArtifactSpec{TargetLabel: "web", Content: []byte("v: dev\n")}) // default scope: main only
	assert.NilError(t, f.srv.FlushWebhooks(ctx))

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, len(events), 2)
	byType := map[string]infrahub.Event{}
	for _, e := range events {
		byType[e.EventType] = e
	}
	created, updated := byType[infrahub.EventArtifactCreated], byType[infrahub.EventArtifactUpdated]
	assert.Equal(t, created.ArtifactID, v1.ID)
	assert.Equal(t, created.Checksum, v1.Checksum)
	assert.Equal(t, created.ChecksumPrevious, "")
	assert.Equal(t, updated.Checksum, v2.Checksum)
	assert.Equal(t, updated.ChecksumPrevious, v1.Checksum)
	assert.Equal(t, updated.StorageID, v2.StorageID)
	assert.Equal(t, updated.StorageIDPrevious, v1.StorageID)
	assert.Equal(t, updated.TargetKind, v2.TargetKind)
	assert.Equal(t, updated.ArtifactDefinitionName, v2.DefinitionName)
	assert.Equal(t, updated.Branch, "main")
	assert.Assert(t, !updated.OccurredTime.IsZero())
	// The first attempt failed and was retried with a new webhook-id.
	var retried bool
	for _, d := range f.srv.Deliveries() {
		if d.Attempts == 2 && d.Status == 200 && d.Done {
			retried = true
		}
	}
	assert.Assert(t, retried)
	assert.Equal(t, f.srv.Count(infrahubtest.EndpointWebhook), 3)
}

// Vectors for non-ASCII payloads, computed with CPython 3.11 the way each
// Infrahub release computes the signature: the body is what httpx sends
// (json.dumps with ensure_ascii=False and compact separators); the signed
// text is json.dumps(payload, separators=(",", ":")) in 1.11,
// json.dumps(payload) in the releases before compact separators were
// pinned, and str(payload) before the May 2025 fix.
var nonASCIIVectors = []struct {
	name, secret, id string
	ts               int64
	body             string
	// signed text and signature per encoding
	signed map[infrahub.WebhookEncoding]string
	sigs   map[infrahub.WebhookEncoding]string
}{
	{
		name: "label, branch, emoji, escapes", secret: "my-webhook-secret", id: "msg_217b4ebcb84f4736b1ee222182aed371", ts: 1740656629,
		body: "{\"data\":{\"node_id\":\"18a3c2f1-0b6e-4a2d-3f10-c51e2b7d9a01\",\"kind\":\"CoreArtifact\",\"display_label\":\"caf\u00e9 \u00abweb\u00bb \U0001F680\",\"fields\":[\"name\"],\"count\":3,\"ratio\":0.5,\"ok\":true,\"quote\":\"it's \\\"x\\\"\\\\\",\"ctl\":\"a\\tb\u007f\"},\"id\":\"7c4d\",\"branch\":\"d\u00e9veloppement\",\"account_id\":null,\"occured_at\":\"2026-08-20 10:15:02.123456+00:00\",\"event\":\"infrahub.node.deleted\"}",
		signed: map[infrahub.WebhookEncoding]string{
			infrahub.EncodingCompactASCII: `{"data":{"node_id":"18a3c2f1-0b6e-4a2d-3f10-c51e2b7d9a01","kind":"CoreArtifact","display_label":"caf\u00e9 \u00abweb\u00bb \ud83d\ude80","fields":["name"],"count":3,"ratio":0.5,"ok":true,"quote":"it's \"x\"\\","ctl":"a\tb\u007f"},"id":"7c4d","branch":"d\u00e9veloppement","account_id":null,"occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.node.deleted"}`,
			infrahub.EncodingSpacedASCII:  `{"data": {"node_id": "18a3c2f1-0b6e-4a2d-3f10-c51e2b7d9a01", "kind": "CoreArtifact", "display_label": "caf\u00e9 \u00abweb\u00bb \ud83d\ude80", "fields": ["name"], "count": 3, "ratio": 0.5, "ok": true, "quote": "it's \"x\"\\", "ctl": "a\tb\u007f"}, "id": "7c4d", "branch": "d\u00e9veloppement", "account_id": null, "occured_at": "2026-08-20 10:15:02.123456+00:00", "event": "infrahub.node.deleted"}`,
			infrahub.EncodingPythonRepr:   "{'data': {'node_id': '18a3c2f1-0b6e-4a2d-3f10-c51e2b7d9a01', 'kind': 'CoreArtifact', 'display_label': 'caf\u00e9 \u00abweb\u00bb \U0001F680', 'fields': ['name'], 'count': 3, 'ratio': 0.5, 'ok': True, 'quote': 'it\\'s \"x\"\\\\', 'ctl': 'a\\tb\\x7f'}, 'id': '7c4d', 'branch': 'd\u00e9veloppement', 'account_id': None, 'occured_at': '2026-08-20 10:15:02.123456+00:00', 'event': 'infrahub.node.deleted'}",
		},
		sigs: map[infrahub.WebhookEncoding]string{
			infrahub.EncodingBody:         "v1,kVxciLSK9TWI4l7J6IhCiGGsm1LTDPePhbLIIfSVlB8=",
			infrahub.EncodingCompactASCII: "v1,w09Pt4AQtDBPdJk5/D5vMpnhKE46l4RzT4RcithGWTM=",
			infrahub.EncodingSpacedASCII:  "v1,ln97sTf6mAJV9W0TJDrGFla4/h10AXbzEmwNW/2q9wU=",
			infrahub.EncodingPythonRepr:   "v1,gznFnZkpPDn00L8Kr/0q7ICqjVOEi2Fhnw00OC15RQM=",
		},
	},
	{
		name: "apostrophe: str() switches to double quotes", secret: "test", id: "msg_0123456789abcdef0123456789abcdef", ts: 1767225600,
		body: "{\"data\":{\"node_id\":\"abc123\",\"display_label\":\"l'\u00e9t\u00e9\"},\"branch\":\"main\",\"account_id\":null,\"event\":\"infrahub.artifact.updated\"}",
		signed: map[infrahub.WebhookEncoding]string{
			infrahub.EncodingCompactASCII: `{"data":{"node_id":"abc123","display_label":"l'\u00e9t\u00e9"},"branch":"main","account_id":null,"event":"infrahub.artifact.updated"}`,
			infrahub.EncodingSpacedASCII:  `{"data": {"node_id": "abc123", "display_label": "l'\u00e9t\u00e9"}, "branch": "main", "account_id": null, "event": "infrahub.artifact.updated"}`,
			infrahub.EncodingPythonRepr:   "{'data': {'node_id': 'abc123', 'display_label': \"l'\u00e9t\u00e9\"}, 'branch': 'main', 'account_id': None, 'event': 'infrahub.artifact.updated'}",
		},
		sigs: map[infrahub.WebhookEncoding]string{
			infrahub.EncodingBody:         "v1,W7rrTmbxU/fwDiYPAVL1YI+ooS8kXAlZ8BhJ/6s5zxs=",
			infrahub.EncodingCompactASCII: "v1,8JId64i57xVWIowsVC2PgL3nOlFqv7GIxAP1vXI1N+M=",
			infrahub.EncodingSpacedASCII:  "v1,iUqnHZ2aBKMeQCGE8yqx7APx1qklUmbEJ75GAX26st0=",
			infrahub.EncodingPythonRepr:   "v1,eajEiJrcc37CPJb+8NjNDN13wrQlHyUHKR0B17J9S1I=",
		},
	},
}

func TestPythonRenderings(t *testing.T) {
	for _, v := range nonASCIIVectors {
		t.Run(v.name, func(t *testing.T) {
			compact, err := infrahub.PythonJSON([]byte(v.body), true)
			assert.NilError(t, err)
			assert.Equal(t, string(compact), v.signed[infrahub.EncodingCompactASCII])
			spaced, err := infrahub.PythonJSON([]byte(v.body), false)
			assert.NilError(t, err)
			assert.Equal(t, string(spaced), v.signed[infrahub.EncodingSpacedASCII])
			repr, err := infrahub.PythonRepr([]byte(v.body))
			assert.NilError(t, err)
			assert.Equal(t, string(repr), v.signed[infrahub.EncodingPythonRepr])
			for enc, text := range v.signed {
				assert.Equal(t, infrahub.SignWebhook([]byte(v.secret), v.id, time.Unix(v.ts, 0), []byte(text)), v.sigs[enc], "%s", enc)
			}
		})
	}
	// The published vectors' payloads render to themselves (ASCII, compact).
	for _, v := range webhookVectors {
		out, err := infrahub.PythonJSON([]byte(v.body), true)
		assert.NilError(t, err)
		assert.Equal(t, string(out), v.body)
	}
}

// TestWebhookVerifyEncodings: a delivery is accepted whichever supported
// release signed it, the encoding is reported, and a signature over another
// payload or with another key is not.
func TestWebhookVerifyEncodings(t *testing.T) {
	type tc struct {
		name string
		body string
		sig  string
		want infrahub.WebhookEncoding
		err  error
	}
	var cases []tc
	for _, v := range nonASCIIVectors {
		for _, enc := range infrahub.WebhookEncodings {
			cases = append(cases, tc{name: v.name + "/" + string(enc), body: v.body, sig: v.sigs[enc], want: enc})
		}
	}
	v0 := nonASCIIVectors[0]
	cases = append(cases,
		tc{name: "signature of the other vector", body: v0.body, sig: nonASCIIVectors[1].sigs[infrahub.EncodingCompactASCII], err: infrahub.ErrBadSignature},
		tc{name: "body re-encoded with escapes, signed over raw", body: v0.signed[infrahub.EncodingCompactASCII], sig: v0.sigs[infrahub.EncodingBody], err: infrahub.ErrBadSignature},
		tc{name: "not JSON", body: "café", sig: v0.sigs[infrahub.EncodingCompactASCII], err: infrahub.ErrBadSignature},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := v0
			if c.want != "" && c.body != v0.body {
				v = nonASCIIVectors[1]
			}
			verifier := &infrahub.WebhookVerifier{Secret: []byte(v.secret), Now: func() time.Time { return time.Unix(v.ts, 0) }}
			_, enc, err := verifier.VerifyEncoding(headers(v.id, v.ts, c.sig), []byte(c.body))
			if c.err != nil {
				assert.Assert(t, errors.Is(err, c.err), "%v", err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, enc, c.want)
		})
	}
}
