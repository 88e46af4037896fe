package gitsource

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// statusWrite returns a Recompute that writes one status file with a
// Sluice trailer block.
func statusWrite(release, body string, step int) Recompute {
	return func(ctx context.Context, head plumbing.Hash, tree *TreeFS) (*CommitSpec, error) {
		msg := FormatMessage(fmt.Sprintf("sluice: %s step %d", release, step), "", []Trailer{
			{"Sluice-Release", release}, {"Sluice-Phase", "Progressing"}, {"Sluice-Step", fmt.Sprint(step)},
			{"Sluice-Weight", "25"}, {"Sluice-Revision", "abc1234"}, {"Sluice-Checks", "success-rate=0.998 pass"},
		})
		return &CommitSpec{Message: msg, Files: []FileChange{{Path: "releases/" + release + "/status.yaml", Data: []byte(body)}}}, nil
	}
}

// TestStatusBranch: the first write creates sluice/status as an orphan
// branch with only status files; trailers read back with git; the spec
// branch gets nothing.
func TestStatusBranch(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, exampleFiles(t), nil)
	mainBefore := repo.Head(t, "main")

	res, err := s.Write(ctx, "sluice/status", statusWrite("demo/canary", "phase: Progressing\n", 1))
	if err != nil || res.Commit.IsZero() {
		t.Fatalf("write: %+v %v", res, err)
	}
	if got := repo.Head(t, "sluice/status"); got != res.Commit.String() {
		t.Fatalf("status branch at %s, pushed %s", got, res.Commit)
	}
	files := gitserver.Git(t, repo.Bare, "ls-tree", "-r", "--name-only", "sluice/status")
	if files != "releases/demo/canary/status.yaml" {
		t.Errorf("status branch holds %q", files)
	}
	if parents := gitserver.Git(t, repo.Bare, "rev-list", "--parents", "-n1", "sluice/status"); len(strings.Fields(parents)) != 1 {
		t.Errorf("first status commit has parents: %s", parents)
	}
	trailers := gitserver.Git(t, repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Step,valueonly)%(trailers:key=Sluice-Release,valueonly)", "sluice/status")
	if trailers != "1\ndemo/canary" {
		t.Errorf("trailers read by git: %q", trailers)
	}
	if repo.Head(t, "main") != mainBefore {
		t.Error("the spec branch moved")
	}

	// A second write stacks on the first; a write that changes nothing is
	// not made.
	res2, err := s.Write(ctx, "sluice/status", statusWrite("demo/canary", "phase: Paused\n", 2))
	if err != nil || res2.Commit.IsZero() {
		t.Fatal(err)
	}
	if parent := gitserver.Git(t, repo.Bare, "rev-parse", "sluice/status^"); parent != res.Commit.String() {
		t.Errorf("second commit's parent = %s", parent)
	}
	res3, err := s.Write(ctx, "sluice/status", statusWrite("demo/canary", "phase: Paused\n", 2))
	if err != nil || !res3.Commit.IsZero() {
		t.Errorf("an unchanged status made a commit: %+v %v", res3, err)
	}

	// History reads the trailers back, newest first.
	hist, err := s.History(ctx, "demo/canary")
	if err != nil || len(hist) != 2 || hist[0].Trailers["Sluice-Step"] != "2" || hist[1].Trailers["Sluice-Step"] != "1" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if hist[0].Trailers["Sluice-Checks"] != "success-rate=0.998 pass" {
		t.Errorf("checks trailer = %q", hist[0].Trailers["Sluice-Checks"])
	}
}

// TestSameBranchRace: status next to the spec. Five writers and a human
// pushing unrelated commits in a loop for 200 rounds: every human commit is
// on main at the end, nothing was forced (every earlier main is an ancestor
// of the final one), and every status write landed.
func TestSameBranchRace(t *testing.T) {
	ctx := context.Background()
	repo, server, _ := httpSource(t, nil, nil)
	pw := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pw, password)

	const writers, writesEach, humanRounds = 5, 6, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var landed []plumbing.Hash
	var observedMains []string
	errs := make(chan error, writers+1)

	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(Options{URL: server.RepoURL(repo.Name), Dir: filepath.Join(t.TempDir(), "agent"), Branch: "main", StatusBranch: "main", Username: "agent", PasswordFile: pw})
			if err != nil {
				errs <- err
				return
			}
			for i := range writesEach {
				rel := fmt.Sprintf("team/app-%d", w)
				res, err := s.Write(ctx, "main", statusWrite(rel, fmt.Sprintf("step: %d\n", i), i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				landed = append(landed, res.Commit)
				mu.Unlock()
			}
		}()
	}
	// The human: a clone that pulls (rebase) and pushes unrelated files.
	human := t.TempDir()
	gitserver.Git(t, human, "clone", "-q", repo.Bare, "h")
	hdir := filepath.Join(human, "h")
	var humanCommits []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range humanRounds {
			writeFile(t, filepath.Join(hdir, "docs", fmt.Sprintf("note-%d.md", i)), fmt.Sprintf("note %d\n", i))
			if out, err := gitserver.GitErr(hdir, "add", "-A"); err != nil {
				errs <- fmt.Errorf("%v %s", err, out)
				return
			}
			if out, err := gitserver.GitErr(hdir, "commit", "-q", "-m", fmt.Sprintf("human %d", i)); err != nil {
				errs <- fmt.Errorf("%v %s", err, out)
				return
			}
			for attempt := 0; ; attempt++ {
				if _, err := gitserver.GitErr(hdir, "push", "-q", "origin", "HEAD:main"); err == nil {
					break
				}
				if attempt == 30 {
					errs <- fmt.Errorf("human %d: push rejected 30 times", i)
					return
				}
				if out, err := gitserver.GitErr(hdir, "pull", "-q", "--rebase", "origin", "main"); err != nil {
					errs <- fmt.Errorf("pull: %v %s", err, out)
					return
				}
			}
			subj, _ := gitserver.GitErr(hdir, "log", "-1", "--format=%s")
			humanCommits = append(humanCommits, subj)
			if head, err := gitserver.GitErr(repo.Bare, "rev-parse", "main"); err == nil {
				mu.Lock()
				observedMains = append(observedMains, head)
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	log := gitserver.Git(t, repo.Bare, "log", "--format=%s", "main")
	for i := range humanRounds {
		if !strings.Contains(log, fmt.Sprintf("human %d\n", i)) && !strings.HasSuffix(log, fmt.Sprintf("human %d", i)) {
			t.Errorf("human commit %d is missing from main", i)
		}
	}
	if len(landed) != writers*writesEach {
		t.Errorf("%d status writes landed, want %d", len(landed), writers*writesEach)
	}
	for _, c := range landed {
		if _, err := gitserver.GitErr(repo.Bare, "merge-base", "--is-ancestor", c.String(), "main"); err != nil {
			t.Errorf("status commit %s is not on main: force-pushed away?", c)
		}
	}
	for _, m := range observedMains {
		if _, err := gitserver.GitErr(repo.Bare, "merge-base", "--is-ancestor", m, "main"); err != nil {
			t.Errorf("main was at %s, which is no longer an ancestor: history was rewritten", m)
		}
	}
	// Status files hold the last write of each writer.
	for w := range writers {
		got := gitserver.Git(t, repo.Bare, "show", fmt.Sprintf("main:releases/team/app-%d/status.yaml", w))
		if got != fmt.Sprintf("step: %d", writesEach-1) {
			t.Errorf("writer %d status = %q", w, got)
		}
	}
}

// TestTwoAgentsStatusBranch: two agents write the status branch at once;
// history stays linear and nothing is lost.
func TestTwoAgentsStatusBranch(t *testing.T) {
	ctx := context.Background()
	repo, srv, _ := httpSource(t, nil, nil)
	pw := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pw, password)
	var wg sync.WaitGroup
	const each = 10
	for a := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(Options{URL: srv.RepoURL(repo.Name), Dir: filepath.Join(t.TempDir(), "a"), Username: "agent", PasswordFile: pw})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range each {
				if _, err := s.Write(ctx, "sluice/status", statusWrite(fmt.Sprintf("ns/r%d", a), fmt.Sprintf("n: %d\n", i), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	count := gitserver.Git(t, repo.Bare, "rev-list", "--count", "sluice/status")
	merges := gitserver.Git(t, repo.Bare, "rev-list", "--merges", "--count", "sluice/status")
	if count != fmt.Sprint(2*each) || merges != "0" {
		t.Errorf("status branch has %s commits (%s merges), want %d linear", count, merges, 2*each)
	}
}

// TestWriteChain: several status commits go out in one push, each its own
// commit with its own trailers, and a write on the agent's own status
// branch builds on the head it last pushed without fetching first.
func TestWriteChain(t *testing.T) {
	ctx := context.Background()
	repo, srv, s := httpSource(t, nil, nil)
	if _, err := s.Write(ctx, "sluice/status", statusWrite("ns/first", "n: 0\n", 0)); err != nil {
		t.Fatal(err)
	}
	srv.Requests() // reset the counts
	res, err := s.WriteChain(ctx, "sluice/status", func(ctx context.Context, head plumbing.Hash, tree *TreeFS) ([]*CommitSpec, error) {
		var specs []*CommitSpec
		for i, r := range []string{"ns/a", "ns/b", "ns/c", "ns/first"} {
			spec, _ := statusWrite(r, "n: 0\n", i)(ctx, head, tree)
			specs = append(specs, spec)
		}
		return specs, nil
	})
	if err != nil || res.Attempts != 1 {
		t.Fatalf("write chain: %+v %v", res, err)
	}
	reqs := srv.Requests()
	if reqs["POST /git-receive-pack"] != 1 || reqs["POST /git-upload-pack"] != 0 {
		t.Errorf("requests for one chain on a known head: %v, want one receive-pack and no fetch", reqs)
	}
	// ns/first's status did not change: its commit is left out.
	if got := gitserver.Git(t, repo.Bare, "log", "--format=%(trailers:key=Sluice-Release,valueonly)", "sluice/status"); got != "ns/c\n\nns/b\n\nns/a\n\nns/first" {
		t.Errorf("status branch releases, newest first: %q", got)
	}
	if repo.Head(t, "sluice/status") != res.Commit.String() {
		t.Errorf("status head %s, chain ended at %s", repo.Head(t, "sluice/status"), res.Commit)
	}
}

// TestWriteChainPackfile: a chain big enough to be written as one
// packfile (a fleet's group commit) reaches the remote whole, reads back
// locally, and the next chain builds on it.
func TestWriteChainPackfile(t *testing.T) {
	ctx := context.Background()
	repo, _, s := httpSource(t, nil, nil)
	packs := func() int {
		m, _ := filepath.Glob(filepath.Join(s.opts.Dir, "objects", "pack", "*.pack"))
		return len(m)
	}
	before := packs()
	chain := func(round int) WriteResult {
		t.Helper()
		res, err := s.WriteChain(ctx, "sluice/status", func(ctx context.Context, head plumbing.Hash, tree *TreeFS) ([]*CommitSpec, error) {
			var specs []*CommitSpec
			for i := range 20 {
				spec, _ := statusWrite(fmt.Sprintf("ns/app-%02d", i), fmt.Sprintf("round: %d\n", round), i)(ctx, head, tree)
				specs = append(specs, spec)
			}
			return specs, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := chain(1)
	if packs() != before+1 {
		t.Errorf("packfiles %d -> %d, want one more for a chain of 20 commits", before, packs())
	}
	second := chain(2)
	if n := gitserver.Git(t, repo.Bare, "rev-list", "--count", "sluice/status"); n != "40" {
		t.Errorf("the remote's status branch has %s commits, want 40", n)
	}
	if out := gitserver.Git(t, repo.Bare, "fsck", "--no-dangling"); strings.Contains(out, "missing") {
		t.Errorf("git fsck on the remote: %s", out)
	}
	tree, err := s.Tree(second.Commit)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tree.ReadFile("/releases/ns/app-07/status.yaml")
	if err != nil || string(b) != "round: 2\n" {
		t.Errorf("read back locally: %q %v", b, err)
	}
	if first.Commit == second.Commit {
		t.Error("the second chain did not move the branch")
	}
}
