package strategy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// activeChecks names the checks the current state measures, and whether
// they run a counted number of times (a check step, post-rollout checks)
// or all the time (manual mode).
func (d *decision) activeChecks() ([]string, bool) {
	st := d.st()
	if st.Canary == nil || st.Stable == nil || st.Phase == v1alpha1.PhasePromoting || st.Rollback {
		return nil, false
	}
	if d.in.HeadDigest != st.Canary.Digest {
		// The canary is about to be replaced or rolled back (a revert):
		// measuring it is wasted, and a revert must query nothing.
		return nil, false
	}
	switch {
	case !d.spec.Strategy.Routed():
		if d.in.Observed.StableDigest != st.Canary.Digest || !d.in.Observed.StableReady {
			return nil, false // checks run once the rollout is healthy
		}
		if r := d.spec.Strategy.Rolling; r != nil {
			return r.Checks, true
		}
		return d.spec.Strategy.Recreate.Checks, true
	case d.spec.Strategy.Manual():
		return d.spec.Strategy.Canary.Checks, false
	case int(st.Step) < len(d.steps) && d.steps[st.Step].Check != nil:
		return d.steps[st.Step].Check, true
	}
	return nil, false
}

// DueChecks lists the checks the agent should measure now, before calling
// Next with their results. Measurement k of a check falls due at the start
// of its step plus k intervals, so due times survive restarts.
func DueChecks(in Input) []string {
	if in.Spec.Spec.Suspend {
		return nil // a suspended release measures nothing
	}
	d := &decision{in: in, spec: &in.Spec.Spec, steps: in.Spec.Spec.Strategy.Steps()}
	d.p.Status = in.Status
	names, counted := d.activeChecks()
	var due []string
	for _, n := range names {
		c := in.Spec.Spec.CheckByName(n)
		if c == nil {
			continue
		}
		done := d.measured(n)
		if counted && done >= count(c) {
			continue
		}
		if !in.Now.Before(d.stepStart().Add(time.Duration(done) * interval(c))) {
			due = append(due, n)
		}
	}
	return due
}

func count(c *v1alpha1.Check) int32 {
	if c.Count != nil {
		return *c.Count
	}
	return 1
}

func interval(c *v1alpha1.Check) time.Duration {
	if c.Interval != nil {
		return c.Interval.Duration
	}
	return DefaultCheckInterval
}

func limit(v *int32) int32 {
	if v != nil {
		return *v
	}
	return 0
}

func (d *decision) state(name string) *v1alpha1.CheckState {
	for i := range d.st().Checks {
		if d.st().Checks[i].Name == name {
			return &d.st().Checks[i]
		}
	}
	d.st().Checks = append(d.st().Checks, v1alpha1.CheckState{Name: name})
	return &d.st().Checks[len(d.st().Checks)-1]
}

func (d *decision) measured(name string) int32 {
	for _, c := range d.st().Checks {
		if c.Name == name {
			return c.Passed + c.Failed + c.Inconclusive
		}
	}
	return 0
}

// foldChecks adds this pass's results of names to the status counters and
// reports whether a check has now failed beyond its limits, and why.
func (d *decision) foldChecks(names []string) (bool, string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, m := range d.in.Results {
		if !want[m.Check] {
			continue
		}
		s := d.state(m.Check)
		switch m.Outcome {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		default:
			s.Inconclusive++
		}
		s.Last = m.Value
	}
	for _, n := range names {
		c := d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		for _, s := range d.st().Checks {
			if s.Name != n {
				continue
			}
			if s.Failed > limit(c.FailureLimit) {
				return true, fmt.Sprintf("check %s failed %d times (limit %d), last %s", n, s.Failed, limit(c.FailureLimit), s.Last)
			}
			if s.Inconclusive > limit(c.InconclusiveLimit) {
				return true, fmt.Sprintf("check %s was inconclusive %d times (limit %d)", n, s.Inconclusive, limit(c.InconclusiveLimit))
			}
		}
	}
	return false, ""
}

// checksDone reports whether every named check has all its measurements.
func (d *decision) checksDone(names []string) bool {
	for _, n := range names {
		c := d.spec.CheckByName(n)
		if c != nil && d.measured(n) < count(c) {
			return false
		}
	}
	return true
}

// wakeForChecks sets WakeAt to the next measurement due among names.
func (d *decision) wakeForChecks(names []string, counted bool) {
	var next time.Time
	for _, n := range names {
		c := d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		done := d.measured(n)
		if counted && done >= count(c) {
			continue
		}
		at := d.stepStart().Add(time.Duration(done) * interval(c))
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !next.IsZero() {
		if next.Before(d.in.Now) {
			next = d.in.Now
		}
		d.p.WakeAt = next
	}
}

// checksSummary is "name=last pass ..." for messages and trailers.
func (d *decision) checksSummary() string {
	return ChecksTrailer(d.st().Checks)
}

// ChecksTrailer formats check states as the Sluice-Checks trailer:
// "success-rate=0.998 pass, smoke=200 pass".
func ChecksTrailer(cs []v1alpha1.CheckState) string {
	var parts []string
	for _, c := range cs {
		verdict := "pass"
		if c.Failed > 0 {
			verdict = "fail"
		} else if c.Inconclusive > 0 && c.Passed == 0 {
			verdict = "inconclusive"
		}
		parts = append(parts, fmt.Sprintf("%s=%s %s", c.Name, c.Last, verdict))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
