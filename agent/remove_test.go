package agent

import (
	"context"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestRemovedReleaseIsPruned: deleting a release's directory deletes its
// objects (except one marked sluice.dev/prune: disabled), commits phase
// Removed, then removes its status file; the other release is untouched.
// Deleting every release at once removes nothing.
func TestRemovedReleaseIsPruned(t *testing.T) {
	files := fixture(t, "NAMESPACE", "rolling", "recreate")
	e := newEnv(t, files, nil)
	ctx := context.Background()
	cs := cluster.Clientset(t)
	for _, r := range []string{e.ns + "/rolling", e.ns + "/recreate"} {
		e.passUntil(r, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	}
	recreateUID := func() types.UID {
		d, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "recreate", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.UID
	}
	before := recreateUID()
	// People keep the rolling Service whatever happens to the release.
	if _, err := cs.CoreV1().Services(e.ns).Patch(ctx, "rolling", types.MergePatchType, []byte(`{"metadata":{"annotations":{"sluice.dev/prune":"disabled"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	del := map[string]string{}
	for f := range files {
		if strings.HasPrefix(f, "releases/NAMESPACE/rolling/") {
			del[strings.Replace(f, "NAMESPACE", e.ns, 1)] = ""
		}
	}
	removedAt := e.repo.Commit(t, "remove rolling", del)
	e.repo.Push(t)
	st := e.passUntil(e.ns+"/rolling", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseRemoved }, nil)
	if !strings.Contains(st.Message, removedAt[:7]) || !strings.Contains(st.Message, "1 kept") || len(st.Inventory) != 0 {
		t.Errorf("removed status: %+v", st)
	}
	// Its gauges go with it; dashboards stop showing it.
	if v := gaugeVecValue(t, e.agent, "sluice_release_weight", e.ns+"/rolling"); v != -1 {
		t.Errorf("the removed release still has a weight series (%v)", v)
	}
	if v := gaugeVecValue(t, e.agent, "sluice_release_weight", e.ns+"/recreate"); v == -1 {
		t.Error("the release still there lost its weight series")
	}
	if _, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "rolling", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the removed release's Deployment is still there: %v", err)
	}
	if _, err := cs.CoreV1().Services(e.ns).Get(ctx, "rolling", metav1.GetOptions{}); err != nil {
		t.Errorf("the Service marked prune: disabled was deleted: %v", err)
	}
	// A later pass removes the status file; the history keeps the release's life.
	e.passUntil(e.ns+"/rolling", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == "" }, nil)
	if _, err := gitserver.GitErr(e.repo.Bare, "show", "sluice/status:releases/"+e.ns+"/rolling/status.yaml"); err == nil {
		t.Error("status.yaml of the removed release is still on the status branch")
	}
	t.Logf("history of the removed release:\n%s", gitserver.Git(t, e.repo.Bare, "log", "--reverse", "--format=%h %s [%(trailers:key=Sluice-Phase,valueonly,separator=)] %b", "sluice/status", "--", "releases/"+e.ns+"/rolling"))
	phases := gitserver.Git(t, e.repo.Bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Phase,valueonly,separator=)", "sluice/status", "--", "releases/"+e.ns+"/rolling")
	if got := strings.Fields(phases); len(got) < 3 || got[len(got)-2] != "Removed" || got[len(got)-1] != "Removed" || !slices.Contains(got, "Succeeded") {
		t.Errorf("history of the removed release: %v", got)
	}
	if recreateUID() != before || e.status(e.ns+"/recreate").Phase != v1alpha1.PhaseSucceeded {
		t.Error("the other release was touched")
	}

	// Every release vanishes at once: nothing is deleted, the refusal shows.
	del = map[string]string{}
	for f := range files {
		if strings.HasPrefix(f, "releases/NAMESPACE/recreate/") {
			del[strings.Replace(f, "NAMESPACE", e.ns, 1)] = ""
		}
	}
	e.repo.Commit(t, "remove everything", del)
	e.repo.Push(t)
	for range 3 {
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if recreateUID() != before || e.status(e.ns+"/recreate").Phase != v1alpha1.PhaseSucceeded {
		t.Error("a mass removal deleted objects")
	}
	if v := gaugeValue(t, e.agent, "sluice_removal_refused"); v != 1 {
		t.Errorf("sluice_removal_refused = %v, want 1", v)
	}
}

// The removal decision never names a release whose release file exists,
// whatever the sets; and a release file vanishing is always named unless
// the guard refuses everything.
func TestRemovedReleasesProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a/x", "a/y", "b/x", "b/z", "c/w"}
	for i := range 2000 {
		var spec, status []string
		for _, n := range names {
			if rng.IntN(2) == 0 {
				spec = append(spec, "releases/"+n+"/release.yaml")
			}
			if rng.IntN(2) == 0 {
				status = append(status, "releases/"+n+"/status.yaml")
			}
		}
		allow := rng.IntN(2) == 0
		gone, err := removedReleases(spec, status, allow)
		for _, g := range gone {
			if slices.Contains(spec, path.Join(path.Dir(g), "release.yaml")) {
				t.Fatalf("case %d: %s removed while its release file exists (%v)", i, g, spec)
			}
		}
		for _, s := range status {
			if !slices.Contains(spec, path.Join(path.Dir(s), "release.yaml")) && !slices.Contains(gone, s) && err == nil {
				t.Fatalf("case %d: %s not removed (%v)", i, s, spec)
			}
		}
		if len(spec) == 0 && len(status) > 0 && !allow && (err == nil || len(gone) > 0) {
			t.Fatalf("case %d: mass removal not refused", i)
		}
	}
}

// gaugeValue reads an unlabelled gauge from the agent's registry.
func gaugeValue(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
