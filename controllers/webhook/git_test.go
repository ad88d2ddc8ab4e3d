package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
	"k8s.io/klog/v2/ktesting"

	"github.com/vidra-operator/vidra/controllers/metrics"
)

type pushRecorder struct {
	mu     sync.Mutex
	pushes []GitPush
}

func (r *pushRecorder) TriggerGitPush(p GitPush) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes = append(r.pushes, p)
	return 2
}

func (r *pushRecorder) take() []GitPush {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pushes
	r.pushes = nil
	return out
}

var gitKey = []byte("git-webhook-secret")

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "git", name))
	assert.NilError(t, err)
	return b
}

func hmacHex(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// signed returns the headers each service sends with a delivery of event,
// signed (or carrying the token) with key.
func signed(service, event string, key, body []byte) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	switch service {
	case "github":
		h.Set(HeaderGitHubEvent, event)
		h.Set(HeaderGitHubDelivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		h.Set("X-Hub-Signature", "sha1=ignored")
		h.Set(HeaderGitHubSignature, "sha256="+hmacHex(key, body))
	case "gitlab":
		h.Set(HeaderGitLabEvent, event)
		h.Set(HeaderGitLabDelivery, "13792a34-cac6-4fda-95a8-c58e00a3954e")
		h.Set(HeaderGitLabToken, string(key))
	case "gitea":
		// Gitea sends its own headers and GitHub's and Gogs's look-alikes.
		h.Set(HeaderGiteaEvent, event)
		h.Set(HeaderGiteaDelivery, "f6266f16-1bf3-46a5-9ea4-602e06ead473")
		h.Set(HeaderGiteaSignature, hmacHex(key, body))
		h.Set("X-Gogs-Event", event)
		h.Set(HeaderGitHubEvent, event)
		h.Set(HeaderGitHubSignature, "sha256="+hmacHex(key, body))
	case "forgejo":
		h.Set(HeaderForgejoEvent, event)
		h.Set(HeaderForgejoDelivery, "f6266f16-1bf3-46a5-9ea4-602e06ead474")
		h.Set(HeaderForgejoSig, hmacHex(key, body))
	}
	return h
}

func post(r http.Handler, h http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/git", bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func newGitReceiver(t *testing.T, trigger GitPushTrigger, reg *metrics.Registry) *GitReceiver {
	opts := GitOptions{
		Key:     func() ([]byte, error) { return gitKey, nil },
		Trigger: trigger,
		Logger:  ktesting.NewLogger(t, ktesting.NewConfig()),
	}
	if reg != nil {
		opts.Deliveries = metrics.NewWebhookDeliveries(reg)
	}
	return NewGitReceiver(opts)
}

func TestGitPushDeliveries(t *testing.T) {
	for _, tc := range []struct {
		service, event, file string
		want                 GitPush
	}{
		{"github", "push", "github-push.json", GitPush{
			RepoURLs: []string{"https://github.com/acme/platform.git", "git@github.com:acme/platform.git", "https://github.com/acme/platform"},
			Ref:      "refs/heads/main", Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}},
		{"gitlab", "Push Hook", "gitlab-push.json", GitPush{
			RepoURLs: []string{"https://gitlab.example.com/infra/platform.git", "git@gitlab.example.com:infra/platform.git", "https://gitlab.example.com/infra/platform"},
			Ref:      "refs/heads/main", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{"gitlab", "Tag Push Hook", "gitlab-tag-push.json", GitPush{
			RepoURLs: []string{"https://gitlab.example.com/infra/platform.git", "git@gitlab.example.com:infra/platform.git", "https://gitlab.example.com/infra/platform"},
			Ref:      "refs/tags/v1.4.0", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{"gitea", "push", "gitea-push.json", GitPush{
			RepoURLs: []string{"https://gitea.example.com/ops/platform.git", "ssh://git@gitea.example.com:2222/ops/platform.git", "https://gitea.example.com/ops/platform"},
			Ref:      "refs/heads/release", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{"forgejo", "push", "gitea-push.json", GitPush{
			RepoURLs: []string{"https://gitea.example.com/ops/platform.git", "ssh://git@gitea.example.com:2222/ops/platform.git", "https://gitea.example.com/ops/platform"},
			Ref:      "refs/heads/release", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
	} {
		t.Run(tc.service+"/"+tc.file, func(t *testing.T) {
			rec := &pushRecorder{}
			r := newGitReceiver(t, rec, nil)
			body := fixture(t, tc.file)
			resp := post(r, signed(tc.service, tc.event, gitKey, body), body)
			assert.Equal(t, resp.Code, http.StatusOK, resp.Body.String())
			assert.Equal(t, strings.TrimSpace(resp.Body.String()), `{"triggered":2}`)
			if diff := cmp.Diff([]GitPush{tc.want}, rec.take()); diff != "" {
				t.Errorf("pushes (-want +got):\n%s", diff)
			}
			deliveries, triggered := r.Stats()
			assert.DeepEqual(t, deliveries, map[string]int64{ResultGitAccepted: 1})
			assert.Equal(t, triggered, int64(2))
		})
	}
}

func TestGitDeliveriesRejectedOrIgnored(t *testing.T) {
	push := fixture(t, "github-push.json")
	gitlab := fixture(t, "gitlab-push.json")
	gitea := fixture(t, "gitea-push.json")
	tampered := bytes.Replace(push, []byte("refs/heads/main"), []byte("refs/heads/evil"), 1)
	withHeader := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	for name, tc := range map[string]struct {
		header http.Header
		body   []byte
		code   int
		result string
	}{
		"github ping":             {signed("github", "ping", gitKey, fixture(t, "github-ping.json")), fixture(t, "github-ping.json"), http.StatusOK, ResultGitIgnored},
		"github issues":           {signed("github", "issues", gitKey, fixture(t, "github-issues.json")), fixture(t, "github-issues.json"), http.StatusOK, ResultGitIgnored},
		"gitlab merge request":    {signed("gitlab", "Merge Request Hook", gitKey, nil), fixture(t, "gitlab-merge-request.json"), http.StatusOK, ResultGitIgnored},
		"github wrong key":        {signed("github", "push", []byte("other"), push), push, http.StatusUnauthorized, ResultGitBadSignature},
		"github tampered body":    {signed("github", "push", gitKey, push), tampered, http.StatusUnauthorized, ResultGitBadSignature},
		"github no signature":     {withHeader(signed("github", "push", gitKey, push), HeaderGitHubSignature, ""), push, http.StatusUnauthorized, ResultGitBadSignature},
		"github sha1 only":        {withHeader(signed("github", "push", gitKey, push), HeaderGitHubSignature, hmacHex(gitKey, push)), push, http.StatusUnauthorized, ResultGitBadSignature},
		"github not hex":          {withHeader(signed("github", "push", gitKey, push), HeaderGitHubSignature, "sha256=zz"), push, http.StatusUnauthorized, ResultGitBadSignature},
		"gitlab wrong token":      {signed("gitlab", "Push Hook", []byte("git-webhook-secreT"), nil), gitlab, http.StatusUnauthorized, ResultGitBadSignature},
		"gitlab no token":         {withHeader(signed("gitlab", "Push Hook", gitKey, nil), HeaderGitLabToken, ""), gitlab, http.StatusUnauthorized, ResultGitBadSignature},
		"gitlab ping unsigned":    {withHeader(signed("gitlab", "Merge Request Hook", gitKey, nil), HeaderGitLabToken, ""), gitlab, http.StatusUnauthorized, ResultGitBadSignature},
		"gitea wrong key":         {signed("gitea", "push", []byte("other"), gitea), gitea, http.StatusUnauthorized, ResultGitBadSignature},
		"gitea only github sig":   {withHeader(signed("gitea", "push", gitKey, gitea), HeaderGiteaSignature, ""), gitea, http.StatusUnauthorized, ResultGitBadSignature},
		"no service headers":      {http.Header{"Content-Type": {"application/json"}}, push, http.StatusBadRequest, ResultGitBadPayload},
		"push that is not json":   {signed("github", "push", gitKey, []byte("not json")), []byte("not json"), http.StatusBadRequest, ResultGitBadPayload},
		"push without repository": {signed("github", "push", gitKey, []byte(`{"ref":"refs/heads/main"}`)), []byte(`{"ref":"refs/heads/main"}`), http.StatusBadRequest, ResultGitBadPayload},
		"too large":               {signed("github", "push", gitKey, bytes.Repeat([]byte(" "), 2<<20)), bytes.Repeat([]byte(" "), 2<<20), http.StatusRequestEntityTooLarge, ResultGitTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &pushRecorder{}
			reg := metrics.NewRegistry()
			r := newGitReceiver(t, rec, reg)
			r.opts.MaxBodyBytes = 1 << 20
			resp := post(r, tc.header, tc.body)
			assert.Equal(t, resp.Code, tc.code, resp.Body.String())
			assert.Equal(t, len(rec.take()), 0, "a rejected or ignored delivery triggered a sync")
			deliveries, triggered := r.Stats()
			assert.DeepEqual(t, deliveries, map[string]int64{tc.result: 1})
			assert.Equal(t, triggered, int64(0))
			var out strings.Builder
			assert.NilError(t, reg.Write(&out))
			assert.Assert(t, strings.Contains(out.String(), `vidra_webhook_deliveries_total{result="`+tc.result+`"} 1`), out.String())
			assert.Assert(t, !strings.Contains(resp.Body.String(), string(gitKey)))
		})
	}
}

func TestGitReceiverUnavailable(t *testing.T) {
	push := fixture(t, "github-push.json")
	// No key in the Secret.
	r := NewGitReceiver(GitOptions{Key: func() ([]byte, error) { return nil, errors.New("secret vidra-webhook not found") },
		Trigger: &pushRecorder{}, Logger: ktesting.NewLogger(t, ktesting.NewConfig())})
	assert.Equal(t, post(r, signed("github", "push", gitKey, push), push).Code, http.StatusServiceUnavailable)
	// No GitSync controller to trigger.
	r = newGitReceiver(t, nil, nil)
	assert.Equal(t, post(r, signed("github", "push", gitKey, push), push).Code, http.StatusServiceUnavailable)
	deliveries, _ := r.Stats()
	assert.DeepEqual(t, deliveries, map[string]int64{ResultGitUnavailable: 1})
	// Only POST.
	req := httptest.NewRequest(http.MethodGet, "/git", nil)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	assert.Equal(t, rec.Code, http.StatusMethodNotAllowed)
}

// The key is read per delivery: a rotated key takes effect at once.
func TestGitKeyRotation(t *testing.T) {
	key := []byte("first")
	rec := &pushRecorder{}
	r := NewGitReceiver(GitOptions{Key: func() ([]byte, error) { return key, nil }, Trigger: rec,
		Logger: ktesting.NewLogger(t, ktesting.NewConfig())})
	push := fixture(t, "github-push.json")
	assert.Equal(t, post(r, signed("github", "push", []byte("first"), push), push).Code, http.StatusOK)
	key = []byte("second")
	assert.Equal(t, post(r, signed("github", "push", []byte("first"), push), push).Code, http.StatusUnauthorized)
	assert.Equal(t, post(r, signed("github", "push", []byte("second"), push), push).Code, http.StatusOK)
	assert.Equal(t, len(rec.take()), 2)
}
