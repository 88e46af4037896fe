package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestForcePushIsReported: pushes of one or several commits are not
// rewrites; a force-push of an unrelated history over the spec branch is
// logged, counted, written into the release's status message and
// recorded as a Warning Event on its workload.
func TestForcePushIsReported(t *testing.T) {
	files := fixture(t, "NAMESPACE", "rolling")
	e := newEnv(t, files, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.agent.notify.run(ctx)
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	rewrites := func() float64 { return counterValue(t, e.agent, "sluice_spec_rewrites_total") }
	pass := func() {
		t.Helper()
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Several commits pushed at once: more history than the shallow cache.
	for i := range 4 {
		e.repo.Commit(t, fmt.Sprintf("note %d", i), map[string]string{fmt.Sprintf("docs/n%d.md", i): "n\n"})
	}
	e.repo.Push(t)
	pass()
	if n := rewrites(); n != 0 {
		t.Fatalf("a fast-forward push counted as %v rewrites", n)
	}
	if m := e.status(e.ns + "/rolling").Message; strings.Contains(m, "rewritten") {
		t.Fatalf("a fast-forward push reported as a rewrite: %q", m)
	}
	// An unrelated history force-pushed over main.
	gitserver.Git(t, e.repo.Work, "checkout", "-q", "--orphan", "other")
	gitserver.Git(t, e.repo.Work, "commit", "-q", "-m", "unrelated history")
	gitserver.Git(t, e.repo.Work, "push", "-q", "-f", "origin", "other:main")
	pass()
	if n := rewrites(); n != 1 {
		t.Fatalf("a force-push of an unrelated history counted as %v rewrites", n)
	}
	if e.logs.FilterMessage("spec branch rewritten: the new head does not descend from the last one applied (a force-push or an unrelated history); applying it as Git says").Len() != 1 {
		t.Error("the rewrite was not logged once")
	}
	if m := e.status(e.ns + "/rolling").Message; !strings.Contains(m, "spec branch main rewritten") {
		t.Errorf("status message after the force-push = %q", m)
	}
	// The Event is recorded by the notifier's goroutine.
	waitEvent(t, ctx, e.ns, "rolling", "SluiceSpecRewritten", "rewritten")
}
