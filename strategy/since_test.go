package strategy

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestLookback(t *testing.T) {
	for _, tt := range []struct {
		queries []string
		want    time.Duration
	}{
		{[]string{`sum(rate(x[1m])) / sum(rate(y[30s]))`}, time.Minute},
		{[]string{`rate(x[5s])`, `sum(increase(x[2m]))`}, 2 * time.Minute},
		{[]string{`max_over_time(rate(x[1m])[10m:30s])`}, 10 * time.Minute},
		// A label value that looks like a range is read as one: the only
		// cost is a later first measurement, never an earlier one.
		{[]string{`x{le="[1m]"}`}, time.Minute},
		{[]string{`up`}, 0},
		{[]string{`rate(x[1h30m])`}, 90 * time.Minute},
	} {
		if got := lookback(tt.queries...); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.queries, got, tt.want)
		}
	}
}

// TestNoMeasurementBeforeTheVersion: a check's window never reaches back
// past the canary's start, where the same Service names carried the last
// version's requests.
func TestNoMeasurementBeforeTheVersion(t *testing.T) {
	since := t0
	cc := CheckContext{Revision: canaryRev, Since: since, Released: since}
	if why := tooEarly(cc, since.Add(30*time.Second), `rate(x[1m])`); !strings.Contains(why, "1m0s window reaches back to the previous version's requests; first measurement of 2222222 in 30s") {
		t.Errorf("30s in, a [1m] window, the track released at the start: %q", why)
	}
	if why := tooEarly(cc, since.Add(time.Minute), `rate(x[1m])`); why != "" {
		t.Errorf("a minute in: %q", why)
	}
	if why := tooEarly(CheckContext{Since: since}, since.Add(time.Second), `rate(x[1m])`); why != "" {
		t.Errorf("a track never used before: %q", why)
	}
	if why := tooEarly(CheckContext{Since: since, Released: since.Add(-2 * time.Minute)}, since.Add(time.Second), `rate(x[1m])`); why != "" {
		t.Errorf("a track released long before: %q", why)
	}
	// A drain's end releases the track.
	drained := inflight(0, 0, v1alpha1.PhaseAborted, 0)
	drained.Canary, drained.DrainUntil = nil, at(0)
	if p := Next(input(release(t, canarySteps, ""), drained, time.Second)); p.Status.TrackReleasedAt == nil || !p.Status.TrackReleasedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("drain end: released %v", p.Status.TrackReleasedAt)
	}
	// The status carries the start from the canary's first pass to its end.
	r := release(t, canarySteps, "")
	in := input(r, v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(stableRev, "s")}, time.Minute)
	p := Next(in)
	if p.Status.Canary == nil || p.Status.CanaryStartedAt == nil || !p.Status.CanaryStartedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("canary start: %+v", p.Status)
	}
	p = Next(input(r, p.Status, 2*time.Minute))
	if !p.Status.CanaryStartedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("moved at the next step: %s", p.Status.CanaryStartedAt)
	}
	abort := release(t, canarySteps, "  abort: {revision: 2222222}\n")
	if p = Next(input(abort, p.Status, 3*time.Minute)); p.Status.CanaryStartedAt != nil {
		t.Fatalf("kept after the abort: %+v", p.Status)
	}
}

// TestPostPromotionWindow: postPromotion {checks, duration} watches for
// the duration, each check at its interval whatever its count, the
// previous version held until the window ends; a failure inside it
// switches back.
func TestPostPromotionWindow(t *testing.T) {
	steps := "    scaleDownDelay: 0s\n    canary:\n      steps:\n      - setWeight: 50\n      - setWeight: 100"
	extra := `  - name: post
    webhook: {url: "http://smoke/post"}
    interval: 10s
  analysis:
    postPromotion: {checks: [post], duration: 1m}
`
	r := release(t, steps, extra)
	st := inflight(1, 100, v1alpha1.PhasePromoting, 0)
	pass := []Measurement{{Check: "post", Outcome: Pass, Value: "200"}}
	for i := range 6 {
		in := input(r, st, time.Duration(i)*10*time.Second)
		if due := DueChecks(in); len(due) != 1 {
			t.Fatalf("measurement %d (count 1 does not apply in a window): due %v", i, due)
		}
		in.Results = pass
		p := Next(in)
		if p.Stable != StableFromStable || p.Status.Phase != v1alpha1.PhasePromoting || !p.WakeAt.Equal(t0.Add(time.Duration(i+1)*10*time.Second)) {
			t.Fatalf("measurement %d: stable from %s, %s, wake %s", i, p.Stable, p.Status.Phase, p.WakeAt)
		}
		st = p.Status
	}
	in := input(r, st, time.Minute)
	in.Results = pass
	if p := Next(in); p.Stable != StableFromHead {
		t.Fatalf("the window is over and the previous version is still held: %+v", p)
	}
	in.Results = []Measurement{{Check: "post", Outcome: Fail, Value: "500"}}
	in.Now = t0.Add(50 * time.Second)
	if p := Next(in); p.Status.Phase != v1alpha1.PhaseAborted || !strings.Contains(p.Status.Message, "post-promotion analysis: check post failed") {
		t.Fatalf("a failure inside the window: %s %q", p.Status.Phase, p.Status.Message)
	}
}
