package gitrepo

import (
	"strings"
	"testing"
)

func TestRangeHighest(t *testing.T) {
	tags := []string{"v0.1.0", "v0.1.5", "v0.2.0", "1.0.0", "v1.2.0", "v1.2.3", "v1.2.10", "v1.3.0", "v1.10.0",
		"v2.0.0-rc.1", "v2.0.0", "v2.3.4", "v3.0.0-beta.2", "latest", "v1.2", "release-1.4.0"}
	for _, tc := range []struct{ rng, want string }{
		{">=1.2.0 <2.0.0", "v1.10.0"},
		{"^1.2", "v1.10.0"},
		{"^1.2.3", "v1.10.0"},
		{"^0.1.0", "v0.1.5"},
		{"^0.0.1", ""},
		{"~1.2.3", "v1.2.10"},
		{"~1.2", "v1.2.10"},
		{"~1", "v1.10.0"},
		{"1.x", "v1.10.0"},
		{"1.2.x", "v1.2.10"},
		{"1.2", "v1.2.10"},
		{"1", "v1.10.0"},
		{"*", "v2.3.4"},
		{"x", "v2.3.4"},
		{"=1.2.3", "v1.2.3"},
		{"1.2.3", "v1.2.3"},
		{">2.3.4", ""},
		{">2", ""},
		{">=2.0.0-rc.0 <2.0.0", "v2.0.0-rc.1"},
		{">=3.0.0-beta.1", "v3.0.0-beta.2"},
		{">=3", ""}, // pre-releases only when the range names one
		{"<1.2.3", "v1.2.0"},
		{"<=1.2", "v1.2.10"},
		{"1.2.0 - 1.3", "v1.3.0"},
		{"1.2.0 - 1.2.3", "v1.2.3"},
		{"^1.2 !=1.10.0", "v1.3.0"},
		{"~0.1 || ^2", "v2.3.4"},
		{"<0.2 || 1.2.x", "v1.2.10"},
		{"v1.2.x", "v1.2.10"},
		{"~>1.2", "v1.2.10"},
	} {
		r, err := parseRange(tc.rng)
		if err != nil {
			t.Errorf("parseRange(%q): %v", tc.rng, err)
			continue
		}
		got, _ := r.highest(tags)
		if got != tc.want {
			t.Errorf("highest(%q) = %q, want %q", tc.rng, got, tc.want)
		}
	}
	for _, bad := range []string{"", "||", ">= ", "1.2.3.4", "a.b", "!=1", "1.2-rc.1", ">x"} {
		if _, err := parseRange(bad); err == nil {
			t.Errorf("parseRange(%q) accepted", bad)
		}
	}
}

func TestRefValidate(t *testing.T) {
	for _, tc := range []struct {
		ref Ref
		ok  bool
	}{
		{Ref{Branch: "main"}, true},
		{Ref{Tag: "v1"}, true},
		{Ref{SemVer: "^1"}, true},
		{Ref{Commit: strings.Repeat("a", 40)}, true},
		{Ref{}, false},
		{Ref{Branch: "main", Tag: "v1"}, false},
		{Ref{Commit: "abc123"}, false},
		{Ref{Commit: strings.Repeat("g", 40)}, false},
		{Ref{SemVer: "banana"}, false},
	} {
		if err := tc.ref.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.ref, err, tc.ok)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	same := []string{
		"https://github.com/Org/Repo.git",
		"https://user:token@github.com/org/repo",
		"http://github.com/org/repo/",
		"ssh://git@github.com/org/repo.git",
		"ssh://git@github.com:22/org/repo",
		"git@github.com:org/repo.git",
		"github.com:org/repo",
		"https://github.com:443/org/repo.git/",
	}
	for _, u := range same {
		if got := NormalizeURL(u); got != "github.com/org/repo" {
			t.Errorf("NormalizeURL(%q) = %q", u, got)
		}
		if !SameRepository(same[0], u) {
			t.Errorf("SameRepository(%q, %q) = false", same[0], u)
		}
	}
	for _, other := range []string{"https://github.com/org/repo2", "https://gitlab.com/org/repo", "git@github.com:org/sub/repo", "", "not a url"} {
		if SameRepository(same[0], other) {
			t.Errorf("SameRepository(%q, %q) = true", same[0], other)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tok3n@host/r.git": "https://user@host/r.git",
		"https://host/r.git":            "https://host/r.git",
		"git@host:org/r.git":            "git@host:org/r.git",
		"https://user:t%zz@host/r":      "https://host/r",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(RedactURL(in), "tok3n") {
			t.Errorf("RedactURL(%q) keeps the password", in)
		}
	}
}

func TestParseRemote(t *testing.T) {
	for in, want := range map[string]remote{
		"https://u:p@h/r.git":  {url: "https://h/r.git", display: "https://h/r.git", user: "u", password: "p"},
		"ssh://h:2222/r.git":   {url: "ssh://git@h:2222/r.git", display: "ssh://git@h:2222/r.git", ssh: true, user: "git"},
		"deploy@h:org/r.git":   {url: "deploy@h:org/r.git", display: "deploy@h:org/r.git", ssh: true, user: "deploy"},
		"h:org/r.git":          {url: "git@h:org/r.git", display: "git@h:org/r.git", ssh: true, user: "git"},
		"ssh://bob:pw@h/r.git": {url: "ssh://bob@h/r.git", display: "ssh://bob@h/r.git", ssh: true, user: "bob"},
		"  https://h/r.git  ":  {url: "https://h/r.git", display: "https://h/r.git"},
	} {
		got, err := parseRemote(in)
		if err != nil || got != want {
			t.Errorf("parseRemote(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "file:///etc/repo", "/srv/repo.git", "git://h/r.git", "https:///r.git", "ftp://h/r"} {
		if _, err := parseRemote(bad); err == nil {
			t.Errorf("parseRemote(%q) accepted", bad)
		}
	}
}
