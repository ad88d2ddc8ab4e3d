package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// preflightTimeout is how long start-up waits for an API server that does
// not answer yet (a control plane still starting) before giving up.
const preflightTimeout = 30 * time.Second

// crdHint says how to install the CRDs.
const crdHint = "apply manifests/crds (kubectl apply -f manifests/crds) or install the chart, which carries them in chart/vidra/crds"

// preflight checks, before anything else talks to the API server, that it
// answers and serves Vidra's CRDs, so that a misconfiguration ends start-up
// with its cause instead of endless informer errors. An unreachable server
// is retried for up to timeout, logging the cause each time.
func preflight(ctx context.Context, logger klog.Logger, disc discovery.DiscoveryInterface, host string, timeout time.Duration) error {
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		// Each attempt is bounded: an address that swallows packets must
		// not hold start-up beyond the timeout.
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := disc.RESTClient().Get().AbsPath("/version").Do(attempt).Error()
		cancel()
		if err == nil {
			return true, nil
		}
		if expired(ctx) {
			// The last attempt came after the deadline (the client's rate
			// limiter refuses it at once): the cause is the one before.
			return false, context.DeadlineExceeded
		}
		lastErr = err
		if !transient(err) {
			return false, err
		}
		logger.Info("API server not reachable yet, retrying", "apiServer", host, "cause", err.Error())
		return false, nil
	})
	if err != nil {
		if lastErr == nil {
			lastErr = err
		}
		if !transient(lastErr) {
			return fmt.Errorf("API server %s refused the operator: %w", host, lastErr)
		}
		return fmt.Errorf("API server %s is unreachable: %w", host, apiCause(lastErr))
	}

	gv := v1alpha1.SchemeGroupVersion.String()
	list, err := disc.ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("API server %s: discover %s: %w", host, gv, err)
	}
	served := map[string]bool{}
	if list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	var missing []string
	for _, resource := range []string{"infrahubsyncs", "gitsyncs", "vidraresources"} {
		if !served[resource] {
			missing = append(missing, resource+"."+v1alpha1.SchemeGroupVersion.Group)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("CRD %s (%s) is not installed: %s", missing[0], gv, crdHint)
	}
	last := len(missing) - 1
	return fmt.Errorf("CRDs %s and %s (%s) are not installed: %s", strings.Join(missing[:last], ", "), missing[last], gv, crdHint)
}

// transient reports errors worth waiting out at start-up: the server is
// not listening yet, or not ready.
func transient(err error) bool {
	var netErr net.Error
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.As(err, &netErr) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)
}

// apiCause strips client-go's rate limiter wrapper ("client rate limiter Wait
// returned an error") so the message names the real cause.
func apiCause(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr
	}
	return err
}

// expired reports whether ctx is done or its deadline has passed, even if
// its timer has not fired yet.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}
