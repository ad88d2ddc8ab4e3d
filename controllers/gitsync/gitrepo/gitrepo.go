// Package gitrepo reads Git repositories for the GitSync controller: it asks
// a remote which commit a ref points at (as `git ls-remote` does, no fetch),
// and fetches one commit shallowly into memory, returning the regular files
// under some paths. It knows Git, not Kubernetes.
//
// It is built on go-git (github.com/go-git/go-git/v5), a pure Go
// implementation, so the operator's image needs no git binary; this is the
// only package that imports go-git.
package gitrepo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors, usable with errors.Is. The errors this package returns
// name the repository without credentials and never contain a password, a
// token or a key.
var (
	// ErrAuthentication: the remote refused the credentials (or asked for
	// some and none were given), or an SSH remote was given no private key.
	ErrAuthentication = errors.New("authentication failed")
	// ErrRefNotFound: the branch, tag, semver range or commit names nothing
	// on the remote.
	ErrRefNotFound = errors.New("ref not found")
	// ErrPathNotFound: a path asked for is not in the fetched commit.
	ErrPathNotFound = errors.New("path not found")
	// ErrUnreachable: the remote did not answer (connection refused, DNS,
	// TLS, a server error) or has no repository at that URL.
	ErrUnreachable = errors.New("repository unreachable")
	// ErrHostKeyUnknown: an SSH remote's host key is not in the given
	// known_hosts (or none was given); the connection is refused.
	ErrHostKeyUnknown = errors.New("SSH host key not in known_hosts")
	// ErrTooLarge: the fetch received more than Limits.MaxBytes.
	ErrTooLarge = errors.New("repository exceeds the size limit")
	// ErrTimeout: the operation took longer than Limits.Timeout.
	ErrTimeout = errors.New("repository operation exceeded the time limit")
	// ErrInvalid: the URL, ref or a path is malformed, or the URL's scheme is
	// not one of https, http, ssh or scp-like user@host:path.
	ErrInvalid = errors.New("invalid repository request")
)

// Ref says which commit to read: exactly one field is set.
type Ref struct {
	// Branch is a branch name, e.g. "main" (or "refs/heads/main").
	Branch string
	// Tag is a tag name, e.g. "v1.2.3"; an annotated tag is peeled to its
	// commit.
	Tag string
	// SemVer is a range matched against the remote's tags, the highest
	// matching version wins: comparators joined by spaces (AND) and "||"
	// (OR), e.g. ">=1.2.0 <2.0.0", "^1.2", "~1.2.3", "1.x", "*". Tags may
	// carry a "v" prefix. Pre-releases match only a range naming one.
	SemVer string
	// Commit is a full 40-hex commit id.
	Commit string
}

// Validate reports a Ref that sets not exactly one field, or a malformed one.
func (r Ref) Validate() error {
	set := 0
	for _, v := range []string{r.Branch, r.Tag, r.SemVer, r.Commit} {
		if strings.TrimSpace(v) != "" {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: a ref sets exactly one of branch, tag, semver, commit (%d set)", ErrInvalid, set)
	}
	if r.Commit != "" && !isFullHash(r.Commit) {
		return fmt.Errorf("%w: commit %q is not a full 40-hex commit id", ErrInvalid, r.Commit)
	}
	if r.SemVer != "" {
		if _, err := parseRange(r.SemVer); err != nil {
			return fmt.Errorf("%w: semver %q: %v", ErrInvalid, r.SemVer, err)
		}
	}
	return nil
}

// String is the ref as a user wrote it, e.g. "branch main".
func (r Ref) String() string {
	switch {
	case r.Branch != "":
		return "branch " + r.Branch
	case r.Tag != "":
		return "tag " + r.Tag
	case r.SemVer != "":
		return "semver " + r.SemVer
	case r.Commit != "":
		return "commit " + r.Commit
	}
	return "no ref"
}

// Auth holds credentials. For HTTPS: Username and Password (basic auth), or
// a token as Password (Username defaults to "git"). For SSH URLs (ssh:// and
// scp-like git@host:path): SSHPrivateKey (PEM or OpenSSH format, not
// passphrase protected) and SSHKnownHosts (known_hosts lines) are both
// required; host key checking is never skipped.
type Auth struct {
	Username, Password string
	SSHPrivateKey      []byte
	SSHKnownHosts      []byte
}

// Limits bound what one call may cost. Zero means no limit.
type Limits struct {
	// MaxBytes bounds the bytes received by one Fetch (the packfile).
	MaxBytes int64
	// Timeout bounds one Resolve or Fetch.
	Timeout time.Duration
}

// Resolved is the commit a Ref points at.
type Resolved struct {
	// RefName is the full remote ref, e.g. "refs/heads/main" or
	// "refs/tags/v1.2.3"; "" for a Commit that no ref points at.
	RefName string
	// Commit is the 40-hex commit id (an annotated tag peeled).
	Commit string
}

// File is a regular file of a Snapshot.
type File struct {
	// Path is repository-relative, slash-separated, e.g. "apps/web/deploy.yaml".
	Path    string
	Content []byte
}

// Snapshot is the content of one commit under the paths asked for.
type Snapshot struct {
	// Commit is the id of the commit read. It differs from the Resolved
	// commit asked for only when the ref moved between Resolve and Fetch.
	Commit string
	// Message is the commit message, Author "Name <email>", Time the author time.
	Message string
	Author  string
	Time    time.Time
	// Files are the regular files under the paths, sorted by Path, each
	// once (symbolic links and submodules are left out).
	Files []File
}

// Client reads remote repositories. It holds no connection or cache and is
// safe for concurrent use.
type Client struct {
	limits Limits
}

// New returns a Client applying limits to every call.
func New(limits Limits) *Client {
	return &Client{limits: limits}
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
