package metrics

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// TestRESTClientMetrics: client-go's requests are counted by code, method
// and host, and timed by verb and host, in the registry's exposition.
func TestRESTClientMetrics(t *testing.T) {
	reg := NewRegistry()
	m := NewRESTClientMetrics(reg)
	resultAdapter{m.requests}.Increment(context.Background(), "200", "GET", "10.0.0.1:6443")
	resultAdapter{m.requests}.Increment(context.Background(), "200", "GET", "10.0.0.1:6443")
	latencyAdapter{m.latency}.Observe(context.Background(), "PATCH", url.URL{Scheme: "https", Host: "10.0.0.1:6443", Path: "/api/v1/namespaces/x/configmaps/y"}, 30*time.Millisecond)
	var b strings.Builder
	assert.NilError(t, reg.Write(&b))
	out := b.String()
	for _, want := range []string{
		`rest_client_requests_total{code="200",method="GET",host="10.0.0.1:6443"} 2`,
		`rest_client_request_duration_seconds_bucket{verb="PATCH",host="10.0.0.1:6443",le="0.1"} 1`,
		`rest_client_request_duration_seconds_count{verb="PATCH",host="10.0.0.1:6443"} 1`,
	} {
		assert.Assert(t, strings.Contains(out, want), "missing %s in:\n%s", want, out)
	}
	assert.Assert(t, !strings.Contains(out, "configmaps/y"), "a URL became a label:\n%s", out)
}
