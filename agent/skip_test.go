package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestBadEntriesStopOnlyThemselves: an escaping symlink, a symlink loop and
// a submodule under releases/ are skipped and counted; the healthy release
// beside them is reconciled and the pass does not fail.
func TestBadEntriesStopOnlyThemselves(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), nil)
	w := e.repo.Work
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(w, "releases/bad"), 0o755))
	must(os.Symlink("/etc", filepath.Join(w, "releases/bad/escape")))
	must(os.Symlink("loop-b", filepath.Join(w, "releases/bad/loop-a")))
	must(os.Symlink("loop-a", filepath.Join(w, "releases/bad/loop-b")))
	gitserver.Git(t, w, "add", "releases/bad")
	head := gitserver.Git(t, w, "rev-parse", "HEAD")
	gitserver.Git(t, w, "update-index", "--add", "--cacheinfo", "160000,"+head+",releases/bad/submodule")
	gitserver.Git(t, w, "commit", "-q", "-m", "bad entries")
	e.repo.Push(t)

	st := e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if st.Stable == nil {
		t.Fatalf("the healthy release was not reconciled: %+v", st)
	}
	if _, err := e.agent.Pass(context.Background()); err != nil {
		t.Fatalf("a bad entry failed the pass: %v", err)
	}
	if v := gaugeValue(t, e.agent, "sluice_skipped_paths"); v != 4 {
		t.Errorf("sluice_skipped_paths = %v, want 4 (escape, loop-a, loop-b, submodule)", v)
	}

	// The same loop inside the release's own directory, with an image
	// bump: that release fails with the path (as validate and render say),
	// nothing of the bump is applied; removing the loop lets it through.
	before := image(t, e, "rolling")
	dir := "releases/" + e.ns + "/rolling"
	must(os.Symlink("loop-b", filepath.Join(w, dir, "loop-a")))
	must(os.Symlink("loop-a", filepath.Join(w, dir, "loop-b")))
	depFile := filepath.Join(w, dir, "deployment.yaml")
	dep, err := os.ReadFile(depFile)
	must(err)
	must(os.WriteFile(depFile, []byte(strings.Replace(string(dep), "podinfo:6.7.0", "podinfo:6.7.1", 1)), 0o644))
	gitserver.Git(t, w, "add", "-A")
	gitserver.Git(t, w, "commit", "-q", "-m", "loop inside the release, and a new image")
	e.repo.Push(t)
	st = e.passUntil(e.ns+"/rolling", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Error != nil }, nil)
	if st.Error.File != dir+"/loop-a" || !strings.Contains(st.Error.Message, "unreadable entry") {
		t.Errorf("status error = %+v", st.Error)
	}
	if got := image(t, e, "rolling"); got != before {
		t.Errorf("image %s applied beside a bad entry (was %s)", got, before)
	}
	gitserver.Git(t, w, "rm", "-q", dir+"/loop-a", dir+"/loop-b")
	gitserver.Git(t, w, "commit", "-q", "-m", "loop removed")
	e.repo.Push(t)
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Error == nil && s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if got := image(t, e, "rolling"); got == before {
		t.Errorf("the image bump was not applied once the loop went")
	}
}

// A panic in one release's pass (here: no trees to read) is contained:
// the release fails, the panic is counted, the caller goes on.
func TestPanicIsContainedToItsRelease(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), nil)
	out := e.agent.safeRelease(context.Background(), "releases/shop/cart/release.yaml", plumbing.ZeroHash, nil, nil)
	if !out.failed || out.id != "shop/cart" {
		t.Fatalf("outcome %+v", out)
	}
	if v := counterValue(t, e.agent, "sluice_release_panics_total"); v != 1 {
		t.Errorf("sluice_release_panics_total = %v", v)
	}
}

func counterValue(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, _ := a.metrics.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
