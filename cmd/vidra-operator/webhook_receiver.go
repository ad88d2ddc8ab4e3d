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

// newWebhookReceiver builds the webhook receivers: Infrahub deliveries
// (on every path but /git) are verified with the shared key from a Secret
// in the operator's namespace and trigger the matching InfrahubSyncs
// directly; Git push deliveries (on /git, from GitHub, GitLab or
// Gitea/Forgejo) are verified with the Git webhook secret and trigger the
// GitSyncs of the pushed repository. A standby replica answers 503 so the
// sender delivers again, to the leader.
func newWebhookReceiver(ctx context.Context, deps WebhookDeps) (http.Handler, error) {
	sharedKey, err := secretKey(ctx, deps, "-webhook-secret", deps.Secret)
	if err != nil {
		return nil, err
	}
	gitKey, err := secretKey(ctx, deps, "-git-webhook-secret", deps.GitSecret)
	if err != nil {
		return nil, err
	}
	opts := webhook.Options{
		Key:      sharedKey,
		Syncs:    deps.Operator.SyncLister(),
		Trigger:  deps.Operator.Syncs,
		BranchOf: deps.Operator.Syncs.BranchOf,
		Logger:   deps.Logger,
	}
	gitOpts := webhook.GitOptions{Key: gitKey, Trigger: deps.GitPush, Logger: deps.Logger.WithName("git")}
	if deps.Registry != nil {
		opts.Deliveries = metrics.NewWebhookDeliveries(deps.Registry)
		gitOpts.Deliveries = opts.Deliveries
	}
	receiver := webhook.NewReceiver(opts)
	gitReceiver := webhook.NewGitReceiver(gitOpts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if deps.IsLeader != nil && !deps.IsLeader() {
			http.Error(w, "not the leader; deliver again", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/git" || r.URL.Path == "/git/" {
			gitReceiver.ServeHTTP(w, r)
			return
		}
		receiver.ServeHTTP(w, r)
	}), nil
}

// secretKey returns a reader of the key "name/key" names in the operator's
// namespace, cached for keyCacheTTL.
func secretKey(ctx context.Context, deps WebhookDeps, flag, ref string) (func() ([]byte, error), error) {
	name, key, ok := strings.Cut(ref, "/")
	if !ok || name == "" || key == "" {
		return nil, fmt.Errorf("%s %q: want name/key", flag, ref)
	}
	var (
		mu      sync.Mutex
		cached  []byte
		fetched time.Time
	)
	return func() ([]byte, error) {
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
	}, nil
}
