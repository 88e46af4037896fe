package gitsource

import (
	"context"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Watch reports changes to a local repository's refs (a commit, a push
// into it, a branch created) on the returned channel, coalesced, until ctx
// ends. For a remote URL it returns nil: poll instead. The caller keeps
// polling on its interval too, as a fallback for missed events.
func (s *Source) Watch(ctx context.Context) (<-chan struct{}, error) {
	dir := s.LocalPath()
	if dir == "" {
		return nil, nil
	}
	gitDir := filepath.Join(dir, ".git")
	if st, err := os.Stat(gitDir); err != nil || !st.IsDir() {
		gitDir = dir // a bare repository
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	add := func(p string) {
		_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = w.Add(path)
			}
			return nil
		})
	}
	_ = w.Add(gitDir) // packed-refs, HEAD
	add(filepath.Join(gitDir, "refs", "heads"))
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
						add(ev.Name) // a new branch namespace such as refs/heads/sluice
					}
				}
				select {
				case out <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return out, nil
}
