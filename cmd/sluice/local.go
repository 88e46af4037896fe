package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// localRepo is a repository on disk that the read-only verbs look at.
type localRepo struct {
	fs  *render.DiskFS
	cwd string
}

// openLocal finds the repository holding p: the nearest directory above it
// with a .git entry, or p itself (its directory, for a file) when there is
// none.
func openLocal(p string) (*localRepo, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	start := abs
	if !st.IsDir() {
		start = filepath.Dir(abs)
	}
	root := start
	for d := start; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			root = d
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	fs, err := render.NewDiskFS(root)
	if err != nil {
		return nil, err
	}
	cwd, _ := os.Getwd()
	return &localRepo{fs: fs, cwd: cwd}, nil
}

// rel turns a path on disk into a repository-relative slash path.
func (l *localRepo) rel(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	r, err := filepath.Rel(l.fs.Root(), abs)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(r), nil
}

// display rewrites the files named by located errors relative to the
// working directory, so they can be opened from where the user stands.
func (l *localRepo) display(err error) error {
	var list v1alpha1.ErrorList
	if l.fs == nil || !errors.As(err, &list) {
		return err
	}
	for _, e := range list {
		abs := filepath.Join(l.fs.Root(), filepath.FromSlash(e.File))
		if r, rerr := filepath.Rel(l.cwd, abs); rerr == nil {
			e.File = r
		}
	}
	return list
}

// displayPath is a repository-relative path as seen from the working
// directory.
func (l *localRepo) displayPath(p string) string {
	if r, err := filepath.Rel(l.cwd, filepath.Join(l.fs.Root(), filepath.FromSlash(p))); err == nil {
		return r
	}
	return p
}

// loadReleaseArg parses and renders the release a path argument names: a
// release directory or a release file. The repository is returned even on
// error (when found) so errors can be shown relative to it.
func loadReleaseArg(ctx context.Context, arg string, r *render.Renderer) (*localRepo, *v1alpha1.Parsed, *render.Result, error) {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		arg = filepath.Join(arg, v1alpha1.ReleaseFile)
	}
	repo, err := openLocal(arg)
	if err != nil {
		return &localRepo{}, nil, nil, err
	}
	rel, err := repo.rel(arg)
	if err != nil {
		return repo, nil, nil, err
	}
	p, res, err := r.Load(ctx, repo.fs, repo.fs.Root(), rel, "")
	return repo, p, res, err
}
