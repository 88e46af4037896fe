package strategy

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestTooFewSamples: a measurement on too few samples is no verdict — the
// step neither passes nor fails, the next measurement falls due an
// interval later — and once that has lasted samplesTimeout the check
// fails (default) or holds the canary Paused (onTooFewSamples: pause).
func TestTooFewSamples(t *testing.T) {
	check := func(extra string) string {
		return `  - name: rate
    prometheus: {address: "http://prom:9090", query: "q", countQuery: "n"}
    successCondition: ">= 0.99"
    count: 2
    interval: 10s
    samplesTimeout: 30s
` + extra
	}
	steps := "    canary:\n      steps:\n      - setWeight: 10\n      - check: [rate]\n      - setWeight: 50"
	few := []Measurement{{Check: "rate", Outcome: TooFew, Value: "1 on 61 samples, fewer than 299"}}
	for _, tt := range []struct {
		extra string
		want  v1alpha1.Phase
	}{{"", v1alpha1.PhaseAborted}, {"    onTooFewSamples: pause\n", v1alpha1.PhasePaused}} {
		r := release(t, steps, check(tt.extra))
		st := inflight(1, 10, v1alpha1.PhaseProgressing, 0)
		in := input(r, st, 0)
		if due := DueChecks(in); len(due) != 1 {
			t.Fatalf("due at the step's start: %v", due)
		}
		for i := range 3 {
			in.Results = few
			p := Next(in)
			if p.Status.Step != 1 || p.Status.Phase == v1alpha1.PhaseAborted || p.Status.Checks[0].TooFew != int32(i+1) || p.Status.Checks[0].Passed+p.Status.Checks[0].Failed != 0 {
				t.Fatalf("too few samples #%d decided something: %+v", i+1, p.Status)
			}
			if want := t0.Add(time.Duration(i+1) * 10 * time.Second); !p.WakeAt.Equal(want) {
				t.Fatalf("next measurement at %s, want %s", p.WakeAt, want)
			}
			in = input(r, p.Status, time.Duration(i+1)*10*time.Second)
			if due := DueChecks(in); len(due) != 1 {
				t.Fatalf("not due an interval later: %v", due)
			}
		}
		in.Results = few
		p := Next(in)
		if p.Status.Phase != tt.want || !strings.Contains(p.Status.Message, "fewer than 299 samples for 30s") {
			t.Fatalf("after samplesTimeout: %s %q, want %s", p.Status.Phase, p.Status.Message, tt.want)
		}
		if tt.want == v1alpha1.PhasePaused {
			// Enough samples at last: the run goes on and passes.
			in = input(r, p.Status, 50*time.Second)
			in.Results = []Measurement{{Check: "rate", Outcome: Pass, Value: "1"}}
			p = Next(in)
			in = input(r, p.Status, 60*time.Second)
			in.Results = []Measurement{{Check: "rate", Outcome: Pass, Value: "1"}}
			if p = Next(in); p.Status.Step != 2 {
				t.Fatalf("enough samples after the pause: %+v", p.Status)
			}
		}
	}
}

func TestMinSamplesFor(t *testing.T) {
	for _, tt := range []struct {
		cond string
		want int32
	}{{">= 0.99", 299}, {"> 0.95", 59}, {"< 0.05", 59}, {"<= 0.01", 299}, {"< 500", 1}, {">= 1", 1}} {
		c, err := v1alpha1.ParseCondition(tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := v1alpha1.MinSamplesFor(c); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.cond, got, tt.want)
		}
	}
}

func TestBestCase(t *testing.T) {
	cond := func(s string) v1alpha1.Condition {
		c, err := v1alpha1.ParseCondition(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tt := range []struct {
		cond      string
		v, n, min float64
		best      float64
		ok        bool
	}{
		{">= 0.99", 0.5, 25, 59, 0.788135593220339, true}, // 12.5 failed of 25: at best 12.5 of 59
		{">= 0.99", 1, 61, 299, 1, true},
		{"< 0.05", 0.5, 25, 59, 0.211864406779661, true}, // an error rate: falls toward 0
		{"< 500", 120, 10, 20, 0, false},                 // not a rate
		{">= 0.99", 1.5, 10, 20, 0, false},               // not a rate either
	} {
		best, ok := bestCase(tt.v, tt.n, tt.min, cond(tt.cond))
		if ok != tt.ok || (ok && (best-tt.best > 1e-12 || tt.best-best > 1e-12)) {
			t.Errorf("%s v=%v n=%v min=%v: %v %v, want %v %v", tt.cond, tt.v, tt.n, tt.min, best, ok, tt.best, tt.ok)
		}
	}
}
