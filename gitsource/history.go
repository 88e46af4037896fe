package gitsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Trailer is one "Key: value" line at the end of a commit message.
type Trailer struct {
	Key, Value string
}

// FormatMessage builds a commit message: subject, optional body, trailers.
func FormatMessage(subject, body string, trailers []Trailer) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(subject))
	b.WriteString("\n\n")
	if body = strings.TrimSpace(body); body != "" {
		b.WriteString(body)
		b.WriteString("\n\n")
	}
	for _, t := range trailers {
		fmt.Fprintf(&b, "%s: %s\n", t.Key, strings.ReplaceAll(t.Value, "\n", " "))
	}
	return b.String()
}

// ParseTrailers reads the trailers of a commit message: the "Key: value"
// lines of its last paragraph.
func ParseTrailers(msg string) map[string]string {
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	if len(paras) < 2 {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil // not a trailer block
		}
		out[k] = v
	}
	return out
}

// HistoryEntry is one agent commit about a release.
type HistoryEntry struct {
	Commit   plumbing.Hash
	Time     time.Time
	Subject  string
	Trailers map[string]string
}

// History reads the agent's commits about release ("ns/name") from the
// status branch, newest first, from their Sluice-* trailers.
func (s *Source) History(ctx context.Context, release string) ([]HistoryEntry, error) {
	repo, ref, err := s.StatusHistory(ctx)
	if err != nil {
		return nil, err
	}
	head, err := repo.Reference(ref, true)
	if err != nil {
		return nil, fmt.Errorf("status branch %s: %w", s.opts.StatusBranch, err)
	}
	iter, err := repo.Log(&git.LogOptions{From: head.Hash(), Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	err = iter.ForEach(func(c *object.Commit) error {
		tr := ParseTrailers(c.Message)
		if tr["Sluice-Release"] != release {
			return nil
		}
		subject, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, HistoryEntry{Commit: c.Hash, Time: c.Committer.When, Subject: subject, Trailers: tr})
		return nil
	})
	return out, err
}

// StatusHistory fetches the status branch into a full (not shallow) copy
// kept next to the main repository — the branch holds only small status
// files — and returns it with the ref that names the branch there. Calls
// are serialised; readers of the returned repository may run alongside
// the next call's fetch (objects are only added).
func (s *Source) StatusHistory(ctx context.Context) (*git.Repository, plumbing.ReferenceName, error) {
	s.historyMu.Lock()
	defer s.historyMu.Unlock()
	branch := s.opts.StatusBranch
	ref := remoteRef(branch)
	if s.history == nil {
		dir := s.opts.Dir + ".history"
		repo, err := git.PlainOpen(dir)
		if errors.Is(err, git.ErrRepositoryNotExists) {
			repo, err = git.PlainInit(dir, true)
			if err == nil {
				_, err = repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{s.url}})
			}
		}
		if err != nil {
			return nil, ref, fmt.Errorf("history repository %s: %w", dir, err)
		}
		s.history = repo
	}
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, ref))
	err := s.history.FetchContext(ctx, &git.FetchOptions{RemoteName: remoteName, RefSpecs: []config.RefSpec{spec}, Tags: git.NoTags, Auth: s.auth, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, ref, s.wrap("fetch "+branch, err)
	}
	return s.history, ref, nil
}
