package e2e

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

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/promtest"
)

var allExamples = []string{"ab-test", "blue-green", "canary", "canary-manual", "recreate", "rolling", "shadow"}

// Scenario 1 — first install: every example applied, status committed,
// nothing else written on later passes.
func TestFirstInstall(t *testing.T) {
	t.Parallel()
	w := newWorld(t, allExamples)
	w.start()
	for _, name := range allExamples {
		w.waitStatus(name, 90*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
		if !w.exists(name) {
			t.Errorf("%s: deployment missing", name)
		}
		if tr := w.trailers(name); strings.Join(tr, " ") != "Progressing|0|0 Succeeded|0|0" {
			t.Errorf("%s: status commits %v", name, tr)
		}
	}
	head := w.repo.Head(t, "sluice/status")
	time.Sleep(3 * time.Second) // several intervals with nothing to do
	if w.repo.Head(t, "sluice/status") != head {
		t.Errorf("idle passes wrote: %s", gitserver.Git(t, w.repo.Bare, "log", "-3", "--format=%s", "sluice/status"))
	}
	if n := gitserver.Git(t, w.repo.Bare, "log", "--format=%an", "main"); strings.Contains(n, "sluice") {
		t.Errorf("the agent committed on main")
	}
}

// servePrometheus runs an app exposing http_requests_total for the given
// services with steady traffic, and a Prometheus scraping it.
func servePrometheus(t *testing.T, services ...string) (*promtest.App, *promtest.Server) {
	app := promtest.StartApp(t, services...)
	prom := promtest.Start(t, app.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			for _, s := range services {
				app.Serve(s, 20)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return app, prom
}

func bumpImage(dep, tag string) string {
	for _, old := range []string{"6.7.0", "6.7.1", "6.7.2", "6.7.3"} {
		dep = strings.ReplaceAll(dep, "podinfo:"+old, "podinfo:"+tag)
	}
	return dep
}

// Scenario 2 — canary happy path with a real Prometheus check, a gate
// approved with `sluice approve`, one commit per transition.
func TestCanaryHappyPath(t *testing.T) {
	t.Parallel()
	_, prom := servePrometheus(t, "canary", "canary-canary")
	w := newWorld(t, []string{"canary"}, "http://prometheus.monitoring:9090", prom.URL, "duration: 30s", "duration: 2s", "interval: 10s", "interval: 1s")
	w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	rev := w.commit("canary", "bump podinfo", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})

	seen := map[int64]bool{}
	var sawHeader, sawMirror atomic.Bool
	st := w.waitStatus("canary", 120*time.Second, "waiting at the qa gate", func(s v1alpha1.ReleaseStatus) bool {
		if s.Canary != nil && w.exists("canary-canary") {
			seen[w.weights("canary")["canary-canary"]] = true
			for _, r := range w.route("canary") {
				if hasHeaderMatch(r) {
					sawHeader.Store(true)
				}
				if fs, ok := r["filters"].([]any); ok {
					for _, f := range fs {
						if f.(map[string]any)["type"] == "RequestMirror" {
							sawMirror.Store(true)
						}
					}
				}
			}
		}
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, `"qa"`)
	})
	if st.Weight != 25 || st.Canary.Revision != rev {
		t.Fatalf("at the gate: %+v", st)
	}
	if wt := w.weights("canary"); wt["canary"] != 75 || wt["canary-canary"] != 25 {
		t.Errorf("weights at the gate = %v", wt)
	}
	if !seen[5] || !sawHeader.Load() || !sawMirror.Load() {
		t.Errorf("route shapes seen: weights %v header %v mirror %v", seen, sawHeader.Load(), sawMirror.Load())
	}
	// The user's own redirect rule is untouched.
	redirects := 0
	for _, r := range w.route("canary") {
		if fs, ok := r["filters"].([]any); ok && len(fs) > 0 && fs[0].(map[string]any)["type"] == "RequestRedirect" {
			redirects++
		}
	}
	if redirects != 1 {
		t.Errorf("the user's redirect rule: %d", redirects)
	}
	w.sluice("approve", w.ns+"/canary", "qa", "--push")
	w.waitStatus("canary", 90*time.Second, "promoted", phaseIs(v1alpha1.PhaseSucceeded))
	// The canary track the route has just left drains for scaleDownDelay
	// (30 s by default: the data plane may still send it requests), then
	// goes.
	if !w.exists("canary-canary") {
		t.Error("the canary track went in the pass that moved traffic off it")
	}
	waitFor(t, drained, "the canary track deleted after its drain", func() bool { return !w.exists("canary-canary") })
	d, _ := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "canary", metav1.GetOptions{})
	if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":6.7.1") {
		t.Errorf("stable image = %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	want := "Progressing|0|0 Succeeded|0|0 Progressing|0|0 Progressing|1|5 Paused|1|5 Progressing|2|5 Progressing|3|5 Progressing|4|5 Progressing|5|5 Progressing|6|25 Paused|6|25 Progressing|7|25 Promoting|7|100 Succeeded|0|0"
	if got := strings.Join(w.trailers("canary"), " "); got != want {
		t.Errorf("status commits:\n got %s\nwant %s", got, want)
	}
	hist := w.sluice("history", w.ns+"/canary")
	if !strings.Contains(hist, "Promoting") || !strings.Contains(hist, "success-rate=") {
		t.Errorf("sluice history:\n%s", hist)
	}
	if n := gitserver.Git(t, w.repo.Bare, "log", "--format=%an", "main"); strings.Contains(n, "sluice") {
		t.Errorf("the agent committed on main")
	}
}

// Scenario 3 — PR-driven weights: 10 → 25 → 50 → 100, promoted at 100.
func TestPRDrivenWeights(t *testing.T) {
	t.Parallel()
	smoke := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer smoke.Close()
	w := newWorld(t, []string{"canary-manual"}, "http://smoke.demo/run", smoke.URL)
	w.start()
	w.waitStatus("canary-manual", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	rel := w.file("canary-manual", "release.yaml")
	w.commit("canary-manual", "bump and start at 10", map[string]string{
		"deployment.yaml": bumpImage(w.file("canary-manual", "deployment.yaml"), "6.7.1"),
		"release.yaml":    strings.Replace(rel, "weight: 0", "weight: 10", 1),
	})
	for _, wt := range []int32{10, 25, 50} {
		if wt != 10 {
			w.sluice("set-weight", w.ns+"/canary-manual", fmt.Sprint(wt), "--push")
		}
		w.waitStatus("canary-manual", 30*time.Second, fmt.Sprintf("weight %d", wt), func(s v1alpha1.ReleaseStatus) bool { return s.Weight == wt })
		// The route follows the status within a pass.
		var got map[string]int64
		deadline := time.Now().Add(5 * time.Second)
		for got = w.weights("canary-manual"); got["canary-manual-canary"] != int64(wt) && time.Now().Before(deadline); got = w.weights("canary-manual") {
			time.Sleep(100 * time.Millisecond)
		}
		if got["canary-manual-canary"] != int64(wt) || got["canary-manual"] != int64(100-wt) {
			t.Errorf("route at %d = %v", wt, got)
		}
	}
	w.sluice("set-weight", w.ns+"/canary-manual", "100", "--push")
	w.waitStatus("canary-manual", 60*time.Second, "promoted at 100", phaseIs(v1alpha1.PhaseSucceeded))
	waitFor(t, drained, "the canary track deleted after its drain", func() bool { return !w.exists("canary-manual-canary") })
}

// Scenarios 4 and 5 — a failing check aborts (and with onFailure: revert
// the files are restored); the same version is not retried; a new version
// starts a new canary; a git revert mid-canary rolls back at once without
// running checks.
func TestFailedCheckAndRevert(t *testing.T) {
	t.Parallel()
	app, prom := servePrometheus(t, "canary", "canary-canary")
	w := newWorld(t, []string{"canary"}, "http://prometheus.monitoring:9090", prom.URL, "duration: 30s", "duration: 2s", "interval: 10s", "interval: 1s", "onFailure: rollback", "onFailure: revert")
	w.start()
	st := w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	stable := st.Stable.Revision
	app.SetErrorPercent("canary-canary", 50)
	w.commit("canary", "bump to a bad version", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.2")})
	st = w.waitStatus("canary", 120*time.Second, "aborted", phaseIs(v1alpha1.PhaseAborted))
	if !strings.Contains(st.Message, "check success-rate failed") {
		t.Errorf("abort message: %s", st.Message)
	}
	if wt := w.weights("canary"); wt["canary-canary"] != 0 || len(wt) != 1 {
		t.Errorf("route after abort = %v", wt)
	}
	waitFor(t, drained, "the canary track deleted after the abort and its drain", func() bool { return !w.exists("canary-canary") })
	// onFailure: revert commits the files at the stable revision on main
	// (after the Aborted status commit).
	reverted := func() bool {
		for _, f := range []string{"deployment.yaml", "release.yaml"} {
			if w.file("canary", f) != gitserver.Git(t, w.repo.Bare, "show", stable+":releases/"+w.ns+"/canary/"+f) {
				return false
			}
		}
		return true
	}
	waitFor(t, 20*time.Second, "the files at the stable revision on main after onFailure: revert", reverted)
	// A new version starts a new canary; a revert of it while its check
	// step is measuring (60 measurements a second apart) rolls back at
	// once: at most the one query of a pass already under way when the
	// revert was pushed, none after, and long before the step could end.
	app.SetErrorPercent("canary-canary", 0)
	gitserver.Git(t, w.repo.Work, "pull", "-q", "origin", "main")
	w.commit("canary", "a good version", map[string]string{
		"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.3"),
		// What matters is that measurements are being made. The query's
		// window shortened to 2 s: no measurement reaches back past the
		// bad version's drain, so a [1m] window would query nothing for
		// a minute (docs/analysis.md); failures are tolerated all the same.
		"release.yaml": strings.NewReplacer("count: 3", "count: 60", "failureLimit: 1", "failureLimit: 100", "[1m]", "[2s]").Replace(w.file("canary", "release.yaml")),
	})
	w.waitStatus("canary", 60*time.Second, "the new canary at its check step", func(s v1alpha1.ReleaseStatus) bool {
		return s.Canary != nil && s.Step == 2
	})
	begun := prom.QueryCount(t)
	waitFor(t, 20*time.Second, "the check step measuring", func() bool { return prom.QueryCount(t) >= begun+2 })
	queries := prom.QueryCount(t)
	gitserver.Git(t, w.repo.Work, "revert", "--no-edit", "HEAD")
	w.repo.Push(t)
	pushed := time.Now()
	st = w.waitStatus("canary", 20*time.Second, "rolled back", phaseIs(v1alpha1.PhaseRolledBack))
	took := time.Since(pushed)
	settled := prom.QueryCount(t)
	time.Sleep(2 * time.Second) // two check intervals: a check still running would show
	if after := prom.QueryCount(t); after-queries > 1 || after != settled {
		t.Errorf("the revert ran checks: %d Prometheus queries at the push, %d at RolledBack, %d two intervals later", queries, settled, after)
	}
	if st.Canary != nil || took > 10*time.Second {
		t.Errorf("rolled back after %s (the check step had 60 s to go): %+v", took, st)
	}
	t.Logf("revert mid-check: RolledBack %s after the push, %d queries in between", took.Round(time.Millisecond), settled-queries)
}

// Scenario 6 — blue-green, A/B and shadow route shapes.
func TestPresetRouteShapes(t *testing.T) {
	t.Parallel()
	smoke := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer smoke.Close()
	_, prom := servePrometheus(t, "ab-test", "ab-test-canary", "shadow", "shadow-canary")
	w := newWorld(t, []string{"blue-green", "ab-test", "shadow"}, "http://smoke.demo/run", smoke.URL,
		"http://prometheus.monitoring:9090", prom.URL, "duration: 5m", "duration: 2s", "interval: 30s", "interval: 1s", "interval: 1m", "interval: 1s",
		`histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{service="{{.Canary.Service}}"}[1m])) by (le))`, `scalar(vector(0.1))`)
	w.start()
	for _, n := range []string{"blue-green", "ab-test", "shadow"} {
		w.waitStatus(n, 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
		w.commit(n, "bump "+n, map[string]string{"deployment.yaml": bumpImage(w.file(n, "deployment.yaml"), "6.7.1")})
	}
	// Shadow: a RequestMirror with percent 20, no traffic, then promoted
	// (looked at first: its mirror step lasts seconds, the others wait at
	// gates).
	mirror := false
	w.waitStatus("shadow", 60*time.Second, "mirroring", func(s v1alpha1.ReleaseStatus) bool {
		for _, r := range w.route("shadow") {
			if strings.Contains(fmt.Sprint(r), "RequestMirror") && strings.Contains(fmt.Sprint(r), "percent:20") {
				mirror = true
			}
		}
		return mirror || s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Canary == nil && len(w.trailers("shadow")) > 3
	})
	if !mirror {
		t.Error("never saw the RequestMirror filter at 20%")
	}
	// Blue-green: full size, no traffic, a preview rule, waiting at the gate.
	w.waitStatus("blue-green", 60*time.Second, "at the promote gate", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused })
	if wt := w.weights("blue-green"); wt["blue-green-canary"] != 0 || wt["blue-green"] != 100 {
		t.Errorf("blue-green before the switch: %v", wt)
	}
	d, _ := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "blue-green-canary", metav1.GetOptions{})
	if d == nil || *d.Spec.Replicas != 3 {
		t.Errorf("blue-green canary not at full size: %v", d)
	}
	preview := false
	for _, r := range w.route("blue-green") {
		if hasHeaderMatch(r) && strings.Contains(fmt.Sprint(r), "X-Preview") {
			preview = true
		}
	}
	if !preview {
		t.Error("no preview header rule")
	}
	w.sluice("approve", w.ns+"/blue-green", "promote", "--push")
	w.waitStatus("blue-green", 60*time.Second, "switched and promoted", phaseIs(v1alpha1.PhaseSucceeded))
	tr := w.trailers("blue-green")
	switches := 0
	for _, x := range tr {
		if strings.HasSuffix(x, "|100") {
			switches++
		}
	}
	if switches != 1 {
		t.Errorf("blue-green weight went to 100 %d times: %v", switches, tr)
	}
	for _, x := range tr {
		if !strings.HasSuffix(x, "|0") && !strings.HasSuffix(x, "|100") {
			t.Errorf("blue-green had a partial weight: %v", tr)
		}
	}

	// A/B: Firefox users preferring ko reach the new version.
	w.waitStatus("ab-test", 60*time.Second, "at the product gate", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused })
	found := false
	for _, r := range w.route("ab-test") {
		s := fmt.Sprint(r)
		if hasHeaderMatch(r) && strings.Contains(s, "Firefox") && strings.Contains(s, "^ko.*") && strings.Contains(s, "ab-test-canary") {
			found = true
		}
	}
	if !found {
		t.Errorf("no A/B header rule: %v", w.route("ab-test"))
	}

	w.waitStatus("shadow", 60*time.Second, "promoted", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && len(w.trailers("shadow")) > 3
	})
}

// Scenario 7 — rolling and recreate: a rollout waited for; a version whose
// pods never become ready is rolled back to the stable revision.
func TestRollingAndRecreate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, []string{"rolling", "recreate"}, "  replicas: 3\n", "  replicas: 3\n  progressDeadlineSeconds: 3\n")
	w.start()
	for _, n := range []string{"rolling", "recreate"} {
		w.waitStatus(n, 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
		w.commit(n, "good version", map[string]string{"deployment.yaml": bumpImage(w.file(n, "deployment.yaml"), "6.7.1")})
		st := w.waitStatus(n, 60*time.Second, "rolled out", func(s v1alpha1.ReleaseStatus) bool {
			return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && strings.HasPrefix(s.Stable.Revision, w.repo.Head(t, "main")[:7])
		})
		d, _ := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), n, metav1.GetOptions{})
		if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":6.7.1") || d.Status.AvailableReplicas != 3 {
			t.Errorf("%s after rollout: %s available %d", n, d.Spec.Template.Spec.Containers[0].Image, d.Status.AvailableReplicas)
		}
		stable := st.Stable.Revision
		// Pods that can never schedule: the rollout stalls, then rolls back.
		bad := strings.Replace(bumpImage(w.file(n, "deployment.yaml"), "6.7.2"), "      containers:", "      nodeSelector: {nowhere: \"true\"}\n      containers:", 1)
		w.commit(n, "a version that never becomes ready", map[string]string{"deployment.yaml": bad})
		st = w.waitStatus(n, 240*time.Second, "rolled back", phaseIs(v1alpha1.PhaseRolledBack))
		if st.Stable.Revision != stable {
			t.Errorf("%s: stable moved to %s", n, st.Stable.Revision)
		}
		if _, err := cluster.WaitAvailable(context.Background(), w.cs, w.ns, n, 60*time.Second); err != nil {
			t.Errorf("%s: not available after the rollback: %v", n, err)
		}
		d, _ = w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), n, metav1.GetOptions{})
		if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":6.7.1") {
			t.Errorf("%s after rollback runs %s", n, d.Spec.Template.Spec.Containers[0].Image)
		}
	}
}

// Scenario 11 — bad input mid-run: the error is committed with file and
// line, nothing is applied, the previous version keeps serving, other
// releases are unaffected, and the fixing commit recovers.
func TestBadInputMidRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, []string{"rolling", "recreate"})
	w.start()
	w.waitStatus("rolling", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	w.waitStatus("recreate", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	good := w.file("rolling", "release.yaml")
	goodDeployment := w.file("rolling", "deployment.yaml")
	before, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "rolling", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// One commit bumps the image and breaks release.yaml: nothing of it
	// may reach the cluster.
	w.commit("rolling", "a new image and a typo", map[string]string{
		"release.yaml":    strings.Replace(good, "maxSurge: 1", "maxSurge: lots", 1),
		"deployment.yaml": bumpImage(goodDeployment, "6.7.9"),
	})
	st := w.waitStatus("rolling", 30*time.Second, "the error committed", phaseIs(v1alpha1.PhaseFailed))
	if st.Error == nil || st.Error.File != "releases/"+w.ns+"/rolling/release.yaml" || st.Error.Line == 0 || !strings.Contains(st.Error.Message, "maxSurge") {
		t.Errorf("error in status: %+v", st.Error)
	}
	time.Sleep(2 * time.Second) // a few passes of the 500 ms interval
	after, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), "rolling", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || after.Spec.Template.Spec.Containers[0].Image != before.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("the broken commit reached the cluster: generation %d→%d, image %s", before.Generation, after.Generation, after.Spec.Template.Spec.Containers[0].Image)
	}
	kust := w.file("recreate", "kustomization.yaml")
	w.commit("recreate", "broken kustomization", map[string]string{"kustomization.yaml": kust + "- missing.yaml\n"})
	st = w.waitStatus("recreate", 30*time.Second, "the kustomize error committed", phaseIs(v1alpha1.PhaseFailed))
	if st.Error == nil || !strings.Contains(st.Error.Message, "kustomize build failed") {
		t.Errorf("kustomize error in status: %+v", st.Error)
	}
	for _, n := range []string{"rolling", "recreate"} {
		if _, err := cluster.WaitAvailable(context.Background(), w.cs, w.ns, n, 10*time.Second); err != nil {
			t.Errorf("%s stopped serving: %v", n, err)
		}
	}
	w.commit("rolling", "fix", map[string]string{"release.yaml": good, "deployment.yaml": goodDeployment})
	w.commit("recreate", "fix", map[string]string{"kustomization.yaml": kust})
	for _, n := range []string{"rolling", "recreate"} {
		w.waitStatus(n, 30*time.Second, "recovered", func(s v1alpha1.ReleaseStatus) bool { return s.Error == nil && s.Phase != v1alpha1.PhaseFailed })
	}
}
