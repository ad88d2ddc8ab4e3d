package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fetchedRef is where a Fetch stores the commit it asked for.
const fetchedRef = plumbing.ReferenceName("refs/heads/vidra-fetched")

// Fetch reads one commit, shallowly (depth 1, no tags), into memory and
// returns the regular files under paths: repository-relative directories
// or files ("" or "." is the whole tree). A path that is not in the commit
// gives ErrPathNotFound naming it. It asks for resolved.RefName when set
// (any remote serves a ref), else for the commit itself, which the remote
// must allow (GitHub, GitLab and Gitea do; git needs
// uploadpack.allowReachableSHA1InWant).
func (c *Client) Fetch(ctx context.Context, rawURL string, auth Auth, resolved Resolved, paths []string) (*Snapshot, error) {
	if !isFullHash(resolved.Commit) {
		return nil, fmt.Errorf("%w: commit %q is not a full 40-hex commit id", ErrInvalid, resolved.Commit)
	}
	cleaned, err := cleanPaths(paths)
	if err != nil {
		return nil, err
	}
	k, err := c.newCall("fetch", rawURL, auth)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := c.withTimeout(ctx)
	defer cancel()

	store := &limitedStorage{Storage: memory.NewStorage(), limit: c.limits.MaxBytes}
	remote := git.NewRemote(store, &config.RemoteConfig{Name: "origin", URLs: []string{k.remote.url}})
	src := resolved.RefName
	if src == "" {
		src = strings.ToLower(resolved.Commit)
	}
	err = remote.FetchContext(callCtx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + src + ":" + fetchedRef.String())},
		Depth:    1,
		Auth:     k.auth,
		Tags:     git.NoTags,
	})
	if err != nil && err != git.NoErrAlreadyUpToDate {
		return nil, k.classify(callCtx, ctx, c.limits, err)
	}

	commit, err := fetchedCommit(store)
	if err != nil {
		return nil, k.fail(ErrUnreachable, "read the fetched commit: "+err.Error())
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, k.fail(ErrUnreachable, "read the fetched tree: "+err.Error())
	}
	files, err := filesUnder(tree, cleaned)
	if err != nil {
		return nil, k.fail(ErrPathNotFound, fmt.Sprintf("%v in commit %s", err, commit.Hash))
	}
	return &Snapshot{
		Commit:  commit.Hash.String(),
		Message: commit.Message,
		Author:  fmt.Sprintf("%s <%s>", commit.Author.Name, commit.Author.Email),
		Time:    commit.Author.When,
		Files:   files,
	}, nil
}

// fetchedCommit returns the commit fetchedRef points at, through an
// annotated tag if it is one.
func fetchedCommit(store *limitedStorage) (*object.Commit, error) {
	ref, err := store.Reference(fetchedRef)
	if err != nil {
		return nil, err
	}
	hash := ref.Hash()
	if tag, err := object.GetTag(store, hash); err == nil {
		c, err := tag.Commit()
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag.Name, err)
		}
		return c, nil
	}
	return object.GetCommit(store, hash)
}

// cleanPaths makes paths repository-relative and slash-separated; "" and
// "." stand for the whole tree; ".." is refused.
func cleanPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return []string{""}, nil
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		for _, segment := range strings.Split(p, "/") {
			if segment == ".." {
				return nil, fmt.Errorf("%w: path %q leaves the repository", ErrInvalid, p)
			}
		}
		c := path.Clean("/" + strings.TrimSpace(p))
		out = append(out, strings.TrimPrefix(c, "/"))
	}
	return out, nil
}

// filesUnder returns the regular files under each path, sorted, each once.
func filesUnder(tree *object.Tree, paths []string) ([]File, error) {
	seen := map[string]bool{}
	var files []File
	add := func(name string, f *object.File) error {
		if seen[name] || !f.Mode.IsFile() || f.Mode == filemode.Symlink {
			return nil
		}
		seen[name] = true
		content, err := readBlob(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		files = append(files, File{Path: name, Content: content})
		return nil
	}
	for _, p := range paths {
		dir := tree
		if p != "" {
			entry, err := tree.FindEntry(p)
			if err != nil {
				return nil, fmt.Errorf("path %q not found", p)
			}
			if entry.Mode != filemode.Dir {
				f, err := tree.File(p)
				if err != nil {
					// A submodule or a symbolic link: not a regular file.
					return nil, fmt.Errorf("path %q is not a regular file or a directory", p)
				}
				if err := add(p, f); err != nil {
					return nil, err
				}
				continue
			}
			if dir, err = tree.Tree(p); err != nil {
				return nil, fmt.Errorf("path %q: %v", p, err)
			}
		}
		prefix := ""
		if p != "" {
			prefix = p + "/"
		}
		err := dir.Files().ForEach(func(f *object.File) error {
			return add(prefix+f.Name, f)
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func readBlob(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// limitedStorage is go-git's memory storage that receives the packfile
// itself (storer.PackfileWriter) to count its bytes: the fetch stops with
// a tooLargeError once it exceeds limit (0: no limit), whatever the
// transport.
type limitedStorage struct {
	*memory.Storage
	limit int64
}

type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the packfile exceeds %d bytes", e.limit)
}

// PackfileWriter implements storer.PackfileWriter.
func (s *limitedStorage) PackfileWriter() (io.WriteCloser, error) {
	return &packWriter{store: s}, nil
}

type packWriter struct {
	store    *limitedStorage
	buf      bytes.Buffer
	tooLarge bool
}

func (w *packWriter) Write(p []byte) (int, error) {
	if limit := w.store.limit; limit > 0 && int64(w.buf.Len()+len(p)) > limit {
		w.tooLarge = true
		return 0, &tooLargeError{limit: limit}
	}
	return w.buf.Write(p)
}

// Close parses the received packfile into the memory storage.
func (w *packWriter) Close() error {
	if w.buf.Len() == 0 || w.tooLarge {
		return nil
	}
	parser, err := packfile.NewParserWithStorage(packfile.NewScanner(bytes.NewReader(w.buf.Bytes())), w.store.Storage)
	if err != nil {
		return err
	}
	_, err = parser.Parse()
	w.buf = bytes.Buffer{}
	return err
}
