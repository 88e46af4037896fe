package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

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

	st := e.passUntil("demo/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if st.Stable == nil {
		t.Fatalf("the healthy release was not reconciled: %+v", st)
	}
	if _, err := e.agent.Pass(context.Background()); err != nil {
		t.Fatalf("a bad entry failed the pass: %v", err)
	}
	if v := gaugeValue(t, e.agent, "sluice_skipped_paths"); v != 4 {
		t.Errorf("sluice_skipped_paths = %v, want 4 (escape, loop-a, loop-b, submodule)", v)
	}
}
