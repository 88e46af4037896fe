package gitsource

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/render"
)

// MaxFileSize bounds a file read from a Git tree.
const MaxFileSize = render.DefaultMaxFileSize

// TreeFS is a read-only filesys.FileSystem over the tree of one commit,
// rooted at "/". It reads Git objects directly: no work tree. Symlinks are
// followed inside the repository and refused when they leave it.
type TreeFS struct {
	root   *object.Tree
	commit plumbing.Hash
	// lock guards reads against a concurrent fetch into the same storage,
	// and against each other: go-git's object storage opens and closes
	// packfiles in a cache of its own that is not safe for concurrent use.
	lock sync.Locker
	// mu serialises walks of this tree: go-git builds a tree's entry index
	// on first use, and dirs keeps the directories already decoded (a
	// commit's tree never changes), so a thousand releases' lookups do not
	// decode the same parents a thousand times.
	mu   sync.Mutex
	dirs map[string]*object.Tree
}

var _ filesys.FileSystem = (*TreeFS)(nil)

// Tree returns the file system of commit h, which must have been fetched.
func (s *Source) Tree(h plumbing.Hash) (*TreeFS, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s tree: %w", h, err)
	}
	return &TreeFS{root: t, commit: h, lock: &s.mu, dirs: map[string]*object.Tree{}}, nil
}

// Commit is the commit whose tree this is.
func (t *TreeFS) Commit() plumbing.Hash { return t.commit }

// node is a resolved path: a directory or a file.
type node struct {
	path string // relative to the root, "" for the root
	tree *object.Tree
	file *object.File
}

// relPath turns an FS path into a path relative to the root, refusing
// paths that leave it.
func relPath(p string) (string, error) {
	p = filepath.ToSlash(p)
	c := path.Clean("/" + p)
	if !strings.HasPrefix(p, "/") && (p == ".." || strings.HasPrefix(path.Clean(p), "../")) {
		return "", fmt.Errorf("%s: %w", p, render.ErrOutsideRoot)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// resolve walks p component by component, following symlinks (at most 40
// hops) as long as they stay inside the repository.
func (t *TreeFS) resolve(p string) (*node, error) {
	t.lock.Lock()
	defer t.lock.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	rel, err := relPath(p)
	if err != nil {
		return nil, err
	}
	var parts []string
	if rel != "" {
		parts = strings.Split(rel, "/")
	}
	notExist := &fs.PathError{Op: "open", Path: "/" + rel, Err: fs.ErrNotExist}
	hops := 0
	cur, done := t.root, []string(nil)
	for i := 0; i < len(parts); i++ {
		e, err := cur.FindEntry(parts[i])
		if err != nil {
			return nil, notExist
		}
		here := path.Join(append(append([]string(nil), done...), parts[i])...)
		switch e.Mode {
		case filemode.Dir:
			sub, ok := t.dirs[here]
			if !ok {
				if sub, err = cur.Tree(parts[i]); err != nil {
					return nil, err
				}
				t.dirs[here] = sub
			}
			cur, done = sub, append(done, parts[i])
		case filemode.Symlink:
			if hops++; hops > 40 {
				return nil, fmt.Errorf("/%s: too many levels of symbolic links", rel)
			}
			f, err := cur.TreeEntryFile(e)
			if err != nil {
				return nil, err
			}
			target, err := f.Contents()
			if err != nil {
				return nil, err
			}
			next := path.Join(path.Join(done...), target)
			if path.IsAbs(target) || next == ".." || strings.HasPrefix(next, "../") {
				return nil, fmt.Errorf("/%s is a symlink to %s, which %w", here, target, render.ErrOutsideRoot)
			}
			// Start again from the root with the link replaced by its target.
			var rest []string
			if next != "." {
				rest = strings.Split(next, "/")
			}
			parts, i, cur, done = append(rest, parts[i+1:]...), -1, t.root, nil
		case filemode.Submodule:
			return nil, fmt.Errorf("/%s: a submodule, which sluice does not read", here)
		default:
			if i != len(parts)-1 {
				return nil, notExist
			}
			f, err := cur.TreeEntryFile(e)
			if err != nil {
				return nil, err
			}
			return &node{path: here, file: f}, nil
		}
	}
	return &node{path: path.Join(done...), tree: cur}, nil
}

// Create is refused: rendering never writes.
func (t *TreeFS) Create(string) (filesys.File, error) { return nil, render.ErrReadOnly }

// Mkdir is refused.
func (t *TreeFS) Mkdir(string) error { return render.ErrReadOnly }

// MkdirAll is refused.
func (t *TreeFS) MkdirAll(string) error { return render.ErrReadOnly }

// RemoveAll is refused.
func (t *TreeFS) RemoveAll(string) error { return render.ErrReadOnly }

// WriteFile is refused.
func (t *TreeFS) WriteFile(string, []byte) error { return render.ErrReadOnly }

// IsDir reports whether p is a directory in the tree.
func (t *TreeFS) IsDir(p string) bool {
	n, err := t.resolve(p)
	return err == nil && n.tree != nil
}

// Exists reports whether p is in the tree.
func (t *TreeFS) Exists(p string) bool {
	_, err := t.resolve(p)
	return err == nil
}

// ReadFile reads a file, up to MaxFileSize.
func (t *TreeFS) ReadFile(p string) ([]byte, error) {
	n, err := t.resolve(p)
	if err != nil {
		return nil, err
	}
	if n.file == nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("is a directory")}
	}
	if n.file.Size > MaxFileSize {
		return nil, fmt.Errorf("/%s: file is %d bytes, over the limit of %d", n.path, n.file.Size, MaxFileSize)
	}
	t.lock.Lock()
	defer t.lock.Unlock()
	r, err := n.file.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Open opens a file for reading.
func (t *TreeFS) Open(p string) (filesys.File, error) {
	data, err := t.ReadFile(p)
	if err != nil {
		return nil, err
	}
	rel, _ := relPath(p)
	return &memFile{Reader: bytes.NewReader(data), name: path.Base("/" + rel), size: int64(len(data))}, nil
}

// ReadDir lists the names in a directory, sorted.
func (t *TreeFS) ReadDir(p string) ([]string, error) {
	n, err := t.resolve(p)
	if err != nil {
		return nil, err
	}
	if n.tree == nil {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	names := make([]string, 0, len(n.tree.Entries))
	for _, e := range n.tree.Entries {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names, nil
}

// CleanedAbs splits p into an existing directory and a file name ("" when
// p is a directory), with symlinks resolved.
func (t *TreeFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	n, err := t.resolve(p)
	if err != nil {
		return "", "", err
	}
	if n.tree != nil {
		return filesys.ConfirmedDir("/" + n.path), "", nil
	}
	return filesys.ConfirmedDir(path.Dir("/" + n.path)), path.Base(n.path), nil
}

// Glob matches a pattern against the files in the pattern's directory.
func (t *TreeFS) Glob(pattern string) ([]string, error) {
	dir := path.Dir(filepath.ToSlash(pattern))
	names, err := t.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, n := range names {
		full := path.Join(dir, n)
		if ok, _ := path.Match(filepath.ToSlash(pattern), full); ok {
			out = append(out, full)
		}
	}
	return out, nil
}

// Walk walks the tree below p in lexical order.
func (t *TreeFS) Walk(p string, fn filepath.WalkFunc) error {
	n, err := t.resolve(p)
	if err != nil {
		return fn(p, nil, err)
	}
	return t.walk(path.Clean(p), n, fn)
}

func (t *TreeFS) walk(p string, n *node, fn filepath.WalkFunc) error {
	if n.file != nil {
		return fn(p, fileInfo{name: path.Base(p), size: n.file.Size}, nil)
	}
	if err := fn(p, fileInfo{name: path.Base(p), dir: true}, nil); err != nil {
		if err == filepath.SkipDir {
			return nil
		}
		return err
	}
	names, err := t.ReadDir(p)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := path.Join(p, name)
		cn, err := t.resolve(child)
		if err != nil {
			if ferr := fn(child, nil, err); ferr != nil && ferr != filepath.SkipDir {
				return ferr
			}
			continue
		}
		if err := t.walk(child, cn, fn); err != nil {
			return err
		}
	}
	return nil
}

// memFile is an open file of a TreeFS.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Close() error               { return nil }
func (f *memFile) Write([]byte) (int, error)  { return 0, render.ErrReadOnly }
func (f *memFile) Stat() (os.FileInfo, error) { return fileInfo{name: f.name, size: f.size}, nil }

type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (i fileInfo) Name() string { return i.name }
func (i fileInfo) Size() int64  { return i.size }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }

// LocalTree is the file system of revision rev (a commit id, or anything
// git rev-parse accepts that go-git resolves) in the local clone at dir,
// read from Git objects, not the work tree: the CLI renders a release as
// it was at its stable revision with it, exactly as the agent does.
func LocalTree(dir, rev string) (*TreeFS, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev, err)
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s tree: %w", h, err)
	}
	var mu sync.RWMutex
	return &TreeFS{root: t, commit: *h, lock: mu.RLocker(), dirs: map[string]*object.Tree{}}, nil
}
