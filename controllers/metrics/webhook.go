package metrics

// WebhookDeliveries counts Infrahub webhook deliveries by result.
const WebhookDeliveries = "vidra_webhook_deliveries_total"

// NewWebhookDeliveries registers the webhook receiver's delivery counter on
// r: one series per result (accepted, duplicate, or why a delivery was
// rejected: bad_signature, stale, too_large, bad_payload, unavailable).
func NewWebhookDeliveries(r *Registry) *CounterVec {
	return r.NewCounterVec(WebhookDeliveries,
		"Infrahub webhook deliveries received, by result (accepted, duplicate, or the reason they were rejected).", "result")
}
