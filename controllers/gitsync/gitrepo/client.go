package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// call is one Resolve or Fetch: the parsed remote, its go-git auth and
// what the classification of its errors needs.
type call struct {
	op     string // "resolve" or "fetch"
	remote remote
	auth   transport.AuthMethod
	// hostKeyRefused is set by the SSH host key check when it refuses.
	hostKeyRefused error
	// secrets are scrubbed from every message.
	secrets []string
}

func (c *Client) newCall(op, rawURL string, auth Auth) (*call, error) {
	rem, err := parseRemote(rawURL)
	if err != nil {
		return nil, err
	}
	k := &call{op: op, remote: rem}
	for _, s := range []string{auth.Password, rem.password} {
		if s != "" {
			k.secrets = append(k.secrets, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	if rem.ssh {
		if len(auth.SSHKnownHosts) == 0 {
			return nil, k.fail(ErrHostKeyUnknown, "no known_hosts given for the SSH remote; host key checking is never skipped")
		}
		hosts, err := parseKnownHosts(auth.SSHKnownHosts)
		if err != nil {
			return nil, k.fail(ErrHostKeyUnknown, err.Error())
		}
		if len(auth.SSHPrivateKey) == 0 {
			return nil, k.fail(ErrAuthentication, "no SSH private key given for the SSH remote")
		}
		signer, err := ssh.ParsePrivateKey(auth.SSHPrivateKey)
		if err != nil {
			// The parser's message names the format problem, never the key.
			return nil, k.fail(ErrAuthentication, "SSH private key: "+err.Error())
		}
		check, algos := hostKeyCheck(hosts, sshAddress(rem.url), &k.hostKeyRefused)
		pk := &gitssh.PublicKeys{User: rem.user, Signer: signer}
		pk.HostKeyCallback = check
		pk.HostKeyAlgorithms = algos
		k.auth = pk
		return k, nil
	}
	user, password := rem.user, rem.password
	if auth.Username != "" || auth.Password != "" {
		user, password = auth.Username, auth.Password
	}
	if password != "" || user != "" {
		if user == "" {
			user = "git"
		}
		k.auth = &githttp.BasicAuth{Username: user, Password: password}
	}
	return k, nil
}

// sshAddress is the host:port an SSH URL connects to.
func sshAddress(u string) string {
	if strings.HasPrefix(u, "ssh://") {
		if p, err := url.Parse(u); err == nil {
			port := p.Port()
			if port == "" {
				port = "22"
			}
			return net.JoinHostPort(p.Hostname(), port)
		}
	}
	m := scpLike.FindStringSubmatch(u)
	if m == nil {
		return u
	}
	return net.JoinHostPort(strings.Trim(m[2], "[]"), "22")
}

// fail builds an error wrapping kind, naming the operation and the remote
// (without password), with any secret scrubbed from the detail.
func (k *call) fail(kind error, detail string) error {
	for _, s := range k.secrets {
		if len(s) > 0 {
			detail = strings.ReplaceAll(detail, s, "<redacted>")
		}
	}
	return fmt.Errorf("%s %s: %w: %s", k.op, k.remote.display, kind, detail)
}

// classify turns a go-git error into one of the sentinel errors.
func (k *call) classify(ctx, parent context.Context, limits Limits, err error) error {
	if err == nil {
		return nil
	}
	var tooLarge *tooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return k.fail(ErrTooLarge, fmt.Sprintf("received more than the limit of %d bytes", tooLarge.limit))
	case k.hostKeyRefused != nil:
		return k.fail(ErrHostKeyUnknown, k.hostKeyRefused.Error())
	case parent.Err() != nil:
		return fmt.Errorf("%s %s: %w", k.op, k.remote.display, parent.Err())
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return k.fail(ErrTimeout, fmt.Sprintf("not done within the limit of %s", limits.Timeout))
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod), strings.Contains(err.Error(), "unable to authenticate"):
		return k.fail(ErrAuthentication, err.Error())
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return k.fail(ErrRefNotFound, "the repository is empty")
	case errors.Is(err, git.ErrExactSHA1NotSupported):
		return k.fail(ErrRefNotFound, "no ref points at the commit and the remote serves only commits refs point at")
	case strings.Contains(err.Error(), "not our ref"), strings.Contains(err.Error(), "couldn't find remote ref"),
		errors.Is(err, git.NoMatchingRefSpecError{}):
		return k.fail(ErrRefNotFound, err.Error())
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return k.fail(ErrUnreachable, "no repository at this URL")
	}
	return k.fail(ErrUnreachable, err.Error())
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.limits.Timeout > 0 {
		return context.WithTimeout(ctx, c.limits.Timeout)
	}
	return context.WithCancel(ctx)
}

// Resolve asks the remote which commit ref points at. It reads the remote's
// ref advertisement only (as `git ls-remote` does) and fetches no object,
// so polling an unchanged ref is cheap. A Commit ref is checked against the
// advertised refs: RefName names a ref pointing at it, or is "" when none
// does (Fetch then asks for the commit itself).
func (c *Client) Resolve(ctx context.Context, rawURL string, auth Auth, ref Ref) (Resolved, error) {
	if err := ref.Validate(); err != nil {
		return Resolved{}, err
	}
	k, err := c.newCall("resolve", rawURL, auth)
	if err != nil {
		return Resolved{}, err
	}
	callCtx, cancel := c.withTimeout(ctx)
	defer cancel()
	r := git.NewRemote(nil, &config.RemoteConfig{Name: "origin", URLs: []string{k.remote.url}})
	refs, err := r.ListContext(callCtx, &git.ListOptions{Auth: k.auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return Resolved{}, k.classify(callCtx, ctx, c.limits, err)
	}
	advertised := map[string]string{}
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			advertised[r.Name().String()] = r.Hash().String()
		}
	}
	// commitOf peels an annotated tag when the remote advertised it peeled.
	commitOf := func(name string) (string, bool) {
		if peeled, ok := advertised[name+"^{}"]; ok {
			return peeled, true
		}
		h, ok := advertised[name]
		return h, ok
	}
	switch {
	case ref.Branch != "":
		name := fullName(ref.Branch, "refs/heads/")
		if h, ok := commitOf(name); ok {
			return Resolved{RefName: name, Commit: h}, nil
		}
		return Resolved{}, k.fail(ErrRefNotFound, fmt.Sprintf("no branch %q", ref.Branch))
	case ref.Tag != "":
		name := fullName(ref.Tag, "refs/tags/")
		if h, ok := commitOf(name); ok {
			return Resolved{RefName: name, Commit: h}, nil
		}
		return Resolved{}, k.fail(ErrRefNotFound, fmt.Sprintf("no tag %q", ref.Tag))
	case ref.SemVer != "":
		rng, _ := parseRange(ref.SemVer) // validated above
		var tags []string
		for name := range advertised {
			if strings.HasPrefix(name, "refs/tags/") && !strings.HasSuffix(name, "^{}") {
				tags = append(tags, strings.TrimPrefix(name, "refs/tags/"))
			}
		}
		tag, ok := rng.highest(tags)
		if !ok {
			return Resolved{}, k.fail(ErrRefNotFound, fmt.Sprintf("no tag matches semver range %q among %d tags", ref.SemVer, len(tags)))
		}
		name := "refs/tags/" + tag
		h, _ := commitOf(name)
		return Resolved{RefName: name, Commit: h}, nil
	}
	commit := strings.ToLower(ref.Commit)
	var names []string
	for name := range advertised {
		if !strings.HasSuffix(name, "^{}") && (strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")) {
			if h, _ := commitOf(name); h == commit {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names) // refs/heads/ before refs/tags/, and stable
	if len(names) > 0 {
		return Resolved{RefName: names[0], Commit: commit}, nil
	}
	return Resolved{Commit: commit}, nil
}

// fullName prefixes a short ref name; a name already starting with "refs/"
// is kept.
func fullName(name, prefix string) string {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "refs/") {
		return name
	}
	return prefix + name
}
