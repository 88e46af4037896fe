package gitsource

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

func medianOf(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// authURL puts the credentials in a URL for the git command line.
func authURL(u string) string {
	return strings.Replace(u, "http://", "http://agent:"+password+"@", 1)
}

// BenchmarkCompareGit measures gitsource against the git command line on
// the same server, as medians of rounds (run with -benchtime 1x):
// a shallow fetch of one new commit vs `git fetch --depth 1`, and a
// no-change poll vs `git ls-remote`.
func BenchmarkCompareGit(b *testing.B) {
	ctx := context.Background()
	const rounds = 9
	root := b.TempDir()
	repo := gitserver.NewRepo(b, root, "app", exampleFilesB(b))
	srv := gitserver.StartHTTP(b, root, "agent", password)
	pw := filepath.Join(b.TempDir(), "pw")
	os.WriteFile(pw, []byte(password), 0o600)
	s, err := Open(Options{URL: srv.RepoURL(repo.Name), Dir: filepath.Join(b.TempDir(), "c"), Username: "agent", PasswordFile: pw})
	if err != nil {
		b.Fatal(err)
	}
	cli := filepath.Join(b.TempDir(), "cli")
	gitserver.Git(b, root, "clone", "-q", "--depth", "1", "--no-tags", "--bare", authURL(srv.RepoURL(repo.Name)), cli)
	if _, err := s.Fetch(ctx, "main", plumbing.ZeroHash); err != nil {
		b.Fatal(err)
	}
	var ours, theirs []time.Duration
	for i := range rounds {
		repo.Commit(b, fmt.Sprintf("change %d", i), map[string]string{"releases/demo/canary/note.txt": fmt.Sprint(i)})
		repo.Push(b)
		start := time.Now()
		if _, err := s.Fetch(ctx, "main", plumbing.ZeroHash); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		gitserver.Git(b, cli, "fetch", "-q", "--depth", "1", "--no-tags", "origin", "+refs/heads/main:refs/heads/main")
		theirs = append(theirs, time.Since(start))
	}
	f, g := medianOf(ours), medianOf(theirs)
	b.ReportMetric(float64(f.Microseconds())/1000, "fetch-ms")
	b.ReportMetric(float64(g.Microseconds())/1000, "git-fetch-ms")
	b.ReportMetric(float64(f)/float64(g), "fetch-ratio")
	fmt.Printf("shallow fetch of one new commit, median of %d: gitsource %s, git fetch --depth 1 %s, ratio %.2fx (goal <= 1.5x)\n", rounds, f.Round(time.Microsecond*100), g.Round(time.Microsecond*100), float64(f)/float64(g))

	ours, theirs = nil, nil
	var packs int64
	for range rounds {
		before := srv.PackBytes.Load()
		start := time.Now()
		if _, err := s.Heads(ctx); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		packs += srv.PackBytes.Load() - before
		start = time.Now()
		gitserver.Git(b, cli, "ls-remote", "origin", "refs/heads/main")
		theirs = append(theirs, time.Since(start))
	}
	p, l := medianOf(ours), medianOf(theirs)
	b.ReportMetric(float64(p)/float64(l), "poll-ratio")
	fmt.Printf("no-change poll, median of %d: gitsource %s, git ls-remote %s, ratio %.2fx (goal <= 1.2x), pack bytes %d\n", rounds, p.Round(time.Microsecond*100), l.Round(time.Microsecond*100), float64(p)/float64(l), packs)
}

func exampleFilesB(b *testing.B) map[string]string {
	files := map[string]string{}
	filepath.Walk("../examples", func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel("../examples", p)
			data, _ := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = string(data)
		}
		return nil
	})
	return files
}

// TestHelperShallowClone is not a test: BenchmarkCloneMemory runs this test
// binary with SLUICE_CLONE_URL set to measure one shallow clone's peak RSS
// in a process of its own. Without the variable it returns at once.
func TestHelperShallowClone(t *testing.T) {
	u := os.Getenv("SLUICE_CLONE_URL")
	if u == "" {
		return
	}
	s, err := Open(Options{URL: u, Dir: os.Getenv("SLUICE_CLONE_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(context.Background(), "main", plumbing.ZeroHash); err != nil {
		t.Fatal(err)
	}
}

// maxRSS runs a command under GNU time and returns the peak RSS of it and
// the children it waited for, in KiB. (Go's own rusage of a child would
// count the copy of this large process made by fork before exec.)
func maxRSS(b *testing.B, env []string, args ...string) int64 {
	out := filepath.Join(b.TempDir(), "rss")
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out}, args...)...)
	cmd.Env = env
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", args, err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var kib int64
	fmt.Sscan(strings.TrimSpace(string(data)), &kib)
	return kib
}

// BenchmarkCloneMemory compares the peak memory of a shallow clone of a
// repository with a 200 MB history: gitsource (in a process of its own)
// vs `git clone --depth 1`.
func BenchmarkCloneMemory(b *testing.B) {
	root := b.TempDir()
	gitserver.BigRepo(b, root, "big", 5000, 10, 20<<20)
	srv := gitserver.StartHTTP(b, root, "agent", password)
	u := authURL(srv.RepoURL("big.git"))
	env := append(os.Environ(), "SLUICE_CLONE_URL="+u, "SLUICE_CLONE_DIR="+filepath.Join(b.TempDir(), "ours"))
	ours := maxRSS(b, env, os.Args[0], "-test.run=^TestHelperShallowClone$", "-test.count=1")
	theirs := maxRSS(b, os.Environ(), "git", "clone", "-q", "--depth", "1", "--no-tags", "--bare", u, filepath.Join(b.TempDir(), "theirs"))
	b.ReportMetric(float64(ours)/1024, "gitsource-MiB")
	b.ReportMetric(float64(theirs)/1024, "git-MiB")
	fmt.Printf("shallow clone of a 200 MB history: peak RSS gitsource %d MiB (the whole test binary), git clone --depth 1 %d MiB, ratio %.2fx\n", ours/1024, theirs/1024, float64(ours)/float64(theirs))
}
