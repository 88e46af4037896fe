package gitsource

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Heads are the remote's spec and status branch heads; a zero hash means
// the branch does not exist.
type Heads struct {
	Spec   plumbing.Hash
	Status plumbing.Hash
}

// Heads asks the remote where both branches point with one ls-remote. No
// pack is downloaded: this is the cheap check of every poll.
func (s *Source) Heads(ctx context.Context) (Heads, error) {
	s.mu.Lock()
	remote, err := s.repo.Remote(remoteName)
	s.mu.Unlock()
	if err != nil {
		return Heads{}, err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth, PeelingOption: git.IgnorePeeled})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return Heads{}, nil
	}
	if err != nil {
		return Heads{}, s.wrap("ls-remote", err)
	}
	var h Heads
	spec, status := plumbing.NewBranchReferenceName(s.opts.Branch), plumbing.NewBranchReferenceName(s.opts.StatusBranch)
	for _, r := range refs {
		switch r.Name() {
		case spec:
			h.Spec = r.Hash()
		case status:
			h.Status = r.Hash()
		}
	}
	return h, nil
}

// Has reports whether the commit is in the local repository.
func (s *Source) Has(h plumbing.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.repo.CommitObject(h)
	return err == nil
}

// Fetch makes the head of branch available locally: depth 1, no tags,
// incremental when possible. want, when not zero, is the commit an earlier
// ls-remote saw; if it is already here nothing is fetched. A shallow fetch
// error (objects missing after a force-push or a rewritten history) throws
// the local repository away and fetches afresh. It returns the fetched head.
func (s *Source) Fetch(ctx context.Context, branch string, want plumbing.Hash) (plumbing.Hash, error) {
	if !want.IsZero() && s.Has(want) {
		return want, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.fetch(ctx, branch, 1)
	if err != nil && isShallowError(err) {
		if rerr := s.reset(); rerr != nil {
			return plumbing.ZeroHash, rerr
		}
		h, err = s.fetch(ctx, branch, 1)
	}
	return h, err
}

func remoteRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, branch)
}

// fetch runs one fetch of branch at depth (0: full history). s.mu is held.
func (s *Source) fetch(ctx context.Context, branch string, depth int) (plumbing.Hash, error) {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, remoteRef(branch)))
	err := s.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Depth:      depth,
		Tags:       git.NoTags,
		Auth:       s.auth,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, s.wrap("fetch "+branch, err)
	}
	ref, err := s.repo.Reference(remoteRef(branch), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("git fetch %s: branch %s not found after fetch: %w", s.URL(), branch, err)
	}
	return ref.Hash(), nil
}

// isShallowError is the one place that recognises the errors a shallow
// repository gives when the objects it expects are gone.
func isShallowError(err error) bool {
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "object not found") || strings.Contains(msg, "shallow")
}

// FetchCommit makes an older commit of branch available (the stable
// revision, say) by deepening the shallow history step by step: 20, 200,
// then all of it. It does nothing when the commit is already here.
func (s *Source) FetchCommit(ctx context.Context, branch string, h plumbing.Hash) error {
	if s.Has(h) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, depth := range []int{20, 200, 0} {
		if _, err := s.fetch(ctx, branch, depth); err != nil {
			return err
		}
		if _, err := s.repo.CommitObject(h); err == nil {
			return nil
		}
	}
	return fmt.Errorf("git fetch %s: commit %s is not in the history of %s", s.URL(), h, branch)
}

// rewriteDepth bounds how far back Rewritten looks for the old head.
const rewriteDepth = 50

// Rewritten reports whether the branch moved from old to new other than
// forward: old is not among new's last rewriteDepth ancestors (a
// force-push, or an unrelated history pushed over the branch). A zero old
// or old == new is not a rewrite. It fetches more history only when the
// commits it needs are not on disk yet (a push of several commits).
func (s *Source) Rewritten(ctx context.Context, branch string, old, new plumbing.Hash) (bool, error) {
	if old.IsZero() || old == new {
		return false, nil
	}
	found, complete := s.reaches(new, old)
	if found {
		return false, nil
	}
	if !complete {
		s.mu.Lock()
		_, err := s.fetch(ctx, branch, rewriteDepth)
		s.mu.Unlock()
		if err != nil {
			return false, err
		}
		found, _ = s.reaches(new, old)
	}
	return !found, nil
}

// reaches walks the first rewriteDepth commits behind from (breadth first)
// looking for target; complete is false when a commit it needed is not on
// disk.
func (s *Source) reaches(from, target plumbing.Hash) (found, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[plumbing.Hash]bool{from: true}
	queue := []plumbing.Hash{from}
	for n := 0; len(queue) > 0 && n < rewriteDepth; n++ {
		h := queue[0]
		queue = queue[1:]
		if h == target {
			return true, true
		}
		c, err := s.repo.CommitObject(h)
		if err != nil {
			return false, false
		}
		for _, p := range c.ParentHashes {
			if p == target {
				return true, true
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, true
}
