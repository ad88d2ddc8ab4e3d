// Package webhook receives Infrahub webhook deliveries and turns them into
// immediate InfrahubSync passes, so a regenerated artifact reaches the
// cluster without waiting for the polling interval.
package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/metrics"
	listers "github.com/vidra-operator/vidra/generated/listers/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/infrahub"
)

// Trigger asks for an immediate pass of a sync; the InfrahubSync
// controller's Trigger puts the key straight into its workqueue, so a burst
// of deliveries folds into one pass and costs no API call.
type Trigger interface {
	Trigger(name string)
}

// Options configure a Receiver.
type Options struct {
	// Key returns the shared key Infrahub signs with. It is called per
	// delivery, so a rotated Secret takes effect without a restart.
	Key func() ([]byte, error)
	// Syncs lists the InfrahubSyncs to match deliveries against.
	Syncs listers.InfrahubSyncLister
	// Trigger receives the names of matching syncs.
	Trigger Trigger
	// Tolerance bounds the age of a delivery's timestamp (default 5m).
	Tolerance time.Duration
	// MaxBodyBytes bounds a delivery (default 1 MiB).
	MaxBodyBytes int64
	// BranchOf returns the Infrahub branch a sync reads by name, "" when
	// not known yet; the InfrahubSync controller's BranchOf. When nil, or
	// for "", a sync whose targetBranch is empty or main (the default,
	// standing for Infrahub's default branch, which need not be called
	// main) matches deliveries of every branch.
	BranchOf func(syncName string) string
	// Deliveries, when set, counts deliveries by result (/metrics).
	Deliveries *metrics.CounterVec
	// LogInterval spaces the log lines of rejected deliveries, per result
	// (default 1m); the lines in between are counted, not written.
	LogInterval time.Duration
	Now         func() time.Time
	Logger      klog.Logger
}

// Receiver is the http.Handler for Infrahub webhook deliveries.
type Receiver struct {
	opts Options

	mu       sync.Mutex
	verifier *infrahub.WebhookVerifier
	keySum   string

	results   sync.Map // result -> *atomic.Int64
	triggered atomic.Int64

	logMu    sync.Mutex
	lastLog  map[string]time.Time
	withheld map[string]int
}

// Delivery results, counted in Stats.
const (
	ResultAccepted     = "accepted"
	ResultDuplicate    = "duplicate"
	ResultBadSignature = "bad_signature"
	ResultStale        = "stale"
	ResultTooLarge     = "too_large"
	ResultBadPayload   = "bad_payload"
	ResultUnavailable  = "unavailable"
)

// NewReceiver returns a Receiver.
func NewReceiver(opts Options) *Receiver {
	if opts.Tolerance <= 0 {
		opts.Tolerance = infrahub.DefaultWebhookTolerance
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = klog.Background()
	}
	if opts.LogInterval <= 0 {
		opts.LogInterval = time.Minute
	}
	return &Receiver{opts: opts, lastLog: map[string]time.Time{}, withheld: map[string]int{}}
}

// Stats returns the deliveries by result and the syncs triggered.
func (r *Receiver) Stats() (deliveries map[string]int64, triggered int64) {
	deliveries = map[string]int64{}
	r.results.Range(func(k, v any) bool {
		deliveries[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return deliveries, r.triggered.Load()
}

func (r *Receiver) count(result string) {
	v, _ := r.results.LoadOrStore(result, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	if r.opts.Deliveries != nil {
		r.opts.Deliveries.With(result).Inc()
	}
}

// reject counts a refused delivery and logs why, at most once per
// LogInterval and result: a misconfigured key or a scanner must not flood
// the log. The line says how many were withheld since the last one.
func (r *Receiver) reject(result string, req *http.Request, id string, err error) {
	r.count(result)
	now := r.opts.Now()
	r.logMu.Lock()
	if last, ok := r.lastLog[result]; ok && now.Sub(last) < r.opts.LogInterval {
		r.withheld[result]++
		r.logMu.Unlock()
		return
	}
	withheld := r.withheld[result]
	r.lastLog[result], r.withheld[result] = now, 0
	r.logMu.Unlock()
	msg := "<none>"
	if err != nil {
		msg = err.Error()
	}
	r.opts.Logger.Info("Webhook delivery rejected", "result", result, "reason", msg, "webhookID", id,
		"remote", req.RemoteAddr, "withheldSinceLastLine", withheld)
}

// verifierFor keeps one verifier, and so one duplicate memory, per key.
func (r *Receiver) verifierFor(key []byte) *infrahub.WebhookVerifier {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := string(key)
	if r.verifier == nil || r.keySum != sum {
		r.verifier = &infrahub.WebhookVerifier{Secret: append([]byte(nil), key...), Tolerance: r.opts.Tolerance, Now: r.opts.Now}
		r.keySum = sum
	}
	return r.verifier
}

// ServeHTTP verifies a delivery and triggers the syncs it concerns. The
// optional query parameter "infrahub" restricts the match to syncs reading
// that Infrahub (compared by host and port), for receivers shared by several
// Infrahub instances.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	deliveryID := req.Header.Get(infrahub.HeaderWebhookID)
	body, err := io.ReadAll(io.LimitReader(req.Body, r.opts.MaxBodyBytes+1))
	if err != nil {
		r.reject(ResultBadPayload, req, deliveryID, err)
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if int64(len(body)) > r.opts.MaxBodyBytes {
		r.reject(ResultTooLarge, req, deliveryID, fmt.Errorf("body exceeds %d bytes", r.opts.MaxBodyBytes))
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	key, err := r.opts.Key()
	if err != nil || len(key) == 0 {
		if err == nil {
			err = errors.New("the shared key is empty")
		}
		r.reject(ResultUnavailable, req, deliveryID, err)
		http.Error(w, "receiver not configured", http.StatusServiceUnavailable)
		return
	}
	id, encoding, err := r.verifierFor(key).VerifyEncoding(req.Header, body)
	switch {
	case errors.Is(err, infrahub.ErrDuplicate):
		r.count(ResultDuplicate)
		w.WriteHeader(http.StatusOK)
		return
	case errors.Is(err, infrahub.ErrStaleTimestamp):
		r.reject(ResultStale, req, id, err)
		http.Error(w, "stale delivery", http.StatusUnauthorized)
		return
	case err != nil:
		r.reject(ResultBadSignature, req, id, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	event, err := infrahub.DecodeEvent(body)
	if err != nil {
		r.reject(ResultBadPayload, req, id, err)
		http.Error(w, "not an Infrahub event", http.StatusBadRequest)
		return
	}
	names := r.match(event, req.URL.Query().Get("infrahub"))
	for _, name := range names {
		r.opts.Trigger.Trigger(name)
	}
	r.triggered.Add(int64(len(names)))
	r.count(ResultAccepted)
	r.opts.Logger.V(2).Info("Webhook delivery accepted", "id", id, "event", event.EventType, "branch", event.Branch,
		"signedAs", encoding, "syncs", len(names))
	w.WriteHeader(http.StatusNoContent)
}

// match returns the syncs a delivery concerns. An artifact event concerns
// the syncs of its branch that already hold that artifact; when none does
// (a new artifact), every sync of the branch looks. The deletion of an
// artifact (a node deletion event of kind CoreArtifact) concerns only the
// syncs holding it. Any other event (a merge, a node change) concerns every
// sync of its branch.
func (r *Receiver) match(event infrahub.Event, source string) []string {
	syncs, err := r.opts.Syncs.List(labels.Everything())
	if err != nil {
		return nil
	}
	var onBranch, holding []string
	for _, s := range syncs {
		if s.Spec.Suspend || s.DeletionTimestamp != nil || !sameInfrahub(s.Spec.Source.InfrahubAPIURL, source) {
			continue
		}
		if event.Branch != "" {
			if b := r.branchOf(s); b != "" && b != event.Branch {
				continue
			}
		}
		onBranch = append(onBranch, s.Name)
		if (event.IsArtifactEvent() || event.IsArtifactDeletion()) && holds(s, event.ArtifactID) {
			holding = append(holding, s.Name)
		}
	}
	if len(holding) > 0 || event.IsArtifactDeletion() {
		return holding
	}
	return onBranch
}

func holds(s *v1alpha1.InfrahubSync, artifactID string) bool {
	for _, a := range s.Status.Artifacts {
		if a.ID == artifactID {
			return true
		}
	}
	return false
}

// branchOf is the branch a sync reads, by the name Infrahub gives it, as
// the InfrahubSync controller last resolved it; before that, its
// targetBranch, except "" and "main" (the API's default, which stands for
// the default branch whatever its name): "" then, matching every branch.
func (r *Receiver) branchOf(s *v1alpha1.InfrahubSync) string {
	if r.opts.BranchOf != nil {
		if b := r.opts.BranchOf(s.Name); b != "" {
			return b
		}
	}
	if b := s.Spec.Source.TargetBranch; b != "main" {
		return b
	}
	return ""
}

// sameInfrahub compares two Infrahub URLs by host and port; an empty source
// matches every sync.
func sameInfrahub(syncURL, source string) bool {
	if source == "" {
		return true
	}
	return hostPort(syncURL) == hostPort(source)
}

func hostPort(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return strings.ToLower(raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return fmt.Sprintf("%s:%s", strings.ToLower(u.Hostname()), port)
}
