package infrahub_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/vidra-operator/vidra/infrahub"
	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

// BenchmarkListArtifacts1000 lists 1,000 artifacts (two pages of 500).
func BenchmarkListArtifacts1000(b *testing.B) { infrahubtest.RunListBenchmark(b, 1000) }

// BenchmarkResyncUnchanged1000 is a sync of 1,000 unchanged artifacts: it
// fails unless each sync makes exactly one list request and no download.
func BenchmarkResyncUnchanged1000(b *testing.B) { infrahubtest.RunResyncBenchmark(b, 1000) }

// BenchmarkCacheHit is the cost of content served from the cache.
func BenchmarkCacheHit(b *testing.B) { infrahubtest.RunCacheHitBenchmark(b) }

func BenchmarkParseAt(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := infrahub.ParseAt("2026-08-20T10:00:00.123456+02:00", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebhookVerify(b *testing.B) {
	secret := []byte("shared-key")
	body := []byte(`{"data":{"node_id":"a","checksum":"c"},"event":"infrahub.artifact.updated"}`)
	now := time.Unix(1740656629, 0)
	h := http.Header{}
	h.Set(infrahub.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	v := &infrahub.WebhookVerifier{Secret: secret, Now: func() time.Time { return now }}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		id := "msg_" + strconv.Itoa(i)
		h.Set(infrahub.HeaderWebhookID, id)
		h.Set(infrahub.HeaderWebhookSignature, infrahub.SignWebhook(secret, id, now, body))
		if _, err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhookVerifyNonASCII is the cost of verifying one artifact
// delivery whose payload holds non-ASCII text: the raw body and the three
// re-renderings of the payload are all signed and compared.
func BenchmarkWebhookVerifyNonASCII(b *testing.B) {
	v := nonASCIIVectors[0]
	h := headers(v.id, v.ts, v.sigs[infrahub.EncodingCompactASCII])
	body := []byte(v.body)
	b.ReportAllocs()
	for b.Loop() {
		// A fresh verifier: the duplicate memory would refuse the id.
		verifier := &infrahub.WebhookVerifier{Secret: []byte(v.secret), Now: func() time.Time { return time.Unix(v.ts, 0) }}
		if _, err := verifier.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}
