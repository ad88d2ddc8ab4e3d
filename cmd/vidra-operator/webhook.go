package main

import (
	"context"
	"net/http"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/operator"
	"github.com/vidra-operator/vidra/controllers/webhook"
)

// WebhookDeps is what the Infrahub webhook receiver gets from the binary.
type WebhookDeps struct {
	// Operator is the running operator: Operator.Syncs.Trigger(name) asks
	// for an immediate sync of one InfrahubSync.
	Operator *operator.Operator
	// Kube reads Secrets (shared keys) and objects in Namespace.
	Kube      kubernetes.Interface
	Namespace string
	// IsLeader reports whether this replica does the work. A standby is
	// Ready too (see health), so the webhook Service may route deliveries to
	// it: answer 503 there so Infrahub retries, or forward to the leader.
	IsLeader func() bool
	// Registry takes the receiver's own metric families.
	Registry *metrics.Registry
	Logger   klog.Logger
	// Secret is "name/key" of the shared key in Namespace.
	Secret string
	// GitSecret is "name/key" of the Git push webhooks' secret in Namespace.
	GitSecret string
	// GitPush receives verified Git pushes (the GitSync controller); while
	// nil, push deliveries on /git are answered 503.
	GitPush webhook.GitPushTrigger
}

// NewWebhookHandler is the hook point for the Infrahub webhook receiver.
// When -webhook-bind-address is set, the binary calls it once, after
// operator.New and before leader election, and serves the handler on that
// address until shutdown (the server stops after the operator has finished
// its in-flight work). The receiver plugs in with one line here, e.g.
//
//	var NewWebhookHandler = webhook.NewHandler
//
// While it is nil, a set -webhook-bind-address only logs that no receiver
// is built in.
var NewWebhookHandler func(ctx context.Context, deps WebhookDeps) (http.Handler, error)
