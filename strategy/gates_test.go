package strategy

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestConfirmGate: a gate a check confirms is measured at the check's
// interval while the canary waits; failures only mean "not yet" (no
// failureLimit applies), a pass opens the gate, and an approval in Git
// still opens it without the check.
func TestConfirmGate(t *testing.T) {
	steps := "    canary:\n      steps:\n      - setWeight: 10\n      - pause: {gate: ship}\n      - setWeight: 50"
	extra := `  - name: cab
    webhook: {url: "http://cab/approve"}
    interval: 20s
  gates:
    confirm: [{gate: ship, check: cab}]
`
	r := release(t, steps, extra)
	if due := DueChecks(input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 0)); len(due) != 0 {
		t.Fatalf("due before the gate: %v", due)
	}
	in := input(r, inflight(1, 10, v1alpha1.PhaseProgressing, 0), time.Second)
	if due := DueChecks(in); len(due) != 1 || due[0] != "cab" {
		t.Fatalf("due at the gate: %v", due)
	}
	st := in.Status
	for i := range 5 { // five refusals: still waiting, measured every 20s
		in = input(r, st, time.Duration(i)*20*time.Second+time.Second)
		if due := DueChecks(in); len(due) != 1 {
			t.Fatalf("refusal %d: due %v", i, due)
		}
		in.Results = []Measurement{{Check: "cab", Outcome: Fail, Value: "409"}}
		p := Next(in)
		if p.Status.Phase != v1alpha1.PhasePaused || p.Status.Step != 1 || !strings.Contains(p.Status.Message, "check cab to confirm it (last 409)") {
			t.Fatalf("refusal %d: %s step %d %q", i, p.Status.Phase, p.Status.Step, p.Status.Message)
		}
		if want := t0.Add(time.Duration(i+1) * 20 * time.Second); !p.WakeAt.Equal(want) {
			t.Fatalf("refusal %d: wake %s, want %s", i, p.WakeAt, want)
		}
		st = p.Status
		if due := DueChecks(input(r, st, time.Duration(i)*20*time.Second+10*time.Second)); len(due) != 0 {
			t.Fatalf("due before its interval: %v", due)
		}
	}
	in = input(r, st, 101*time.Second)
	in.Results = []Measurement{{Check: "cab", Outcome: Pass, Value: "200"}}
	p := Next(in)
	if p.Status.Step != 2 || !p.Commit || !strings.Contains(p.Subject, "gate ship confirmed by check cab (200)") {
		t.Fatalf("confirmed: step %d commit %v %q", p.Status.Step, p.Commit, p.Subject)
	}
	// An approval in Git opens it too, with no measurement.
	approved := release(t, steps, extra+"    approved: [{gate: ship, revision: 2222222}]\n")
	if p := Next(input(approved, inflight(1, 10, v1alpha1.PhasePaused, 0), time.Second)); p.Status.Step != 2 {
		t.Fatalf("approved: %+v", p.Status)
	}
	// A gate no check confirms measures nothing.
	plain := release(t, steps, "")
	if due := DueChecks(input(plain, inflight(1, 10, v1alpha1.PhasePaused, 0), time.Hour)); len(due) != 0 {
		t.Fatalf("due at a plain gate: %v", due)
	}
}

// TestPreRollout: pre-rollout checks run once the canary is ready and
// before its first step (no traffic), each its count times; a failure
// aborts; once passed they are not run again for this canary, and a new
// canary runs them afresh.
func TestPreRollout(t *testing.T) {
	steps := "    canary:\n      steps:\n      - setWeight: 10\n      - setWeight: 50"
	extra := `  - name: smoke
    webhook: {url: "http://smoke/run"}
    interval: 5s
    count: 2
  analysis: {preRollout: [smoke]}
`
	r := release(t, steps, extra)
	st := inflight(0, 0, v1alpha1.PhaseProgressing, 0)
	notReady := input(r, st, time.Second)
	notReady.Observed.CanaryReady = false
	if due := DueChecks(notReady); len(due) != 0 {
		t.Fatalf("due before the canary is ready: %v", due)
	}
	in := input(r, st, time.Second)
	if due := DueChecks(in); len(due) != 1 || due[0] != "smoke" {
		t.Fatalf("due when ready: %v", due)
	}
	in.Results = []Measurement{{Check: "smoke", Outcome: Pass, Value: "200"}}
	p := Next(in)
	if p.Status.Weight != 0 || p.Status.Step != 0 || p.Status.PreRolloutPassed || !p.WakeAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after one of two: weight %d step %d passed %v wake %s", p.Status.Weight, p.Status.Step, p.Status.PreRolloutPassed, p.WakeAt)
	}
	// A failure on the second aborts, before any traffic.
	in = input(r, p.Status, 5*time.Second)
	in.Results = []Measurement{{Check: "smoke", Outcome: Fail, Value: "500"}}
	if f := Next(in); f.Status.Phase != v1alpha1.PhaseAborted || !strings.Contains(f.Status.Message, "pre-rollout: check smoke failed 1 times") {
		t.Fatalf("failure: %s %q", f.Status.Phase, f.Status.Message)
	}
	// A pass on the second: passed, committed, and the steps begin.
	in.Results = []Measurement{{Check: "smoke", Outcome: Pass, Value: "200"}}
	p = Next(in)
	if !p.Status.PreRolloutPassed || !p.Commit || p.Status.Weight != 0 || p.Subject != "pre-rollout checks passed" || p.Status.Checks != nil {
		t.Fatalf("passed: %+v commit %v %q", p.Status, p.Commit, p.Subject)
	}
	p = Next(input(r, p.Status, 6*time.Second))
	if p.Status.Step != 1 || p.Status.Weight != 10 {
		t.Fatalf("first step: %+v", p.Status)
	}
	if due := DueChecks(input(r, p.Status, time.Minute)); len(due) != 0 {
		t.Fatalf("due after passing: %v", due)
	}
	// A newer version starts a new canary, which runs them again.
	in = input(r, p.Status, 2*time.Minute)
	in.HeadRevision, in.HeadDigest = "3333333cccccccccccccccccccccccccccccccc", "d"
	p = Next(in)
	if p.Status.PreRolloutPassed || p.Status.Step != 0 {
		t.Fatalf("new canary: %+v", p.Status)
	}
}
