package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestUnrenderableStableLeavesStableAlone: mid-canary, stable.revision on
// the status branch is hand-edited to a commit that does not exist. The
// agent applies nothing for the release (the stable Deployment keeps its
// pod template and generation; the new version never runs under the
// stable name), says why in the status, and carries on once the revision
// is readable again.
func TestUnrenderableStableLeavesStableAlone(t *testing.T) {
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = fmt.Sprintf(canaryRelease, "")
	e := newEnv(t, files, nil)
	ctx := context.Background()
	cs := cluster.Clientset(t)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	paused := e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused }, nil)
	before, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Someone edits stable.revision on the status branch by hand.
	good := paused.Stable.Revision
	bogus := strings.Repeat("ab", 20)
	editStatus := func(from, to string) {
		t.Helper()
		gitserver.Git(t, e.repo.Work, "fetch", "-q", "origin", "sluice/status")
		gitserver.Git(t, e.repo.Work, "checkout", "-q", "-B", "sluice/status", "FETCH_HEAD")
		p := filepath.Join(e.repo.Work, "releases/"+e.ns+"/canary/status.yaml")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(b), from, to, 1)), 0o644)
		gitserver.Git(t, e.repo.Work, "commit", "-q", "-am", "hand edit")
		gitserver.Git(t, e.repo.Work, "push", "-q", "origin", "sluice/status")
		gitserver.Git(t, e.repo.Work, "checkout", "-q", "main")
	}
	editStatus("revision: "+good, "revision: "+bogus)
	// The dependency on the Deployment watch is cut: every pass looks.
	for range 4 {
		e.agent.markDirty(e.ns + "/canary")
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	after, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || after.Spec.Template.Spec.Containers[0].Image != "ghcr.io/sluice-dev/podinfo:6.7.0" ||
		after.Annotations[VersionAnnotation] != before.Annotations[VersionAnnotation] {
		t.Fatalf("the stable Deployment changed: generation %d→%d, image %s, version %s→%s", before.Generation, after.Generation,
			after.Spec.Template.Spec.Containers[0].Image, before.Annotations[VersionAnnotation], after.Annotations[VersionAnnotation])
	}
	st := e.status(e.ns + "/canary")
	if st.Error == nil || !strings.Contains(st.Error.Message, bogus) || st.Step != paused.Step {
		t.Fatalf("status after the bad edit: %+v", st)
	}
	if v := gaugeVecValue(t, e.agent, "sluice_release_stable_unrenderable", e.ns+"/canary"); v != 1 {
		t.Errorf("sluice_release_stable_unrenderable = %v", v)
	}

	// The revision is put back: the release carries on, the error clears.
	editStatus("revision: "+bogus, "revision: "+good)
	e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Error == nil }, nil)
	if v := gaugeVecValue(t, e.agent, "sluice_release_stable_unrenderable", e.ns+"/canary"); v != 0 {
		t.Errorf("sluice_release_stable_unrenderable = %v after recovery", v)
	}
}
