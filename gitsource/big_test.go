package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestShallowFetchBigHistory: a 5,000-commit repository carrying 100 MB of
// incompressible files in its history is fetched at depth 1: the download,
// the disk and the heap stay small.
func TestShallowFetchBigHistory(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	gitserver.BigRepo(t, root, "big", 5000, 5, 20<<20)
	srv := gitserver.StartHTTP(t, root, "agent", password)
	pw := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pw, password)
	dir := filepath.Join(t.TempDir(), "cache")
	s, err := Open(Options{URL: srv.RepoURL("big.git"), Dir: dir, Username: "agent", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}

	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	h, err := s.Fetch(ctx, "main", plumbing.ZeroHash)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := s.Tree(h)
	if b, err := tree.ReadFile("/releases/app/counter.txt"); err != nil || string(b) != "counter 5000\n" {
		t.Fatalf("head content = %q, %v", b, err)
	}
	if tree.Exists("/big") {
		t.Error("the big files are in the head tree")
	}
	var size int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			size += info.Size()
		}
		return nil
	})
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("pack bytes %d, on disk %d, heap grew by at most %d MiB", srv.PackBytes.Load(), size, grew>>20)
	if srv.PackBytes.Load() > 1<<20 || size > 2<<20 {
		t.Errorf("shallow fetch downloaded %d bytes and stored %d: the history came along", srv.PackBytes.Load(), size)
	}
	if grew > 64<<20 {
		t.Errorf("heap grew by %d MiB during a shallow fetch", grew>>20)
	}
}
