package gitrepo

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseRange: any range either fails to parse or picks a tag among
// those given, without panicking.
func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{">=1.2.0 <2.0.0", "^1.2", "~1.2.3", "1.x", "*", "1.2.0 - 1.3", ">=2.0.0-rc.0 || ^0.0.1", "!=1.2.3", "~>1", "v1.2.3-alpha.1+build"} {
		f.Add(seed)
	}
	tags := []string{"v0.0.1", "v1.2.3", "1.2.4-rc.1", "v2.0.0", "v10.20.30+meta", "latest"}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRange(s)
		if err != nil {
			return
		}
		tag, ok := r.highest(tags)
		if ok && !contains(tags, tag) {
			t.Fatalf("highest(%q) = %q, not a given tag", s, tag)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzRedactURL: a password in an HTTPS URL never survives RedactURL, and
// parseRemote never puts it into the URL it hands to go-git.
func FuzzRedactURL(f *testing.F) {
	f.Add("user", "s3cret", "git.example.com", "org/repo.git")
	f.Add("", "tok%zz", "h:8443", "r")
	f.Fuzz(func(t *testing.T, user, password, host, path string) {
		if len(password) < 4 || strings.ContainsAny(password, "@/:") || strings.Contains(user, "/") {
			// Too short to tell apart from the rest of the URL, or no
			// password: a "/" in the user ends the authority before it.
			return
		}
		raw := "https://" + user + ":" + password + "@" + host + "/" + path
		// The rest of the URL may hold the same characters, also once
		// escaped: "%20000" in a path or "%80000" in a host holds "0000".
		elsewhere := host + "/" + path + " " + (&url.URL{Host: host, Path: "/" + path}).String()
		if strings.Contains(RedactURL(raw), password) && !strings.Contains(elsewhere, password) {
			t.Fatalf("RedactURL(%q) = %q keeps the password", raw, RedactURL(raw))
		}
		if r, err := parseRemote(raw); err == nil {
			if strings.Contains(r.url, password) && !strings.Contains(elsewhere, password) {
				t.Fatalf("parseRemote(%q).url = %q keeps the password", raw, r.url)
			}
			if strings.Contains(r.display, password) && !strings.Contains(elsewhere, password) {
				t.Fatalf("parseRemote(%q).display = %q keeps the password", raw, r.display)
			}
		}
		_ = NormalizeURL(raw)
	})
}
