package gitserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Repo is a bare repository of a Server and the work tree the helpers
// commit in and push from (straight to the bare repository, so the
// server's counters see only clients).
type Repo struct {
	Name string
	s    *Server
	bare string
	work string
	// commits gives each commit a distinct time: equal trees and messages
	// at the same second would give equal commit ids.
	commits int
}

// NewRepo creates the bare repository name (its URL is s.URL(name)) with
// one branch, "main", holding no commit yet. It serves commits no ref
// points at (uploadpack.allowReachableSHA1InWant), as GitHub does.
func (s *Server) NewRepo(t testing.TB, name string) *Repo {
	t.Helper()
	r := &Repo{Name: name, s: s, bare: filepath.Join(s.Root, name+".git"), work: t.TempDir()}
	r.git(t, s.Root, "init", "--quiet", "--bare", "--initial-branch=main", r.bare)
	r.git(t, r.bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
	r.git(t, r.work, "init", "--quiet", "--initial-branch=main")
	r.git(t, r.work, "remote", "add", "origin", r.bare)
	return r
}

// git runs git in dir with a clean configuration and a fixed identity.
func (r *Repo) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	date := "@" + strconv.Itoa(1767225600+r.commits) + " +0000"
	cmd.Env = append([]string{
		"GIT_AUTHOR_NAME=Vidra Test", "GIT_AUTHOR_EMAIL=test@vidra.invalid",
		"GIT_COMMITTER_NAME=Vidra Test", "GIT_COMMITTER_EMAIL=test@vidra.invalid",
		"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date,
	}, r.s.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gitserver: git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path -> content; the directories are created),
// removes the paths in remove (files or directories), commits on branch
// and pushes it; it returns the commit id. The branch is checked out
// first, created from the current commit when new.
func (r *Repo) Commit(t testing.TB, branch string, files map[string]string, remove []string, message string) string {
	t.Helper()
	r.checkout(t, branch)
	for p, content := range files {
		full := filepath.Join(r.work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range remove {
		r.git(t, r.work, "rm", "-r", "--quiet", "--", p)
	}
	r.git(t, r.work, "add", "--all")
	r.commits++
	r.git(t, r.work, "commit", "--quiet", "--allow-empty", "-m", message)
	r.git(t, r.work, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/"+branch)
	return r.Head(t, branch)
}

func (r *Repo) checkout(t testing.TB, branch string) {
	t.Helper()
	if r.git(t, r.work, "symbolic-ref", "--short", "HEAD") == branch {
		return
	}
	if r.git(t, r.work, "branch", "--list", branch) != "" {
		r.git(t, r.work, "checkout", "--quiet", branch)
		return
	}
	r.git(t, r.work, "checkout", "--quiet", "-b", branch)
}

// Head returns the commit branch points at in the bare repository.
func (r *Repo) Head(t testing.TB, branch string) string {
	t.Helper()
	return r.git(t, r.bare, "rev-parse", "refs/heads/"+branch)
}

// Tag creates tag name at commit in the bare repository, annotated (a tag
// object) when annotated.
func (r *Repo) Tag(t testing.TB, name, commit string, annotated bool) {
	t.Helper()
	if annotated {
		r.git(t, r.bare, "tag", "-a", "-m", "release "+name, name, commit)
		return
	}
	r.git(t, r.bare, "tag", name, commit)
}

// ForcePushUnrelated replaces branch with a new root commit holding the
// same tree as its tip (same content, unrelated history) and returns the
// new commit id.
func (r *Repo) ForcePushUnrelated(t testing.TB, branch, message string) string {
	t.Helper()
	tree := r.git(t, r.bare, "rev-parse", "refs/heads/"+branch+"^{tree}")
	r.commits++
	commit := r.git(t, r.bare, "commit-tree", tree, "-m", message)
	r.git(t, r.bare, "update-ref", "refs/heads/"+branch, commit)
	// The work tree follows, so later commits build on the new history.
	r.git(t, r.work, "fetch", "--quiet", "origin", "+refs/heads/"+branch+":refs/remotes/origin/"+branch)
	r.checkout(t, branch)
	r.git(t, r.work, "reset", "--quiet", "--hard", commit)
	return commit
}

// DeleteBranch removes branch from the bare repository.
func (r *Repo) DeleteBranch(t testing.TB, branch string) {
	t.Helper()
	r.git(t, r.bare, "update-ref", "-d", "refs/heads/"+branch)
}
