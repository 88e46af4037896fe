package gitsource

import (
	"context"
	"errors"
	"fmt"

	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"k8s.io/apimachinery/pkg/util/wait"
)

// FileChange writes Data at Path (repository-relative), or deletes the
// file when Data is nil.
type FileChange struct {
	Path string
	Data []byte
}

// CommitSpec is one commit to make: its full message and its files.
type CommitSpec struct {
	Message string
	Files   []FileChange
}

// Recompute decides the commit to make on top of the branch's current head
// (zero when the branch does not exist yet, with a nil tree). It returns
// nil when there is nothing to write any more. It is called again after
// every rejected push, with the new head.
type Recompute func(ctx context.Context, head plumbing.Hash, tree *TreeFS) (*CommitSpec, error)

// WriteResult says what Write did.
type WriteResult struct {
	// Commit is the pushed commit; zero when nothing was written.
	Commit plumbing.Hash
	// Attempts counts the pushes tried (1 when the first landed).
	Attempts int
	// Rejections counts the pushes the remote refused as not fast-forward.
	Rejections int
}

// MaxWriteAttempts bounds the pushes of one Write.
const MaxWriteAttempts = 30

// ErrRejected is the class of push errors that mean "the branch moved":
// fetch, recompute, retry.
var ErrRejected = errors.New("push rejected: the branch moved")

// Write commits on top of branch's remote head and pushes, never forcing.
// When the remote refuses the push because the branch moved (another agent,
// or people in same-branch mode), it fetches the new head, calls recompute
// again and retries with bounded, jittered exponential backoff. A commit
// whose tree equals its parent's is not made.
func (s *Source) Write(ctx context.Context, branch string, recompute Recompute) (WriteResult, error) {
	return s.WriteChain(ctx, branch, func(ctx context.Context, head plumbing.Hash, tree *TreeFS) ([]*CommitSpec, error) {
		spec, err := recompute(ctx, head, tree)
		if spec == nil || err != nil {
			return nil, err
		}
		return []*CommitSpec{spec}, nil
	})
}

// RecomputeChain is Recompute for a chain of commits.
type RecomputeChain func(ctx context.Context, head plumbing.Hash, tree *TreeFS) ([]*CommitSpec, error)

// WriteChain is Write for several commits made one on top of the other and
// pushed together: each keeps its own message and trailers, and the remote
// is asked once. Commits that would not change the tree are left out.
// Commit is the chain's last commit.
func (s *Source) WriteChain(ctx context.Context, branch string, recompute RecomputeChain) (WriteResult, error) {
	return s.writeChain(ctx, branch, plumbing.ZeroHash, recompute)
}

// WriteFrom is Write to a branch that, when it does not exist yet, starts
// at from (a commit of another branch, e.g. the spec head: a branch for a
// pull request); when it exists, the commit goes on top of it.
func (s *Source) WriteFrom(ctx context.Context, branch string, from plumbing.Hash, recompute Recompute) (WriteResult, error) {
	return s.writeChain(ctx, branch, from, func(ctx context.Context, head plumbing.Hash, tree *TreeFS) ([]*CommitSpec, error) {
		spec, err := recompute(ctx, head, tree)
		if spec == nil || err != nil {
			return nil, err
		}
		return []*CommitSpec{spec}, nil
	})
}

func (s *Source) writeChain(ctx context.Context, branch string, from plumbing.Hash, recompute RecomputeChain) (WriteResult, error) {
	var res WriteResult
	backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Jitter: 1, Cap: 2 * time.Second, Steps: MaxWriteAttempts}
	for res.Attempts < MaxWriteAttempts {
		// Fetch the branch straight away (no separate ls-remote): the less
		// time between learning the head and pushing on top of it, the
		// fewer rejections when people push at the same time. The status
		// branch of its own is the agent's: the first attempt builds on the
		// head it last fetched or pushed, and only a rejection (another
		// replica wrote) costs a fetch.
		head, known := s.knownStatusHead(branch, res.Attempts)
		if !known {
			var err error
			if head, err = s.fetchHead(ctx, branch); err != nil {
				return res, err
			}
		}
		// A new branch starts at from, which the remote already has.
		parent := head
		if head.IsZero() {
			parent = from
		}
		var tree *TreeFS
		var err error
		if !parent.IsZero() {
			if tree, err = s.Tree(parent); err != nil {
				return res, err
			}
		}
		specs, err := recompute(ctx, parent, tree)
		if err != nil || len(specs) == 0 {
			return res, err
		}
		commit := parent
		ov := newOverlay(s.repo.Storer)
		for _, spec := range specs {
			c, err := s.makeCommit(ov, commit, spec)
			if err != nil {
				return res, err
			}
			if !c.IsZero() {
				commit = c
			}
		}
		if commit == parent {
			return res, nil // the tree would not change
		}
		s.mu.Lock()
		err = ov.flush()
		s.mu.Unlock()
		if err != nil {
			return res, err
		}
		res.Attempts++
		err = s.pushFrom(ctx, branch, head, parent, commit)
		if err == nil {
			res.Commit = commit
			return res, nil
		}
		if !errors.Is(err, ErrRejected) {
			return res, err
		}
		res.Rejections++
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(backoff.Step()):
		}
	}
	return res, fmt.Errorf("git push %s to %s: gave up after %d rejected attempts: %w", branch, s.URL(), res.Attempts, ErrRejected)
}

// knownStatusHead returns the remote-tracking head of the agent's own
// status branch for a first attempt, when there is one.
func (s *Source) knownStatusHead(branch string, attempts int) (plumbing.Hash, bool) {
	if attempts > 0 || s.SameBranch() || branch != s.opts.StatusBranch {
		return plumbing.ZeroHash, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := s.repo.Storer.Reference(remoteRef(branch))
	if err != nil || ref.Hash().IsZero() {
		return plumbing.ZeroHash, false
	}
	if _, err := s.repo.CommitObject(ref.Hash()); err != nil {
		return plumbing.ZeroHash, false
	}
	return ref.Hash(), true
}

// fetchHead fetches branch (depth 1) and returns its head, or zero when the
// remote has no such branch.
func (s *Source) fetchHead(ctx context.Context, branch string) (plumbing.Hash, error) {
	h, err := s.Fetch(ctx, branch, plumbing.ZeroHash)
	if err == nil {
		return h, nil
	}
	var noRef git.NoMatchingRefSpecError
	if errors.As(err, &noRef) || errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	return plumbing.ZeroHash, err
}

// makeCommit writes the tree and commit objects for spec on top of parent
// (an orphan commit when parent is zero) into st. It returns zero when the
// tree would not change.
func (s *Source) makeCommit(st storer.EncodedObjectStorer, parent plumbing.Hash, spec *CommitSpec) (plumbing.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var base *object.Tree
	var parents []plumbing.Hash
	if !parent.IsZero() {
		c, err := object.GetCommit(st, parent)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if base, err = c.Tree(); err != nil {
			return plumbing.ZeroHash, err
		}
		parents = []plumbing.Hash{parent}
	}
	changes := map[string][]byte{}
	deletes := map[string]bool{}
	for _, f := range spec.Files {
		p := strings.Trim(path.Clean("/"+f.Path), "/")
		if p == "" || strings.HasPrefix(p, "..") {
			return plumbing.ZeroHash, fmt.Errorf("commit: invalid path %q", f.Path)
		}
		if f.Data == nil {
			deletes[p] = true
		} else {
			changes[p] = f.Data
		}
	}
	newTree, err := writeTree(st, base, "", changes, deletes)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if base != nil && newTree == base.Hash {
		return plumbing.ZeroHash, nil
	}
	now := time.Now()
	sig := object.Signature{Name: s.opts.AuthorName, Email: s.opts.AuthorEmail, When: now}
	c := &object.Commit{Author: sig, Committer: sig, Message: spec.Message, TreeHash: newTree, ParentHashes: parents}
	if s.signer != nil {
		if err := s.signer.signCommit(c); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// writeTree builds the tree at prefix from base with the changes applied,
// writing new tree and blob objects; it returns the new tree's hash, or
// zero for a tree left empty.
func writeTree(st storer.EncodedObjectStorer, base *object.Tree, prefix string, changes map[string][]byte, deletes map[string]bool) (plumbing.Hash, error) {
	entries := map[string]object.TreeEntry{}
	if base != nil {
		for _, e := range base.Entries {
			entries[e.Name] = e
		}
	}
	// Group the changes below this prefix by their first component.
	subs := map[string]bool{}
	for _, set := range []map[string]bool{keys(changes), deletes} {
		for p := range set {
			rest, ok := strings.CutPrefix(p, prefix)
			if !ok {
				continue
			}
			if i := strings.Index(rest, "/"); i >= 0 {
				subs[rest[:i]] = true
			}
		}
	}
	for name := range subs {
		var sub *object.Tree
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir && base != nil {
			t, err := base.Tree(name)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			sub = t
		}
		h, err := writeTree(st, sub, prefix+name+"/", changes, deletes)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			delete(entries, name)
		} else {
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	for p, data := range changes {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || strings.Contains(rest, "/") {
			continue
		}
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := w.Write(data); err != nil {
			return plumbing.ZeroHash, err
		}
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[rest] = object.TreeEntry{Name: rest, Mode: filemode.Regular, Hash: h}
	}
	for p := range deletes {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.Contains(rest, "/") {
			delete(entries, rest)
		}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	t := &object.Tree{}
	for _, e := range entries {
		t.Entries = append(t.Entries, e)
	}
	// Git orders tree entries by name, directories as if they ended in "/".
	sort.Slice(t.Entries, func(i, j int) bool { return sortName(t.Entries[i]) < sortName(t.Entries[j]) })
	obj := st.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func sortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

func keys(m map[string][]byte) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// isRejected is the one predicate that reads a push error as "the branch
// moved under us": go-git's local fast-forward check, or the server's
// refusal to update the ref.
func isRejected(err error) bool {
	if errors.Is(err, git.ErrForceNeeded) || errors.Is(err, plumbing.ErrObjectNotFound) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "stale info", "object not found", "reference has changed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
