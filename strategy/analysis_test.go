package strategy

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestBackgroundAnalysis: the analysis's checks are measured at their
// interval from its starting step on, through a gate that waits for a
// person, across step transitions; a failure aborts wherever the canary
// is; the promotion ends it.
func TestBackgroundAnalysis(t *testing.T) {
	steps := "    canary:\n      steps:\n      - setWeight: 10\n      - pause: {gate: qa}\n      - setWeight: 50\n      - pause: {duration: 1h}"
	extra := `  - name: bg
    webhook: {url: "http://smoke/bg"}
    interval: 10s
    failureLimit: 1
  analysis: {checks: [bg], startingStep: 1}
`
	r := release(t, steps, extra)
	pass := []Measurement{{Check: "bg", Outcome: Pass, Value: "200"}}
	fail := []Measurement{{Check: "bg", Outcome: Fail, Value: "500"}}

	// Before its starting step it does not run.
	if due := DueChecks(input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 0)); len(due) != 0 {
		t.Fatalf("due before the starting step: %v", due)
	}
	// At the gate: due now, measured, and due again an interval later
	// although the gate itself never wakes the release.
	in := input(r, inflight(1, 10, v1alpha1.PhasePaused, 0), 5*time.Second)
	if due := DueChecks(in); len(due) != 1 || due[0] != "bg" {
		t.Fatalf("due at the gate: %v", due)
	}
	in.Results = pass
	p := Next(in)
	if p.Status.Phase != v1alpha1.PhasePaused || len(p.Status.Analysis) != 1 || p.Status.Analysis[0].Passed != 1 || !p.WakeAt.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("first measurement at the gate: %+v wake %s", p.Status, p.WakeAt)
	}
	in = input(r, p.Status, 12*time.Second)
	if due := DueChecks(in); len(due) != 0 {
		t.Fatalf("due before its interval: %v", due)
	}
	// One failure is within failureLimit 1; the counters survive the
	// gate's approval and the next step.
	in = input(release(t, steps, extra+"  gates:\n    approved:\n    - {gate: qa, revision: 2222222}\n"), p.Status, 15*time.Second)
	in.Results = fail
	p = Next(in)
	if p.Status.Step != 2 || p.Status.Analysis[0].Failed != 1 || p.Status.Analysis[0].Passed != 1 {
		t.Fatalf("after the gate: %+v", p.Status)
	}
	p = Next(input(r, p.Status, 16*time.Second)) // setWeight 50
	if p.Status.Step != 3 || p.Status.Weight != 50 || p.Status.Analysis[0].Failed != 1 {
		t.Fatalf("at weight 50: %+v", p.Status)
	}
	// A second failure, in the middle of an hour's pause: aborted there.
	in = input(r, p.Status, 25*time.Second)
	if due := DueChecks(in); len(due) != 1 {
		t.Fatalf("not due during the pause: %v", due)
	}
	in.Results = fail
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseAborted || !strings.Contains(p.Status.Message, "background analysis: check bg failed 2 times") || p.Status.Analysis != nil {
		t.Fatalf("second failure: %s %q %+v", p.Status.Phase, p.Status.Message, p.Status.Analysis)
	}
	if tr := ChecksTrailer(p.Checks); tr != "bg=500 fail" {
		t.Errorf("the abort's Sluice-Checks trailer: %q, want the analysis's check", tr)
	}

	// A promotion ends it.
	st := inflight(3, 50, v1alpha1.PhasePaused, 0)
	st.Analysis = []v1alpha1.CheckState{{Name: "bg", Passed: 3}}
	st.AnalysisStartedAt = at(0)
	p = Next(input(release(t, steps, extra+"  promote: {revision: 2222222}\n"), st, time.Minute))
	if p.Status.Phase != v1alpha1.PhasePromoting || p.Status.Analysis != nil || p.Status.AnalysisStartedAt != nil {
		t.Fatalf("promotion: %+v", p.Status)
	}
	if due := DueChecks(input(r, p.Status, 2*time.Minute)); len(due) != 0 {
		t.Fatalf("due while promoting: %v", due)
	}
}

func TestAnalysisValidation(t *testing.T) {
	for _, tt := range []struct{ strategy, analysis, want string }{
		{"    canary: {steps: [{setWeight: 5}]}", "{checks: [nope]}", `spec.analysis.checks[0]: check "nope" is not defined`},
		{"    canary: {steps: [{setWeight: 5}]}", "{checks: [once], startingStep: 1}", "spec.analysis.startingStep: must be a step index, 0 to 0, got 1"},
		{"    rolling: {}", "{checks: [once]}", "spec.analysis: background analysis runs beside a canary's steps"},
		{"    canary: {steps: [{setWeight: 5}]}", "{checks: []}", "spec.analysis: names no check: set checks (background), preRollout, postPromotion or postRollout"},
	} {
		_, err := v1alpha1.ParseRelease("r.yaml", []byte(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: shop}
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
`+tt.strategy+`
  checks:
  - name: once
    webhook: {url: "http://smoke/run"}
  analysis: `+tt.analysis+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.analysis, err, tt.want)
		}
	}
}

// TestPostPromotionAnalysis: after the switch to the new version its
// post-promotion checks run their count; the previous version stays the
// stable track meanwhile (even with no scale-down delay); passing, the
// head goes to the stable track; failing, every request goes back to the
// previous version and the new one is aborted.
func TestPostPromotionAnalysis(t *testing.T) {
	steps := "    scaleDownDelay: 0s\n    canary:\n      steps:\n      - setWeight: 50\n      - setWeight: 100"
	extra := `  - name: post
    webhook: {url: "http://smoke/post"}
    interval: 10s
    count: 2
  analysis: {postPromotion: [post]}
`
	r := release(t, steps, extra)
	p := Next(input(r, inflight(1, 50, v1alpha1.PhaseProgressing, 0), time.Second))
	if p.Status.Phase != v1alpha1.PhasePromoting || p.Stable != StableFromStable || p.Route.Weight != 100 || !strings.Contains(p.Status.Message, "until the post-promotion analysis (post) passes") {
		t.Fatalf("promotion: %+v stable %v", p.Status, p.Stable)
	}
	promoting := p.Status
	in := input(r, promoting, time.Second)
	if due := DueChecks(in); len(due) != 1 || due[0] != "post" {
		t.Fatalf("due at the switch: %v", due)
	}
	in.Results = []Measurement{{Check: "post", Outcome: Pass, Value: "200"}}
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhasePromoting || p.Stable != StableFromStable || !p.WakeAt.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("after one of two: %+v stable %v wake %s", p.Status, p.Stable, p.WakeAt)
	}
	after := p.Status

	// Both pass: the head goes to the stable track.
	in = input(r, after, 11*time.Second)
	in.Results = []Measurement{{Check: "post", Outcome: Pass, Value: "200"}}
	if p = Next(in); p.Stable != StableFromHead || p.Status.Phase != v1alpha1.PhasePromoting {
		t.Fatalf("both passed: %+v stable %v", p.Status, p.Stable)
	}

	// The second fails: back to the previous version, aborted.
	in = input(r, after, 11*time.Second)
	in.Results = []Measurement{{Check: "post", Outcome: Fail, Value: "500"}}
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseAborted || p.Route.Weight != 0 || !p.DeleteCanary || p.Stable != StableFromStable ||
		!strings.Contains(p.Status.Message, "post-promotion analysis: check post failed 1 times") || p.Status.Stable.Digest != "s" {
		t.Fatalf("failed after the switch: %+v stable %v", p.Status, p.Stable)
	}
	if p.Status.AbortedDigest != "c" {
		t.Errorf("the failed version is not kept from being retried: %q", p.Status.AbortedDigest)
	}
}
