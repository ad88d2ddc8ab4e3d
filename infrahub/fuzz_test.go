package infrahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz targets. Plain `go test` runs their seeds (f.Add below and
// testdata/fuzz/<Target>/); `go test -fuzz=<Target>` explores further.

var fuzzNow = time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)

func FuzzParseAt(f *testing.F) {
	for _, s := range []string{
		"2026-08-20T10:00:00Z", "2026-08-20T10:00:00.123456+02:00", "2026-08-20T10:00:00",
		"2026-08-20", "20260820T100000Z", "2026-08-20T10:00:00[Europe/Paris]",
		"2026-08-20T10:00:00+02:00[Europe/Paris]", "now-2h", "1h30m", "now+2h", "-2d", "", "٣h",
		"2026-03-29T02:30:00[Europe/Paris]", "99999999999999999999h", "2026-08-20T10:00:00.1234567890Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAt(s, fuzzNow)
		if err != nil {
			if !IsBadRequest(err) {
				t.Fatalf("ParseAt(%q): error of kind %v: %v", s, KindOf(err), err)
			}
			return
		}
		if got.Before(minInstant) || got.After(maxInstant) {
			t.Fatalf("ParseAt(%q) = %s, out of range", s, got)
		}
		// The canonical rendering parses back to the same instant (µs).
		back, err := ParseAt(FormatAt(got), time.Time{})
		if err != nil || !back.Equal(got.Truncate(time.Microsecond)) {
			t.Fatalf("round trip of %q: %s -> %s (%v)", s, got, back, err)
		}
		if ValidateAt(s) != nil && !hasRelativeUnit(s) {
			t.Fatalf("ValidateAt(%q) disagrees with ParseAt", s)
		}
	})
}

// hasRelativeUnit: relative values depend on now, so ValidateAt (which uses
// the real clock) may legitimately disagree near the range limits.
func hasRelativeUnit(s string) bool {
	_, ok, _ := parseRelative(s, fuzzNow)
	return ok
}

func FuzzDecodeArtifactPage(f *testing.F) {
	f.Add([]byte(`{"data":{"CoreArtifact":{"count":1,"edges":[{"node":{"id":"a","name":{"value":"n"},"status":{"value":"Ready"},"checksum":{"value":"AB"},"storage_id":{"value":"s"},"object":{"node":{"id":"t","display_label":"l","__typename":"K"}},"definition":{"node":{"id":"d","display_label":"D","name":{"value":"N"}}}}}]}}}`))
	f.Add([]byte(`{"data":{"CoreArtifact":{"count":0,"edges":[]}}}`))
	f.Add([]byte(`{"data":null,"errors":[{"message":"x","locations":[{"line":1,"column":2}],"path":["CoreArtifact"],"extensions":{"code":"UNDEFINED_ERROR"}}]}`))
	f.Add([]byte(`{"errors":["Branch: x not found."]}`))
	f.Add([]byte(`{"data":{"CoreArtifact":{"count":1,"edges":[{"node":{"id":"a","checksum":{"value":5},"storage_id":null}}]}}}`))
	f.Add([]byte(`{"data":{"CoreArtifact":{"count":-1,"edges":[]}}}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		arts, count, err := decodeArtifactPage(body)
		if err != nil {
			if k := KindOf(err); k != KindGraphQL && k != KindInvalidResponse {
				t.Fatalf("unexpected kind %v: %v", k, err)
			}
			if arts != nil {
				t.Fatal("artifacts returned with an error")
			}
			return
		}
		if count < 0 {
			t.Fatalf("negative count %d", count)
		}
		for _, a := range arts {
			if a.ID == "" {
				t.Fatal("artifact without id")
			}
		}
	})
}

func FuzzDecodeStoredQuery(f *testing.F) {
	f.Add("W", []byte(`{"data":{"CoreArtifact":{"edges":[{"node":{"id":"a1","storage_id":{"id":"attr"},"checksum":{"value":"abc"},"name":{"value":"W"}}}]}}}`))
	f.Add("W", []byte(`{"data":{"CoreArtifact":{"edges":[{"node":{"id":"a1","status":{"value":"Error"}}},{"node":{"id":"a1"}}]}}}`))
	f.Add("", []byte(`{"data":null,"errors":[{"message":{"message":"GraphQLQuery X: y"}}]}`))
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		arts, err := decodeStoredQuery(name, body)
		if err != nil {
			if k := KindOf(err); k != KindGraphQL && k != KindInvalidResponse {
				t.Fatalf("unexpected kind %v: %v", k, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, a := range arts {
			if a.ID == "" || seen[a.ID] {
				t.Fatalf("bad or duplicate id %q", a.ID)
			}
			seen[a.ID] = true
			if a.Name != name {
				t.Fatalf("unexpected artifact %+v", a)
			}
			if a.Status == "" {
				t.Fatal("status not inferred")
			}
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(401, []byte(`{"data":null,"errors":[{"message":"Expired Signature","extensions":{"code":401}}]}`), "")
	f.Add(404, []byte(`{"errors":["Branch: x not found."]}`), "")
	f.Add(502, []byte(`{"data":null,"errors":[{"message":{"message":"GraphQLQuery A: b","path":["x"]},"extensions":{"code":502}}]}`), "")
	f.Add(422, []byte(`{"detail":[{"loc":["body","password"],"msg":"Field required"}]}`), "")
	f.Add(429, []byte(`{"data":null,"errors":[{"message":"Server is shedding load; retry later.","extensions":{"code":429}}]}`), "3")
	f.Add(503, []byte("\xff"), "Wed, 21 Oct 2026 07:28:00 GMT")
	f.Add(302, []byte(``), "-1")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		if status < 100 || status > 999 || status/100 == 2 {
			return
		}
		e := classify(endpointGraphQL, status, http.Header{"Retry-After": {retryAfter}}, body, fuzzNow)
		if e.Kind == KindUnknown {
			t.Fatalf("status %d: no kind", status)
		}
		if len(e.Message) > 4*maxMessageLen+16 || !utf8.ValidString(e.Message) && utf8.Valid(body) {
			t.Fatalf("bad message %q", e.Message)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour+time.Hour && e.Kind == KindTransient {
			t.Fatalf("bad RetryAfter %v", e.RetryAfter)
		}
		_ = e.Error()
	})
}

func FuzzWebhookVerify(f *testing.F) {
	f.Add([]byte("test"), "msg_217b4ebcb84f4736b1ee222182aed371", "1740656629", "v1,BQN9AgPA4evuGDChi9VKxNKRwediIXsAQz8hVHMfKNg=", []byte(`{}`))
	f.Add([]byte("my-webhook-secret"), "msg_217b4ebcb84f4736b1ee222182aed371", "1740656629",
		"v1,5JQxZW3lMNdaSnofcSV0Y3krxQ7aZI7EyThUqHVDGc4=",
		[]byte(`{"data":{"id":"abc123","kind":"BuiltinTag","display_label":"my tag"},"event_type":"infrahub.node.created","branch":"main"}`))
	f.Add([]byte(""), "", "", "", []byte(nil))
	f.Add([]byte("k"), "id", "x", "v1,!!! v1,AAAA", []byte("body"))
	f.Fuzz(func(t *testing.T, secret []byte, id, ts, sig string, body []byte) {
		now := time.Unix(1740656629, 0)
		v := &WebhookVerifier{Secret: secret, Now: func() time.Time { return now }}
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, ts)
		h.Set(HeaderWebhookSignature, sig)
		_, err := v.Verify(h, body)
		if err != nil && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStaleTimestamp) && !errors.Is(err, ErrDuplicate) {
			t.Fatalf("unexpected error %v", err)
		}
		// What SignWebhook produces always verifies, once; other bodies never.
		if len(secret) == 0 || h.Get(HeaderWebhookID) == "" {
			return
		}
		h2 := http.Header{}
		h2.Set(HeaderWebhookID, id)
		h2.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		h2.Set(HeaderWebhookSignature, SignWebhook(secret, h2.Get(HeaderWebhookID), now, body))
		v2 := &WebhookVerifier{Secret: secret, Now: func() time.Time { return now }}
		if _, err := v2.Verify(h2, append(bytes.Clone(body), 'x')); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered body accepted: %v", err)
		}
		if _, err := v2.Verify(h2, body); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		if _, err := v2.Verify(h2, body); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replay accepted: %v", err)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"data":{"node_id":"a","artifact_definition_id":"d","artifact_definition_name":"n","target_id":"t","target_kind":"K","checksum":"c","checksum_previous":null,"storage_id":"s","storage_id_previous":null},"id":"e","branch":"main","account_id":null,"occured_at":"2026-08-20 10:15:02.123456+00:00","event":"infrahub.artifact.updated"}`))
	f.Add([]byte(`{"data":{"kind":"CoreArtifact","node_id":"a","action":"deleted","fields":[]},"event":"infrahub.node.deleted","branch":null}`))
	f.Add([]byte(`{"event":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEvent(body)
		if err != nil {
			return
		}
		if e.EventType == "" {
			t.Fatal("event without type")
		}
		if !bytes.Equal(e.Raw, bytes.TrimSpace(body)) {
			t.Fatal("Raw is not the payload")
		}
	})
}

// FuzzPythonJSON: the Python renderings of any JSON document are JSON (or
// a Python literal) holding the same value, ASCII only when escaped.
func FuzzPythonJSON(f *testing.F) {
	f.Add([]byte(`{"a":"café","b":[1,2.5,true,null],"c":{"d":"🚀\u007f\n"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`"it's"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want any
		if json.Unmarshal(data, &want) != nil || !utf8.Valid(data) {
			return
		}
		for _, compact := range []bool{true, false} {
			out, err := PythonJSON(data, compact)
			if err != nil {
				return // e.g. nested deeper than the renderer goes
			}
			for _, c := range out {
				if c >= 0x80 {
					t.Fatalf("non-ASCII byte in %q", out)
				}
			}
			var got any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("rendering %q is not JSON: %v", out, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rendering %q of %q changed the value", out, data)
			}
		}
		if _, err := PythonRepr(data); err != nil {
			t.Fatalf("repr of valid JSON failed: %v", err)
		}
	})
}
