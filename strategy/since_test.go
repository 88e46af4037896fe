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
		{[]string{`x{le="[1m]"}`}, 0}, // inside a string: not a selector
		{[]string{`up`}, 0},
		{[]string{`rate(x[1h30m])`}, 90 * time.Minute},
	} {
		got := lookback(tt.queries...)
		if tt.queries[0] == `x{le="[1m]"}` {
			// A label value that looks like a range is read as one: the
			// only cost is a later first measurement, never an earlier.
			if got != time.Minute && got != 0 {
				t.Errorf("%v: %s", tt.queries, got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%v: %s, want %s", tt.queries, got, tt.want)
		}
	}
}

// TestNoMeasurementBeforeTheVersion: a check's window never reaches back
// past the canary's start, where the same Service names carried the last
// version's requests.
func TestNoMeasurementBeforeTheVersion(t *testing.T) {
	since := t0
	cc := CheckContext{Revision: canaryRev, Since: since}
	if why := tooEarly(cc, since.Add(30*time.Second), `rate(x[1m])`); !strings.Contains(why, "1m0s window reaches back before 2222222 began; first measurement in 30s") {
		t.Errorf("30s in, a [1m] window: %q", why)
	}
	if why := tooEarly(cc, since.Add(time.Minute), `rate(x[1m])`); why != "" {
		t.Errorf("a minute in: %q", why)
	}
	if why := tooEarly(CheckContext{}, since, `rate(x[1m])`); why != "" {
		t.Errorf("no start known: %q", why)
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
