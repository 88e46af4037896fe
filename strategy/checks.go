package strategy

import (
	"fmt"
	"slices"
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
	if post := d.postPromotion(); len(post) > 0 && st.Canary != nil && d.in.HeadDigest == st.Canary.Digest {
		return post, d.postWindow() == 0
	}
	if st.Canary == nil || st.Stable == nil || st.Phase == v1alpha1.PhasePromoting || st.Rollback {
		return nil, false
	}
	if d.in.HeadDigest != st.Canary.Digest {
		// The canary is about to be replaced or rolled back (a revert):
		// measuring it is wasted, and a revert must query nothing.
		return nil, false
	}
	if pre := d.preRolloutChecks(); len(pre) > 0 {
		if !d.in.Observed.CanaryReady {
			return nil, false
		}
		return pre, true
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
	case int(st.Step) < len(d.steps) && d.steps[st.Step].Pause != nil && d.steps[st.Step].Pause.Gate != "":
		if c := d.spec.Gates.ConfirmedBy(d.steps[st.Step].Pause.Gate); c != "" {
			return []string{c}, false
		}
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
	due := d.stepRun().due(names, counted)
	if a := d.analysis(); a != nil {
		for _, n := range a.due(d.spec.Analysis.Checks, false) {
			if !slices.Contains(due, n) {
				due = append(due, n)
			}
		}
	}
	return due
}

// checkRun is a set of checks measured together: a step's, counted in
// status.checks from the step's start, or the background analysis, in
// status.analysis from its own start.
type checkRun struct {
	d      *decision
	states *[]v1alpha1.CheckState
	start  time.Time
}

// analysis is the background analysis run, nil when it does not run: it
// runs while a canary of the head is in flight (not a rollback, not
// promoting) from spec.analysis.startingStep on.
func (d *decision) analysis() *checkRun {
	a, st := d.spec.Analysis, d.st()
	if a == nil || st.Canary == nil || st.Stable == nil || st.Phase == v1alpha1.PhasePromoting || st.Rollback ||
		d.in.HeadDigest != st.Canary.Digest || st.Step < a.StartingStep {
		return nil
	}
	start := d.in.Now
	if st.AnalysisStartedAt != nil {
		start = *st.AnalysisStartedAt
	}
	return &checkRun{d: d, states: &st.Analysis, start: start}
}

// background folds the background analysis's results; a failure aborts.
// It reports whether the canary goes on (then wakeForAnalysis, after the
// step's own wake, keeps its measurements due).
func (d *decision) background() bool {
	a := d.analysis()
	if a == nil {
		return true
	}
	st := d.st()
	if st.AnalysisStartedAt == nil {
		t := d.in.Now
		st.AnalysisStartedAt = &t
	}
	if failed, why := a.fold(d.spec.Analysis.Checks); failed {
		// The trailer says why: the analysis's checks beside the step's.
		states := append(append([]v1alpha1.CheckState(nil), st.Checks...), st.Analysis...)
		d.abort(v1alpha1.PhaseAborted, "background analysis: "+why, true)
		d.p.Checks = states
		return false
	}
	return true
}

// wakeForAnalysis wakes the release for the background analysis's next
// measurement, if it comes before whatever else the pass set.
func (d *decision) wakeForAnalysis() {
	if a := d.analysis(); a != nil {
		a.wake(d.spec.Analysis.Checks, false)
	}
}

// postPromotion names the post-promotion checks while a promotion (not a
// rollback) is switched to the new version.
func (d *decision) postPromotion() []string {
	st := d.st()
	if a := d.spec.Analysis; a != nil && st.Phase == v1alpha1.PhasePromoting && !st.Rollback {
		return a.PostPromotion.Checks
	}
	return nil
}

// postWindow is how long the post-promotion checks watch, 0 when each
// runs its count instead.
func (d *decision) postWindow() time.Duration {
	if a := d.spec.Analysis; a != nil && a.PostPromotion.Duration != nil {
		return a.PostPromotion.Duration.Duration
	}
	return 0
}

// postDone says whether the post-promotion checks are over: their window
// has passed, or each ran its count.
func (d *decision) postDone(post []string) bool {
	if w := d.postWindow(); w > 0 {
		return !d.in.Now.Before(d.stepStart().Add(w))
	}
	return d.stepRun().done(post)
}

// wakePost wakes the release for the next post-promotion measurement, or
// the end of their window.
func (d *decision) wakePost(post []string) {
	w := d.postWindow()
	d.stepRun().wake(post, w == 0)
	if end := d.stepStart().Add(w); w > 0 && end.After(d.in.Now) && (d.p.WakeAt.IsZero() || end.Before(d.p.WakeAt)) {
		d.p.WakeAt = end
	}
}

// endAnalysis forgets the background and pre-rollout analysis of a canary
// that ended.
func (d *decision) endAnalysis() {
	d.st().AnalysisStartedAt, d.st().Analysis = nil, nil
	d.st().PreRolloutPassed = false
}

// preRolloutChecks names the pre-rollout checks while the canary in flight
// has not passed them yet (a rollback has none).
func (d *decision) preRolloutChecks() []string {
	st := d.st()
	if a := d.spec.Analysis; a != nil && !st.PreRolloutPassed && !st.Rollback && st.Step == 0 && st.Phase != v1alpha1.PhasePromoting {
		return a.PreRollout
	}
	return nil
}

// preRollout runs the pre-rollout checks of a ready canary before its
// first step, with no traffic on it; it reports whether the steps may run
// in this pass.
func (d *decision) preRollout() bool {
	pre := d.preRolloutChecks()
	if len(pre) == 0 {
		return true
	}
	st, r := d.st(), d.stepRun()
	if failed, why := r.fold(pre); failed {
		d.abort(v1alpha1.PhaseAborted, "pre-rollout: "+why, true)
		return false
	}
	if !r.done(pre) {
		st.Message = "pre-rollout checks running before any traffic: " + strings.Join(pre, ", ")
		r.wake(pre, true)
		return false
	}
	summary := d.checksSummary()
	st.PreRolloutPassed = true
	st.Phase = v1alpha1.PhaseProgressing
	st.Message = "pre-rollout checks passed: " + summary
	d.transition("pre-rollout checks passed")
	d.p.WakeAt = d.in.Now // the first step runs in the next pass
	return false
}

// stepRun is the current step's run.
func (d *decision) stepRun() checkRun {
	return checkRun{d: d, states: &d.st().Checks, start: d.stepStart()}
}

// due lists the names whose next measurement is due now.
func (r checkRun) due(names []string, counted bool) []string {
	var due []string
	for _, n := range names {
		c := r.d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		if counted && r.measured(n) >= count(c) {
			continue
		}
		if !r.d.in.Now.Before(r.start.Add(time.Duration(r.attempts(n)) * interval(c))) {
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

func (r checkRun) state(name string) *v1alpha1.CheckState {
	list := r.states
	for i := range *list {
		if (*list)[i].Name == name {
			return &(*list)[i]
		}
	}
	*list = append(*list, v1alpha1.CheckState{Name: name})
	return &(*list)[len(*list)-1]
}

func (r checkRun) measured(name string) int32 {
	for _, c := range *r.states {
		if c.Name == name {
			return c.Passed + c.Failed + c.Inconclusive
		}
	}
	return 0
}

// attempts counts a check's measurements, those on too few samples too:
// the next one falls due that many intervals after the step's start.
func (r checkRun) attempts(name string) int32 {
	for _, c := range *r.states {
		if c.Name == name {
			return c.Passed + c.Failed + c.Inconclusive + c.TooFew
		}
	}
	return 0
}

// starved says, for the first of names whose measurements have rested on
// too few samples for longer than its samplesTimeout, why, and whether
// the check fails for it (else it pauses the canary).
func (r checkRun) starved(names []string) (why string, fail bool) {
	for _, n := range names {
		c := r.d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		for _, s := range *r.states {
			if s.Name != n || s.TooFew == 0 {
				continue
			}
			timeout := v1alpha1.DefaultSamplesTimeout
			if c.SamplesTimeout != nil {
				timeout = c.SamplesTimeout.Duration
			}
			if time.Duration(s.TooFew-1)*interval(c) < timeout { // measured too few from the first to now
				continue
			}
			return fmt.Sprintf("check %s had fewer than %d samples for %s (last %s)", n, c.Samples(), timeout, s.Last), c.OnTooFewSamples != v1alpha1.TooFewPause
		}
	}
	return "", false
}

// fold adds this pass's results of names to the run's counters and
// reports whether a check has now failed beyond its limits, and why.
func (r checkRun) fold(names []string) (bool, string) {
	d := r.d
	r.record(names)
	for _, n := range names {
		c := d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		for _, s := range *r.states {
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
	if why, fail := r.starved(names); fail {
		return true, why
	}
	return false, ""
}

// record adds this pass's results of names to the run's counters and
// returns them.
func (r checkRun) record(names []string) []Measurement {
	var got []Measurement
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, m := range r.d.in.Results {
		if !want[m.Check] {
			continue
		}
		s := r.state(m.Check)
		switch m.Outcome {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		case TooFew:
			s.TooFew++
		default:
			s.Inconclusive++
		}
		s.Last = m.Value
		if m.Compare != nil {
			s.Compare = m.Compare
		}
		got = append(got, m)
	}
	return got
}

// done reports whether every named check has all its measurements.
func (r checkRun) done(names []string) bool {
	for _, n := range names {
		c := r.d.spec.CheckByName(n)
		if c != nil && r.measured(n) < count(c) {
			return false
		}
	}
	return true
}

// wake sets WakeAt to the next measurement due among names, unless
// something else wakes the release sooner.
func (r checkRun) wake(names []string, counted bool) {
	var next time.Time
	for _, n := range names {
		c := r.d.spec.CheckByName(n)
		if c == nil {
			continue
		}
		if counted && r.measured(n) >= count(c) {
			continue
		}
		at := r.start.Add(time.Duration(r.attempts(n)) * interval(c))
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return
	}
	if next.Before(r.d.in.Now) {
		next = r.d.in.Now
	}
	if r.d.p.WakeAt.IsZero() || next.Before(r.d.p.WakeAt) {
		r.d.p.WakeAt = next
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
