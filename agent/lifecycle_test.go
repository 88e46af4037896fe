package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// checkedRelease is a canary whose check step calls a webhook.
const checkedRelease = `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: NAMESPACE}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    canary:
      steps:
      - setWeight: 50
      - check: [smoke]
      - pause: {duration: 1s}
      - setWeight: 100
  checks:
  - name: smoke
    webhook: {url: "%s"}
%s`

// counter is a real webhook check endpoint that counts its calls.
func counter(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

func image(t *testing.T, e *env, name string) string {
	t.Helper()
	d, err := cluster.Clientset(t).AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestRevertAfterPromotion: 6.7.0 promoted to 6.7.1 (through its check),
// then `git revert` of the bump: 6.7.0 serves again with no step and no
// check request, committed as RolledBack naming both revisions. Inside the
// scale-down delay the previous version is still the stable track, so the
// rollback is a route switch: the stable Deployment is not touched, no pod
// starts. After it (or with none) 6.7.0 is started again as the canary
// track at full size and switched to at once.
func TestRevertAfterPromotion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  string
		inside bool
	}{
		{"inside the scale-down delay", "10s", true},
		{"after the scale-down delay", "2s", false},
		{"without a scale-down delay", "0s", false},
	} {
		t.Run(tc.name, func(t *testing.T) { revertAfterPromotion(t, tc.delay, tc.inside) })
	}
}

func revertAfterPromotion(t *testing.T, delay string, inside bool) {
	hook, calls := counter(t)
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = strings.Replace(fmt.Sprintf(checkedRelease, hook.URL, ""),
		"  strategy:\n", "  strategy:\n    scaleDownDelay: "+delay+"\n", 1)
	e := newEnv(t, files, nil)
	ctx := context.Background()
	cs := cluster.Clientset(t)
	succeeded := func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }
	installed := e.passUntil(e.ns+"/canary", 60*time.Second, succeeded, nil)
	generation := func() int64 {
		d, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Generation
	}
	stableGen := generation()

	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	var promoting v1alpha1.ReleaseStatus
	if inside {
		// All traffic on 6.7.1 (the canary track), 6.7.0 kept as stable.
		promoting = e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePromoting }, nil)
		if w := e.weights("canary", "canary"); w["canary-canary"] != 100 || w["canary"] != 0 {
			t.Fatalf("promoting: route weights %v, want all on the canary track", w)
		}
		if img, g := image(t, e, "canary"), generation(); img != "ghcr.io/sluice-dev/podinfo:6.7.0" || g != stableGen {
			t.Fatalf("inside the delay the stable track changed: %s generation %d (was %d)", img, g, stableGen)
		}
	} else {
		promoted := e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return succeeded(s) && s.Stable.Revision == bump }, nil)
		if len(promoted.Promoted) == 0 || promoted.Promoted[0].Digest != installed.Stable.Digest {
			t.Fatalf("the rollback window does not hold 6.7.0: %+v", promoted.Promoted)
		}
		stableGen = generation()
	}
	if calls.Load() == 0 {
		t.Fatal("the canary of 6.7.1 ran no check: the story proves nothing")
	}
	before := calls.Load()
	statusBefore := e.repo.Head(t, "sluice/status")

	gitserver.Git(t, e.repo.Work, "revert", "--no-edit", bump)
	revert := gitserver.Git(t, e.repo.Work, "rev-parse", "HEAD")
	e.repo.Push(t)
	pushed := time.Now()
	const old = "ghcr.io/sluice-dev/podinfo:6.7.0"
	// Only the old version serves: every backend the route weights runs
	// 6.7.0 (the canary track at 100 while the stable track is held, or the
	// stable track alone). Looked at after every pass.
	onlyOld := func() bool {
		w := e.weights("canary", "canary")
		return (w["canary-canary"] == 0 || image(t, e, "canary-canary") == old) && (w["canary"] == 0 || image(t, e, "canary") == old)
	}
	var serving time.Duration
	st := e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseRolledBack }, func(v1alpha1.ReleaseStatus) {
		if serving == 0 && onlyOld() {
			serving = time.Since(pushed)
		}
	})
	rolledBack := time.Since(pushed)
	if st.Stable.Digest != installed.Stable.Digest || st.Canary != nil {
		t.Fatalf("after the revert: %+v", st)
	}
	if inside && time.Since(*promoting.StepStartedAt) > 10*time.Second {
		t.Fatalf("the rollback landed after the scale-down delay; the story proves nothing")
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("the rollback ran %d check requests, want 0", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !onlyOld() {
		if time.Now().After(deadline) {
			t.Fatalf("stable %q canary %q route %v", image(t, e, "canary"), image(t, e, "canary-canary"), e.weights("canary", "canary"))
		}
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if serving == 0 {
		serving = time.Since(pushed)
	}
	// The canary track the route left stays for the delay (the data plane
	// may still send it requests), then goes.
	if d, _ := time.ParseDuration(delay); d > 0 && image(t, e, "canary-canary") == "" {
		t.Errorf("the canary track went at once; it must drain for %s", d)
	}
	for image(t, e, "canary-canary") != "" {
		if time.Since(pushed) > 45*time.Second {
			t.Fatalf("the canary track was not deleted after the delay")
		}
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if g := generation(); inside && g != stableGen {
		t.Errorf("a rollback inside the delay changed the stable Deployment (generation %d, was %d): pods were started", g, stableGen)
	}
	t.Logf("revert after promotion, %s (scaleDownDelay %s): RolledBack committed %s after the push, only 6.7.0 serving after %s, stable Deployment generation %d -> %d",
		map[bool]string{true: "inside the delay", false: "after the delay"}[inside], delay, rolledBack.Round(time.Millisecond), serving.Round(time.Millisecond), stableGen, generation())
	// The commits of the rollback: no step was walked, both versions named.
	log := gitserver.Git(t, e.repo.Bare, "log", "--reverse", "--format=%s|%(trailers:key=Sluice-Step,valueonly,separator=)|%(trailers:key=Sluice-Rollback-From,valueonly,separator=)|%(trailers:key=Sluice-Rollback-To,valueonly,separator=)", statusBefore+"..sluice/status")
	lines := strings.Split(log, "\n")
	last := lines[len(lines)-1]
	from, to := bump, revert
	if inside {
		to = installed.Stable.Revision // still the stable revision: nothing was promoted
	}
	if !strings.Contains(last, "RolledBack") && !strings.Contains(last, "rolled back") || !strings.HasSuffix(last, "|"+from+"|"+to) {
		t.Errorf("last commit %q, want a rollback from %s to %s", last, from[:7], to[:7])
	}
	for _, l := range lines {
		if strings.Split(l, "|")[1] != "0" {
			t.Errorf("a step was walked during the rollback: %q", l)
		}
	}
}

// TestSuspendMidPauseAndRetry: a release suspended in a pause applies
// nothing (a hand-scaled Deployment stays scaled, reported as drift) and
// its pause does not run out; resumed, the step start moved forward by the
// time suspended. Then an aborted version stays aborted until spec.retry
// names it.
func TestSuspendMidPauseAndRetry(t *testing.T) {
	hook, _ := counter(t)
	files := fixture(t, "NAMESPACE", "canary")
	withPause := func(extra string) string {
		return strings.Replace(fmt.Sprintf(checkedRelease, hook.URL, extra), "pause: {duration: 1s}", "pause: {duration: 3s}", 1)
	}
	files["releases/NAMESPACE/canary/release.yaml"] = withPause("")
	e := newEnv(t, files, nil)
	spec := func(extra string) string { return strings.ReplaceAll(withPause(extra), "NAMESPACE", e.ns) }
	ctx := context.Background()
	cs := cluster.Clientset(t)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	paused := e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused }, nil)

	e.repo.Commit(t, "suspend", map[string]string{"releases/" + e.ns + "/canary/release.yaml": spec("  suspend: true\n")})
	e.repo.Push(t)
	st := e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.SuspendedAt != nil }, nil)
	if st.Step != paused.Step || st.Phase != v1alpha1.PhasePaused {
		t.Fatalf("suspend moved the release: %+v", st)
	}
	if _, err := cs.AppsV1().Deployments(e.ns).Patch(ctx, "canary", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	// Twice the pause's length suspended: nothing moves, nothing is applied.
	end := time.Now().Add(6 * time.Second)
	for time.Now().Before(end) {
		e.agent.markDirty(e.ns + "/canary")
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if s := e.status(e.ns + "/canary"); s.Step != paused.Step || s.SuspendedAt == nil {
		t.Fatalf("suspended release moved: %+v", s)
	}
	d, _ := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if *d.Spec.Replicas != 5 {
		t.Errorf("a suspended release's drift was set back: replicas %d", *d.Spec.Replicas)
	}
	if v := gaugeVecValue(t, e.agent, "sluice_release_drift_objects", e.ns+"/canary"); v < 1 {
		t.Errorf("drift not reported: %v", v)
	}

	e.repo.Commit(t, "resume", map[string]string{"releases/" + e.ns + "/canary/release.yaml": spec("")})
	e.repo.Push(t)
	resumed := e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.SuspendedAt == nil }, nil)
	if resumed.Step == paused.Step {
		if shift := resumed.StepStartedAt.Sub(*paused.StepStartedAt); shift < 6*time.Second {
			t.Errorf("the step start moved by %s on resume, want at least the 6 s suspended", shift)
		}
	}
	d, _ = cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if *d.Spec.Replicas != 3 {
		t.Errorf("after resume the drift stays: replicas %d", *d.Spec.Replicas)
	}

	// Abort the canary; the same version stays aborted until a retry names it.
	e.repo.Commit(t, "abort", map[string]string{"releases/" + e.ns + "/canary/release.yaml": spec("  abort: {revision: " + bump[:7] + "}\n")})
	e.repo.Push(t)
	aborted := e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseAborted }, nil)
	if aborted.AbortedRevision != bump {
		t.Fatalf("aborted revision %q, want %s", aborted.AbortedRevision, bump)
	}
	e.repo.Commit(t, "an unrelated edit", map[string]string{"releases/" + e.ns + "/canary/release.yaml": spec("  # nothing\n")})
	e.repo.Push(t)
	for range 3 {
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := e.status(e.ns + "/canary"); s.Phase != v1alpha1.PhaseAborted || s.Canary != nil {
		t.Fatalf("an aborted version ran again without a retry: %+v", s)
	}
	e.repo.Commit(t, "retry", map[string]string{"releases/" + e.ns + "/canary/release.yaml": spec("  retry: {revision: " + bump[:7] + "}\n")})
	e.repo.Push(t)
	e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Canary != nil && s.Phase != v1alpha1.PhaseAborted }, nil)
	e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	e.passUntilGone("the canary track of the retried promotion", func() error {
		_, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary-canary", metav1.GetOptions{})
		return err
	})
	if image(t, e, "canary") != "ghcr.io/sluice-dev/podinfo:6.7.1" {
		t.Errorf("stable image %s after the retried canary", image(t, e, "canary"))
	}
}

// gaugeVecValue reads a gauge with a release label.
func gaugeVecValue(t *testing.T, a *Agent, name, release string) float64 {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		ns, name, _ := strings.Cut(release, "/")
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["name"] == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
