package webhook

import (
	"net/http"
	"testing"
)

// FuzzGitPushBody: any correctly signed body is accepted or refused as a
// bad payload, never a panic, and only an accepted one triggers.
func FuzzGitPushBody(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main","after":"abc","repository":{"clone_url":"https://h/r.git"}}`))
	f.Add([]byte(`{"ref":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, service := range []string{"github", "gitlab", "gitea"} {
			event := map[string]string{"github": "push", "gitlab": "Push Hook", "gitea": "push"}[service]
			rec := &pushRecorder{}
			r := NewGitReceiver(GitOptions{Key: func() ([]byte, error) { return gitKey, nil }, Trigger: rec})
			resp := post(r, signed(service, event, gitKey, body), body)
			pushes := rec.take()
			switch resp.Code {
			case http.StatusOK:
				if len(pushes) != 1 || pushes[0].Ref == "" || len(pushes[0].RepoURLs) == 0 {
					t.Fatalf("%s: accepted %q as %+v", service, body, pushes)
				}
			case http.StatusBadRequest:
				if len(pushes) != 0 {
					t.Fatalf("%s: a refused body triggered %+v", service, pushes)
				}
			default:
				t.Fatalf("%s: status %d for %q", service, resp.Code, body)
			}
		}
	})
}
