package gitsource

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestLocalWatch: for a local path, a commit is seen at once through the
// refs, and then fetched from the path.
func TestLocalWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	repo := gitserver.NewRepo(t, t.TempDir(), "local", nil)
	s, err := Open(Options{URL: repo.Work, Dir: filepath.Join(t.TempDir(), "c")})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx)
	if err != nil || ch == nil {
		t.Fatalf("watch: %v", err)
	}
	c := repo.Commit(t, "local change", map[string]string{"releases/x/release.yaml": "a: 1\n"})
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a local commit")
	}
	h, err := s.Fetch(ctx, "main", plumbing.ZeroHash)
	if err != nil || h.String() != c {
		t.Fatalf("fetch from the local path = %s, %v; want %s", h, err, c)
	}
	// A remote URL has no watch.
	_, srv, s2 := httpSource(t, nil, nil)
	_ = srv
	if ch2, err := s2.Watch(ctx); ch2 != nil || err != nil {
		t.Errorf("watch on an HTTP URL = %v, %v", ch2, err)
	}
}
