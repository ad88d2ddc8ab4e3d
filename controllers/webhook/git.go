package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/vidra-operator/vidra/controllers/metrics"
)

// Headers of the Git hosting services' webhook deliveries.
const (
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubSignature = "X-Hub-Signature-256" // "sha256=" + hex HMAC-SHA256 of the body
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	HeaderGitLabEvent     = "X-Gitlab-Event"
	HeaderGitLabToken     = "X-Gitlab-Token" // the secret token itself
	HeaderGitLabDelivery  = "X-Gitlab-Event-UUID"
	HeaderGiteaEvent      = "X-Gitea-Event"
	HeaderGiteaSignature  = "X-Gitea-Signature" // hex HMAC-SHA256 of the body
	HeaderGiteaDelivery   = "X-Gitea-Delivery"
	HeaderForgejoEvent    = "X-Forgejo-Event"
	HeaderForgejoSig      = "X-Forgejo-Signature"
	HeaderForgejoDelivery = "X-Forgejo-Delivery"
)

// Results of Git push deliveries, counted in the deliveries metric next to
// the Infrahub receiver's (prefixed, so a wrong Git key is told apart from
// a wrong Infrahub key).
const (
	ResultGitAccepted     = "git_accepted"
	ResultGitIgnored      = "git_ignored" // verified, but no push (a ping, another event)
	ResultGitBadSignature = "git_bad_signature"
	ResultGitTooLarge     = "git_too_large"
	ResultGitBadPayload   = "git_bad_payload"
	ResultGitUnavailable  = "git_unavailable"
)

// DefaultGitMaxBodyBytes bounds a push delivery: GitHub caps payloads at
// 25 MB, but a push lists at most 20 commits and fits well under this.
const DefaultGitMaxBodyBytes = 5 << 20

// GitOptions configure a GitReceiver.
type GitOptions struct {
	// Key returns the webhook secret configured on the hosting service:
	// GitHub and Gitea/Forgejo sign the body with it (HMAC-SHA256), GitLab
	// sends it as a token. Called per delivery, so a rotated Secret takes
	// effect without a restart.
	Key func() ([]byte, error)
	// Trigger receives verified pushes; nil answers 503.
	Trigger GitPushTrigger
	// MaxBodyBytes bounds a delivery (default DefaultGitMaxBodyBytes).
	MaxBodyBytes int64
	// Deliveries, when set, counts deliveries by result (/metrics).
	Deliveries *metrics.CounterVec
	// LogInterval spaces the log lines of rejected deliveries, per result
	// (default 1m).
	LogInterval time.Duration
	Now         func() time.Time
	Logger      klog.Logger
}

// GitReceiver is the http.Handler for push deliveries of GitHub, GitLab
// and Gitea/Forgejo: it verifies them, reads the repository's URLs, the
// ref and the new commit, and hands them to the GitSync controller.
type GitReceiver struct {
	opts GitOptions

	results   sync.Map // result -> *atomic.Int64
	triggered atomic.Int64

	logMu    sync.Mutex
	lastLog  map[string]time.Time
	withheld map[string]int
}

// NewGitReceiver returns a GitReceiver.
func NewGitReceiver(opts GitOptions) *GitReceiver {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultGitMaxBodyBytes
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
	return &GitReceiver{opts: opts, lastLog: map[string]time.Time{}, withheld: map[string]int{}}
}

// Stats returns the deliveries by result and the syncs triggered.
func (r *GitReceiver) Stats() (deliveries map[string]int64, triggered int64) {
	deliveries = map[string]int64{}
	r.results.Range(func(k, v any) bool {
		deliveries[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return deliveries, r.triggered.Load()
}

func (r *GitReceiver) count(result string) {
	v, _ := r.results.LoadOrStore(result, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	if r.opts.Deliveries != nil {
		r.opts.Deliveries.With(result).Inc()
	}
}

// reject counts a refused delivery and logs why, at most once per
// LogInterval and result.
func (r *GitReceiver) reject(w http.ResponseWriter, req *http.Request, d delivery, result string, status int, err error) {
	r.count(result)
	http.Error(w, http.StatusText(status), status)
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
	r.opts.Logger.Info("Git webhook delivery rejected", "result", result, "reason", err.Error(), "service", d.service,
		"delivery", d.id, "remote", req.RemoteAddr, "withheldSinceLastLine", withheld)
}

// delivery is what the headers say about a request.
type delivery struct {
	service string // github, gitlab, gitea
	event   string
	id      string
	// verify checks the body against the key.
	verify func(key, body []byte) error
	// isPush tells a push event (branch or tag) from any other.
	isPush bool
}

var errNoSignature = errors.New("the delivery carries no signature or token")

// classify reads the service and event from the headers. Gitea and
// Forgejo also send GitHub's headers, so they are looked for first.
func classify(h http.Header) (delivery, bool) {
	switch {
	case h.Get(HeaderGiteaEvent) != "" || h.Get(HeaderForgejoEvent) != "":
		event := firstOf(h.Get(HeaderGiteaEvent), h.Get(HeaderForgejoEvent))
		sig := firstOf(h.Get(HeaderGiteaSignature), h.Get(HeaderForgejoSig))
		return delivery{service: "gitea", event: event, id: firstOf(h.Get(HeaderGiteaDelivery), h.Get(HeaderForgejoDelivery)),
			isPush: event == "push",
			verify: func(key, body []byte) error { return verifyHMAC(key, body, sig, "") }}, true
	case h.Get(HeaderGitLabEvent) != "":
		event := h.Get(HeaderGitLabEvent)
		token := h.Get(HeaderGitLabToken)
		return delivery{service: "gitlab", event: event, id: h.Get(HeaderGitLabDelivery),
			isPush: event == "Push Hook" || event == "Tag Push Hook",
			verify: func(key, _ []byte) error {
				if token == "" {
					return errNoSignature
				}
				if subtle.ConstantTimeCompare([]byte(token), key) != 1 {
					return errors.New("the token does not match")
				}
				return nil
			}}, true
	case h.Get(HeaderGitHubEvent) != "":
		event := h.Get(HeaderGitHubEvent)
		sig := h.Get(HeaderGitHubSignature)
		return delivery{service: "github", event: event, id: h.Get(HeaderGitHubDelivery),
			isPush: event == "push",
			verify: func(key, body []byte) error { return verifyHMAC(key, body, sig, "sha256=") }}, true
	}
	return delivery{}, false
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// verifyHMAC checks a hex HMAC-SHA256 of body, after prefix, in constant time.
func verifyHMAC(key, body []byte, signature, prefix string) error {
	if signature == "" {
		return errNoSignature
	}
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(signature), prefix)
	if !ok {
		return fmt.Errorf("the signature does not start with %q", prefix)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return errors.New("the signature is not hex")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("the signature does not match")
	}
	return nil
}

// ServeHTTP verifies a delivery and, for a push, triggers the GitSyncs of
// the repository. Verified deliveries that are no push (GitHub's ping, any
// other event) are answered 200 and trigger nothing.
func (r *GitReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	d, ok := classify(req.Header)
	if !ok {
		r.reject(w, req, d, ResultGitBadPayload, http.StatusBadRequest,
			errors.New("no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.opts.MaxBodyBytes+1))
	if err != nil {
		r.reject(w, req, d, ResultGitBadPayload, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	if int64(len(body)) > r.opts.MaxBodyBytes {
		r.reject(w, req, d, ResultGitTooLarge, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", r.opts.MaxBodyBytes))
		return
	}
	key, err := r.opts.Key()
	if err != nil || len(key) == 0 {
		if err == nil {
			err = errors.New("the webhook secret is empty")
		}
		r.reject(w, req, d, ResultGitUnavailable, http.StatusServiceUnavailable, err)
		return
	}
	if err := d.verify(key, body); err != nil {
		r.reject(w, req, d, ResultGitBadSignature, http.StatusUnauthorized, err)
		return
	}
	if !d.isPush {
		r.count(ResultGitIgnored)
		r.opts.Logger.V(2).Info("Git webhook delivery ignored", "service", d.service, "event", d.event, "delivery", d.id)
		w.WriteHeader(http.StatusOK)
		return
	}
	push, err := decodePush(d.service, body)
	if err != nil {
		r.reject(w, req, d, ResultGitBadPayload, http.StatusBadRequest, err)
		return
	}
	if r.opts.Trigger == nil {
		r.reject(w, req, d, ResultGitUnavailable, http.StatusServiceUnavailable, errors.New("no GitSync controller runs"))
		return
	}
	n := r.opts.Trigger.TriggerGitPush(push)
	r.triggered.Add(int64(n))
	r.count(ResultGitAccepted)
	r.opts.Logger.V(2).Info("Git webhook delivery accepted", "service", d.service, "delivery", d.id, "ref", push.Ref,
		"commit", push.Commit, "syncs", n)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"triggered\":%d}\n", n)
}

// pushPayload holds the fields of a push event the three services share or
// name differently: GitHub and Gitea/Forgejo have repository.clone_url,
// ssh_url, html_url; GitLab has project.git_http_url, git_ssh_url, web_url
// and checkout_sha.
type pushPayload struct {
	Ref         string `json:"ref"`
	After       string `json:"after"`
	CheckoutSHA string `json:"checkout_sha"`
	Repository  struct {
		CloneURL   string `json:"clone_url"`
		SSHURL     string `json:"ssh_url"`
		HTMLURL    string `json:"html_url"`
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		Homepage   string `json:"homepage"`
	} `json:"repository"`
	Project struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		WebURL     string `json:"web_url"`
	} `json:"project"`
}

func decodePush(service string, body []byte) (GitPush, error) {
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return GitPush{}, fmt.Errorf("decode %s push: %w", service, err)
	}
	var urls []string
	seen := map[string]bool{}
	for _, u := range []string{p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL,
		p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL,
		p.Repository.GitHTTPURL, p.Repository.GitSSHURL, p.Repository.Homepage} {
		if u != "" && !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 || p.Ref == "" {
		return GitPush{}, fmt.Errorf("%s push names no repository URL or no ref", service)
	}
	commit := p.After
	if service == "gitlab" && p.CheckoutSHA != "" {
		commit = p.CheckoutSHA // a tag push's "after" is the tag object
	}
	return GitPush{RepoURLs: urls, Ref: p.Ref, Commit: commit}, nil
}
