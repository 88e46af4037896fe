package gitsource

import (
	"context"
	"fmt"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// ReleaseFiles lists the release files under dir (repository-relative,
// e.g. "releases") at this tree, sorted.
func (t *TreeFS) ReleaseFiles(dir string) ([]string, error) {
	if !t.IsDir("/" + dir) {
		return nil, nil
	}
	return v1alpha1.FindReleases(t, "/", dir)
}

// StatusFiles lists the status files under dir at this tree, sorted.
func (t *TreeFS) StatusFiles(dir string) ([]string, error) {
	if !t.IsDir("/" + dir) {
		return nil, nil
	}
	return v1alpha1.FindStatuses(t, "/", dir)
}

// TreeHash is the Git tree hash of a directory (repository-relative): the
// identity of its content, used as the render cache key. Zero if missing.
func (t *TreeFS) TreeHash(dir string) plumbing.Hash {
	n, err := t.resolve("/" + dir)
	if err != nil || n.tree == nil {
		return plumbing.ZeroHash
	}
	return n.tree.Hash
}

// Changed reports whether anything other than sluice's status files differs
// between the trees of two commits, so the agent's own commits (and a
// same-branch human's edits to status, which are not theirs to make) do not
// trigger work. A missing from commit counts as a change.
func (s *Source) Changed(ctx context.Context, from, to plumbing.Hash) (bool, error) {
	if from == to {
		return false, nil
	}
	if from.IsZero() {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.repo.CommitObject(from)
	if err != nil {
		return true, nil
	}
	b, err := s.repo.CommitObject(to)
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", to, err)
	}
	at, err := a.Tree()
	if err != nil {
		return true, nil
	}
	bt, err := b.Tree()
	if err != nil {
		return false, err
	}
	changes, err := object.DiffTreeWithOptions(ctx, at, bt, &object.DiffTreeOptions{})
	if err != nil {
		return false, err
	}
	for _, c := range changes {
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name != "" && path.Base(name) != v1alpha1.StatusFile {
				return true, nil
			}
		}
	}
	return false, nil
}
