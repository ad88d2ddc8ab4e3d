package metrics

import (
	"context"
	"net/url"
	"time"

	clientmetrics "k8s.io/client-go/tools/metrics"
)

// client-go REST client metric names, the ones Kubernetes components use.
const (
	RESTClientRequests            = "rest_client_requests_total"
	RESTClientRequestDuration     = "rest_client_request_duration_seconds"
	RESTClientRateLimiterDuration = "rest_client_rate_limiter_duration_seconds"
)

// restClientBuckets are Kubernetes' buckets for request latency, in seconds.
var restClientBuckets = []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}

// RESTClientMetrics receives client-go's REST client measurements: requests
// by status code, method and host, and request and client-side throttling
// latency by verb and host. URLs are left out: one series per object name
// would grow without bound.
type RESTClientMetrics struct {
	requests             *CounterVec
	latency, rateLimiter *HistogramVec
}

// NewRESTClientMetrics registers the REST client families in r.
func NewRESTClientMetrics(r *Registry) *RESTClientMetrics {
	return &RESTClientMetrics{
		requests:    r.NewCounterVec(RESTClientRequests, "Number of HTTP requests to API servers, partitioned by status code, method, and host.", "code", "method", "host"),
		latency:     r.NewHistogramVec(RESTClientRequestDuration, "Request latency in seconds to API servers, broken down by verb and host.", restClientBuckets, "verb", "host"),
		rateLimiter: r.NewHistogramVec(RESTClientRateLimiterDuration, "Client-side rate limiter latency in seconds, broken down by verb and host.", restClientBuckets, "verb", "host"),
	}
}

// Install makes client-go report to m. client-go accepts this once per
// process, before the first client is built; later calls do nothing.
func (m *RESTClientMetrics) Install() {
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestResult:      resultAdapter{m.requests},
		RequestLatency:     latencyAdapter{m.latency},
		RateLimiterLatency: latencyAdapter{m.rateLimiter},
	})
}

type resultAdapter struct{ v *CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.v.With(code, method, host).Inc()
}

type latencyAdapter struct{ v *HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.v.With(verb, u.Host).Observe(latency.Seconds())
}
