package gitrepo

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// scpLike matches the scp-like SSH syntax [user@]host:path, which has no
// scheme; a "host:port/path" with digits only is not taken for it.
var scpLike = regexp.MustCompile(`^(?:([^@/:]+)@)?([^@/:\[\]]+|\[[^\]]+\]):(.*)$`)

// remote is a parsed repository URL.
type remote struct {
	// url is what go-git is given: the URL without userinfo (password);
	// for scp-like URLs the user is kept, it names the SSH account.
	url string
	// display is url for messages: never holds a password.
	display string
	ssh     bool
	// user is the SSH user (default "git") or the URL's HTTP user.
	user string
	// password is the URL's password, if it had one (HTTP only).
	password string
}

// parseRemote accepts https://, http://, ssh:// and scp-like
// [user@]host:path URLs; a password in an HTTP URL is taken out of the URL.
func parseRemote(raw string) (remote, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return remote{}, fmt.Errorf("%w: empty repository URL", ErrInvalid)
	}
	if !strings.Contains(raw, "://") {
		m := scpLike.FindStringSubmatch(raw)
		if m == nil || m[3] == "" || strings.HasPrefix(raw, "/") {
			return remote{}, fmt.Errorf("%w: %q is neither an https://, http://, ssh:// URL nor user@host:path", ErrInvalid, RedactURL(raw))
		}
		user := m[1]
		if user == "" {
			user = "git"
		}
		u := user + "@" + m[2] + ":" + m[3]
		return remote{url: u, display: u, ssh: true, user: user}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return remote{}, fmt.Errorf("%w: repository URL %q does not parse", ErrInvalid, RedactURL(raw))
	}
	if u.Host == "" {
		return remote{}, fmt.Errorf("%w: repository URL %q has no host", ErrInvalid, RedactURL(raw))
	}
	r := remote{}
	switch strings.ToLower(u.Scheme) {
	case "https", "http":
		if authority := strings.SplitN(raw[strings.Index(raw, "://")+3:], "/", 2)[0]; strings.ContainsAny(authority, "?#") {
			// A "?" or "#" before the path ends the authority for the
			// parser, which would leave a user:password@ after it in the
			// query or fragment of the URL handed on.
			return remote{}, fmt.Errorf("%w: the host part of repository URL %q holds a \"?\" or \"#\"", ErrInvalid, RedactURL(raw))
		}
		if u.User != nil {
			r.user = u.User.Username()
			r.password, _ = u.User.Password()
		}
		u.User = nil
	case "ssh":
		r.ssh = true
		r.user = "git"
		if u.User != nil && u.User.Username() != "" {
			r.user = u.User.Username()
		}
		u.User = url.User(r.user)
	default:
		return remote{}, fmt.Errorf("%w: repository URL scheme %q: want https, http or ssh", ErrInvalid, u.Scheme)
	}
	r.url = u.String()
	r.display = RedactURL(r.url)
	return r, nil
}

// RedactURL returns raw without its userinfo when that holds a password
// (user:password@), for messages. It reads the authority as everything
// before the first "/" after the scheme, so no "?" or "#" in a password
// hides it; an scp-like git@host:path keeps its user.
func RedactURL(raw string) string {
	scheme, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if i := strings.Index(rest, "/"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 && strings.Contains(authority[:at], ":") {
		return scheme + rest[at+1:]
	}
	return raw
}

// NormalizeURL reduces a repository URL to "host/path" in lower case,
// without scheme, user, port, ".git" suffix and slashes at either end, so
// the HTTPS, SSH and scp-like URLs of one repository give the same string,
// e.g. https://GitHub.com/org/repo.git, ssh://git@github.com:22/org/repo and
// git@github.com:org/repo all give "github.com/org/repo". It returns "" for
// what is not a repository URL.
func NormalizeURL(raw string) string {
	raw = strings.TrimSpace(raw)
	var host, path string
	if !strings.Contains(raw, "://") {
		m := scpLike.FindStringSubmatch(raw)
		if m == nil {
			return ""
		}
		host, path = strings.Trim(m[2], "[]"), m[3]
	} else {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return ""
		}
		host, path = u.Hostname(), u.Path
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	path = strings.Trim(path, "/")
	if host == "" || path == "" {
		return ""
	}
	return strings.ToLower(host + "/" + path)
}

// SameRepository reports whether two URLs name the same repository, by
// NormalizeURL; URLs that do not parse match nothing.
func SameRepository(a, b string) bool {
	na := NormalizeURL(a)
	return na != "" && na == NormalizeURL(b)
}
