package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// canaryWith is the fixture's canary release (no scale-down delay) with
// the given steps and the rest of its spec.
func canaryWith(steps, rest string) string {
	return `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: NAMESPACE}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    scaleDownDelay: 0s
    canary:
      steps:
` + steps + rest
}

// analysisRelease is a canary with the given steps (no scale-down delay),
// a webhook check "health" on url with the given settings, and analysis.
func analysisRelease(url, steps, settings, analysis string) string {
	return canaryWith(steps, `  checks:
  - name: health
    webhook: {url: "`+url+`"}
`+settings+`  analysis: `+analysis+"\n")
}

// TestBackgroundAnalysisAbortsAtAGate: a canary waits at a gate for a
// person; its background analysis (a real webhook, measured every second)
// keeps watching, and when the webhook starts failing the canary is
// aborted there, without anyone approving or any step running a check.
func TestBackgroundAnalysisAbortsAtAGate(t *testing.T) {
	var calls atomic.Int64
	var failing atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = analysisRelease(hook.URL, "      - setWeight: 20\n      - pause: {gate: qa}\n      - setWeight: 100\n",
		"    interval: 1s\n", "{checks: [health], startingStep: 1}")
	e := newEnv(t, files, nil)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if calls.Load() != 0 {
		t.Fatalf("the analysis ran without a canary: %d calls", calls.Load())
	}
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, `gate "qa"`)
	}, nil)
	// Waiting at the gate, the analysis is measured every second.
	deadline := time.Now().Add(20 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d analysis measurements at the gate in 20s, want 3 (one a second)", calls.Load())
		}
		e.passUntil(e.ns+"/canary", 5*time.Second, func(v1alpha1.ReleaseStatus) bool { return true }, nil)
		time.Sleep(300 * time.Millisecond)
	}
	if st := e.status(e.ns + "/canary"); st.Phase != v1alpha1.PhasePaused || st.Step != 1 {
		t.Fatalf("passing analysis moved the canary: %+v", st)
	}
	failing.Store(true)
	failedAt := time.Now()
	st := e.passUntil(e.ns+"/canary", 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseAborted }, nil)
	if !strings.Contains(st.Message, "background analysis: check health failed 1 times") {
		t.Errorf("abort message: %q", st.Message)
	}
	t.Logf("aborted at the gate %.1fs after the analysis started failing: %s", time.Since(failedAt).Seconds(), st.Message)
}

// TestPostPromotionAnalysisSwitchesBack: the canary is promoted (every
// request to the new version), its post-promotion check — a real webhook —
// fails, and every request goes back to the previous version, which the
// stable Deployment still runs: it was never replaced.
func TestPostPromotionAnalysisSwitchesBack(t *testing.T) {
	var calls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) >= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hook.Close)
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = analysisRelease(hook.URL, "      - setWeight: 50\n      - setWeight: 100\n",
		"    interval: 1s\n    count: 3\n", "{postPromotion: [health]}")
	e := newEnv(t, files, nil)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	sawSwitch := false
	st := e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseAborted }, func(s v1alpha1.ReleaseStatus) {
		if s.Phase == v1alpha1.PhasePromoting {
			w := e.weights("canary", "canary")
			sawSwitch = sawSwitch || w["canary-canary"] == 100
		}
	})
	if !sawSwitch {
		t.Errorf("the route never sent every request to the new version before the analysis")
	}
	if !strings.Contains(st.Message, "post-promotion analysis: check health failed") {
		t.Errorf("abort message: %q", st.Message)
	}
	if w := e.weights("canary", "canary"); w["canary-canary"] != 0 {
		t.Errorf("after the switch back the route still weights the new version: %v", w)
	}
	if img := image(t, e, "canary"); img != "ghcr.io/sluice-dev/podinfo:6.7.0" {
		t.Errorf("the stable Deployment runs %s: the previous version was replaced before the analysis passed", img)
	}
	t.Logf("switched back after %d post-promotion measurements: %s", calls.Load(), st.Message)
}
