package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vidra-operator/vidra/controllers/metrics"
	"github.com/vidra-operator/vidra/controllers/webhook"
)

func init() { NewWebhookHandler = newWebhookReceiver }

// keyCacheTTL bounds how stale the shared key may be after a rotation,
// while a burst of deliveries costs one Secret read.
const keyCacheTTL = 10 * time.Second

// newWebhookReceiver builds the Infrahub webhook receiver: deliveries are
// verified with the shared key from a Secret in the operator's namespace and
// trigger the matching InfrahubSyncs directly. A standby replica answers 503
// so Infrahub delivers again, to the leader.
func newWebhookReceiver(ctx context.Context, deps WebhookDeps) (http.Handler, error) {
	name, key, ok := strings.Cut(deps.Secret, "/")
	if !ok || name == "" || key == "" {
		return nil, fmt.Errorf("-webhook-secret %q: want name/key", deps.Secret)
	}
	var (
		mu      sync.Mutex
		cached  []byte
		fetched time.Time
	)
	sharedKey := func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && time.Since(fetched) < keyCacheTTL {
			return cached, nil
		}
		s, err := deps.Kube.CoreV1().Secrets(deps.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read webhook Secret %s/%s: %w", deps.Namespace, name, err)
		}
		if len(s.Data[key]) == 0 {
			return nil, fmt.Errorf("webhook Secret %s/%s has no key %q", deps.Namespace, name, key)
		}
		cached, fetched = s.Data[key], time.Now()
		return cached, nil
	}
	opts := webhook.Options{
		Key:      sharedKey,
		Syncs:    deps.Operator.SyncLister(),
		Trigger:  deps.Operator.Syncs,
		BranchOf: deps.Operator.Syncs.BranchOf,
		Logger:   deps.Logger,
	}
	if deps.Registry != nil {
		opts.Deliveries = metrics.NewWebhookDeliveries(deps.Registry)
	}
	receiver := webhook.NewReceiver(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if deps.IsLeader != nil && !deps.IsLeader() {
			http.Error(w, "not the leader; deliver again", http.StatusServiceUnavailable)
			return
		}
		receiver.ServeHTTP(w, r)
	}), nil
}
