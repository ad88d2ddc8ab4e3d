package gitserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests drive the server with the git command line, so the server is
// checked independently of the Go client the operator uses.

func gitCLI(t *testing.T, s *Server, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestCountersAndRepoHelpers(t *testing.T) {
	s := New(t, Options{})
	repo := s.NewRepo(t, "demo")
	first := repo.Commit(t, "main", map[string]string{"a/x.yaml": "x", "b/y.yaml": "y"}, nil, "first")

	out, err := gitCLI(t, s, t.TempDir(), "ls-remote", s.URL("demo"))
	if err != nil || !strings.Contains(out, first+"\trefs/heads/main") {
		t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	if a, f := s.Advertisements(), s.Fetches(); a != 1 || f != 0 {
		t.Fatalf("after ls-remote: %d advertisements, %d fetches; want 1, 0", a, f)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := gitCLI(t, s, t.TempDir(), "clone", "--quiet", "--depth=1", s.URL("demo"), clone); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if f := s.Fetches(); f != 1 {
		t.Fatalf("after clone: %d fetches, want 1", f)
	}
	if b, err := os.ReadFile(filepath.Join(clone, "b", "y.yaml")); err != nil || string(b) != "y" {
		t.Fatalf("cloned b/y.yaml = %q, %v", b, err)
	}

	second := repo.Commit(t, "main", map[string]string{"a/x.yaml": "x2"}, []string{"b"}, "second")
	if second == first || repo.Head(t, "main") != second {
		t.Fatalf("second commit %s, head %s", second, repo.Head(t, "main"))
	}
	tree := func(rev string) string {
		out, err := gitCLI(t, s, repo.bare, "ls-tree", "-r", "--name-only", rev)
		if err != nil {
			t.Fatalf("ls-tree %s: %v\n%s", rev, err, out)
		}
		return out
	}
	if got := tree(second); got != "a/x.yaml" {
		t.Fatalf("tree after deleting b = %q", got)
	}
	unrelated := repo.ForcePushUnrelated(t, "main", "rewritten")
	treeID := func(rev string) string {
		out, _ := gitCLI(t, s, repo.bare, "rev-parse", rev+"^{tree}")
		return out
	}
	if unrelated == second || treeID(unrelated) != treeID(second) {
		t.Fatalf("force-push: commit %s (was %s), tree %s (was %s)", unrelated, second, treeID(unrelated), treeID(second))
	}
	if out, err := gitCLI(t, s, repo.bare, "merge-base", unrelated, second); err == nil {
		t.Fatalf("the force-pushed commit shares history: merge-base %s", out)
	}
	third := repo.Commit(t, "main", map[string]string{"c/z.yaml": "z"}, nil, "third")
	if out, _ := gitCLI(t, s, repo.bare, "rev-parse", third+"^"); out != unrelated {
		t.Fatalf("a commit after the force-push has parent %s, want %s", out, unrelated)
	}
	repo.Tag(t, "v1.0.0", third, true)
	if out, _ := gitCLI(t, s, repo.bare, "cat-file", "-t", "v1.0.0"); out != "tag" {
		t.Fatalf("annotated tag is a %q", out)
	}
}

func TestModesAndAuth(t *testing.T) {
	s := New(t, Options{Username: "u", Password: "p4ss"})
	repo := s.NewRepo(t, "demo")
	repo.Commit(t, "main", map[string]string{"x": "x"}, nil, "first")
	withAuth := strings.Replace(s.URL("demo"), "http://", "http://u:p4ss@", 1)
	wrong := strings.Replace(s.URL("demo"), "http://", "http://u:nope@", 1)
	dir := t.TempDir()

	if out, err := gitCLI(t, s, dir, "ls-remote", withAuth); err != nil {
		t.Fatalf("ls-remote with the password: %v\n%s", err, out)
	}
	if out, err := gitCLI(t, s, dir, "ls-remote", wrong); err == nil || !strings.Contains(out, "Authentication failed") {
		t.Fatalf("ls-remote with a wrong password: %v\n%s", err, out)
	}
	s.SetMode(Unauthorized)
	if out, err := gitCLI(t, s, dir, "ls-remote", withAuth); err == nil {
		t.Fatalf("ls-remote while unauthorized succeeded:\n%s", out)
	}
	s.SetMode(Unreachable)
	if out, err := gitCLI(t, s, dir, "ls-remote", withAuth); err == nil {
		t.Fatalf("ls-remote while unreachable succeeded:\n%s", out)
	}
	s.SetMode(Normal)
	if out, err := gitCLI(t, s, dir, "ls-remote", withAuth); err != nil {
		t.Fatalf("ls-remote once normal again: %v\n%s", err, out)
	}
	// Pushing through the server is refused: only the helpers write.
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := gitCLI(t, s, dir, "clone", "--quiet", withAuth, clone); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if out, err := gitCLI(t, s, clone, "push", "origin", "HEAD:refs/heads/other"); err == nil {
		t.Fatalf("push through the server succeeded:\n%s", out)
	}
}
