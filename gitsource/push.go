package gitsource

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// pushChain sends the commits from base (exclusive; zero for a new branch)
// to commit as refs/heads/branch, never forcing. It packs exactly the
// objects those commits added, found by comparing each commit's tree with
// its parent's, where go-git's push walks every commit and tree reachable
// from the remote's refs to find out what the remote lacks: with the
// agent's status branch growing by a commit per transition, that walk made
// every push slower than the one before (a fleet of 1,000 releases
// installed at 6 a second). A remote head other than base is a rejection.
func (s *Source) pushChain(ctx context.Context, branch string, base, commit plumbing.Hash) error {
	return s.pushFrom(ctx, branch, base, base, commit)
}

// pushFrom is pushChain for a branch expected at base (zero: absent) whose
// new commits sit on have, a commit the remote already holds: only the
// objects after have are sent.
func (s *Source) pushFrom(ctx context.Context, branch string, base, have, commit plumbing.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := plumbing.NewBranchReferenceName(branch)
	hashes, err := s.newObjects(have, commit)
	if err != nil {
		return err
	}
	ep, err := transport.NewEndpoint(s.url)
	if err != nil {
		return s.wrap("push "+branch, err)
	}
	c, err := client.NewClient(ep)
	if err != nil {
		return s.wrap("push "+branch, err)
	}
	sess, err := c.NewReceivePackSession(ep, s.auth)
	if err != nil {
		return s.wrap("push "+branch, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return s.wrap("push "+branch, err)
	}
	remote := ar.References[ref.String()]
	if remote != base {
		return fmt.Errorf("%w: push %s to %s: the remote is at %s, not %s", ErrRejected, branch, s.URL(), short(remote), short(base))
	}
	var pack bytes.Buffer
	enc := packfile.NewEncoder(&pack, s.repo.Storer, !ar.Capabilities.Supports(capability.OFSDelta))
	if _, err := enc.Encode(hashes, 10); err != nil {
		return fmt.Errorf("push %s: packing %d objects: %w", branch, len(hashes), err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: base, New: commit}}
	req.Packfile = io.NopCloser(&pack)
	rs, err := sess.ReceivePack(ctx, req)
	if err == nil && rs != nil {
		err = rs.Error()
	}
	if err != nil {
		if isRejected(err) {
			return fmt.Errorf("%w: %v", ErrRejected, s.wrap("push "+branch, err))
		}
		return s.wrap("push "+branch, err)
	}
	// The remote-tracking ref follows, so the next fetch is incremental.
	return s.repo.Storer.SetReference(plumbing.NewHashReference(remoteRef(branch), commit))
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing"
	}
	return h.String()[:7]
}

// newObjects lists the commits from commit back to base (first parents)
// with the trees and blobs each added to its parent's tree. s.mu is held.
func (s *Source) newObjects(base, commit plumbing.Hash) ([]plumbing.Hash, error) {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	add := func(h plumbing.Hash) bool {
		if seen[h] {
			return false
		}
		seen[h] = true
		out = append(out, h)
		return true
	}
	for h := commit; h != base; {
		c, err := s.repo.CommitObject(h)
		if err != nil {
			return nil, err
		}
		add(c.Hash)
		tree, err := c.Tree()
		if err != nil {
			return nil, err
		}
		var parentTree *object.Tree
		if len(c.ParentHashes) > 0 {
			p, err := s.repo.CommitObject(c.ParentHashes[0])
			if err != nil {
				return nil, err
			}
			if parentTree, err = p.Tree(); err != nil {
				return nil, err
			}
		} else if !base.IsZero() {
			return nil, fmt.Errorf("commit %s: the chain does not reach %s", c.Hash, base)
		}
		if err := s.treeAdded(tree, parentTree, add); err != nil {
			return nil, err
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, nil
}

// treeAdded calls add for tree and every entry below it that old (nil: an
// empty tree) does not have at the same path.
func (s *Source) treeAdded(tree, old *object.Tree, add func(plumbing.Hash) bool) error {
	if old != nil && tree.Hash == old.Hash {
		return nil
	}
	if !add(tree.Hash) {
		return nil
	}
	prev := map[string]object.TreeEntry{}
	if old != nil {
		for _, e := range old.Entries {
			prev[e.Name] = e
		}
	}
	for _, e := range tree.Entries {
		p, ok := prev[e.Name]
		if ok && p.Hash == e.Hash {
			continue
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(s.repo.Storer, e.Hash)
			if err != nil {
				return err
			}
			var oldSub *object.Tree
			if ok && p.Mode == filemode.Dir {
				if oldSub, err = object.GetTree(s.repo.Storer, p.Hash); err != nil {
					return err
				}
			}
			if err := s.treeAdded(sub, oldSub, add); err != nil {
				return err
			}
		case filemode.Submodule:
			// A gitlink names a commit of another repository: nothing to send.
		default:
			add(e.Hash)
		}
	}
	return nil
}
