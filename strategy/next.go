package strategy

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Next decides the release's next status and plan. It is a pure function
// of its input: the same input always gives the same plan.
func Next(in Input) Plan {
	d := &decision{in: in, spec: &in.Spec.Spec, steps: in.Spec.Spec.Strategy.Steps()}
	d.p.Status = in.Status
	d.p.Status.Checks = append([]v1alpha1.CheckState(nil), in.Status.Checks...)
	d.p.Stable = StableFromStable
	d.run()
	d.finish()
	return d.p
}

// Current is the plan for the status as it stands, with no decision taken:
// the objects the agent applies for it (which render the stable track comes
// from, the canary track and the route). It is what `sluice diff` shows;
// right after a pass it equals that pass's plan.
func Current(in Input) Plan {
	d := &decision{in: in, spec: &in.Spec.Spec, steps: in.Spec.Spec.Strategy.Steps()}
	d.p.Status = in.Status
	st := d.st()
	d.p.Stable = StableFromStable
	switch {
	case st.Stable == nil:
		d.p.Stable = StableFromHead // installing
	case !d.spec.Strategy.Routed() && st.Canary != nil:
		d.p.Stable = StableFromHead // rolling out
	case st.Phase == v1alpha1.PhasePromoting && !d.keepingPrevious():
		d.p.Stable = StableFromHead
	}
	d.p.Suspended = d.spec.Suspend
	d.shape()
	return d.p
}

// shape sets the plan's canary track and route from the status.
func (d *decision) shape() {
	st := d.st()
	if st.Canary != nil && st.Stable != nil && d.spec.Strategy.Routed() {
		d.p.Canary = true
		d.p.Route = d.route()
		d.p.CanaryReplicas = d.canaryReplicas()
		d.p.Baseline = d.baseline()
	}
}

type decision struct {
	in    Input
	spec  *v1alpha1.ReleaseSpec
	steps []v1alpha1.Step
	p     Plan
}

func (d *decision) st() *v1alpha1.ReleaseStatus { return &d.p.Status }

func (d *decision) head() *v1alpha1.Revision {
	return &v1alpha1.Revision{Revision: d.in.HeadRevision, Digest: d.in.HeadDigest}
}

// run picks the one state function that applies.
func (d *decision) run() {
	st := d.st()
	if d.suspended() {
		return
	}
	d.draining()
	// A promoted version in the rollback window the head equals, if any.
	back := d.inWindow()
	switch {
	case st.Stable == nil:
		d.install()
	case !d.spec.Strategy.Routed():
		d.rollout()
	case st.Canary != nil && d.in.HeadDigest == st.Stable.Digest:
		// A git revert mid-canary: roll back at once, run no checks.
		d.p.RollbackFrom, d.p.RollbackTo = st.Canary.Revision, st.Stable.Revision
		d.abort(v1alpha1.PhaseRolledBack, "the head is the stable version again (a revert): rolled back at once", false)
	case st.Canary != nil && d.in.HeadDigest != st.Canary.Digest && back != nil:
		d.startRollback(back)
	case st.Canary != nil && d.in.HeadDigest != st.Canary.Digest:
		d.startCanary("a newer version replaces the canary")
	case st.Canary != nil:
		d.canary()
	case d.in.HeadDigest == st.Stable.Digest:
		d.steady()
	case d.in.HeadDigest == st.AbortedDigest && d.retryRequested():
		if !d.holdForDrain() {
			d.startCanary("retry of the aborted revision " + short(st.AbortedRevision))
			d.clearAborted()
		}
	case d.in.HeadDigest == st.AbortedDigest:
		d.p.Status.Phase = st.Phase // stays Aborted: not retried until the version changes or spec.retry names it
	case back != nil:
		// A git revert after a promotion: one of the last promoted versions.
		d.startRollback(back)
	case d.holdForDrain():
	default:
		d.startCanary("a new version")
	}
}

// holdForDrain keeps a new canary off the canary track while the version
// traffic has just left is draining from it: taking the track over would
// replace pods the data plane may still send requests to. The canary
// starts when the drain ends (finish wakes the release then). A rollback
// does not wait: its speed is its point.
func (d *decision) holdForDrain() bool {
	return d.p.Drain
}

// finish fills the parts of the plan derived from the final status.
func (d *decision) finish() {
	st := d.st()
	// A phase change is a transition too (entering a pause, say), but it
	// does not restart the step: its start time and checks stay.
	if !d.p.Commit && st.Phase != d.in.Status.Phase {
		d.p.Commit = true
		d.p.Subject = fmt.Sprintf("%s: %s", st.Phase, st.Message)
		d.p.Checks = st.Checks
	}
	if d.p.Commit {
		st.ObservedRevision = d.in.HeadRevision
	}
	switch prev := d.in.Status.Canary; {
	case st.Canary == nil:
		st.CanaryStartedAt = nil
	case prev == nil || prev.Digest != st.Canary.Digest || st.CanaryStartedAt == nil && d.p.Commit:
		t := d.in.Now
		st.CanaryStartedAt = &t
	}
	if d.p.Drain && st.DrainUntil.After(d.in.Now) && (d.p.WakeAt.IsZero() || st.DrainUntil.Before(d.p.WakeAt)) {
		d.p.WakeAt = *st.DrainUntil
	}
	d.shape()
}

// advanceTo records a transition: what changed and when the new state began.
func (d *decision) transition(subject string) {
	d.p.Commit = true
	d.p.Subject = subject
	d.p.Checks = d.st().Checks
	t := d.in.Now
	d.st().StepStartedAt = &t
	d.st().Checks = nil
}

// install applies the head as the stable track of a release with none.
func (d *decision) install() {
	d.p.Stable = StableFromHead
	st := d.st()
	if d.in.Observed.StableDigest == d.in.HeadDigest && d.in.Observed.StableReady {
		d.setStable(d.head())
		st.Canary, st.Step, st.Weight = nil, 0, 0
		st.Phase = v1alpha1.PhaseSucceeded
		st.Message = "installed " + short(d.in.HeadRevision)
		d.transition("installed " + short(d.in.HeadRevision))
		return
	}
	if st.Phase != v1alpha1.PhaseProgressing || st.Canary == nil || st.Canary.Digest != d.in.HeadDigest {
		st.Phase = v1alpha1.PhaseProgressing
		st.Canary = d.head()
		st.Message = "installing " + short(d.in.HeadRevision) + " as the first stable version"
		d.transition("installing " + short(d.in.HeadRevision))
		return
	}
	d.p.WakeAt = d.in.Now.Add(readyRecheck)
}

// steady keeps the stable version serving; nothing to commit.
func (d *decision) steady() {
	if d.st().Phase == "" || d.st().Phase == v1alpha1.PhaseProgressing {
		d.st().Phase = v1alpha1.PhaseIdle
	}
}

func (d *decision) startCanary(why string) {
	st := d.st()
	st.Canary = d.head()
	st.Rollback = false
	d.endAnalysis()
	if st.DrainUntil != nil {
		d.released()
	}
	st.DrainUntil, d.p.Drain = nil, false // the canary track is in use again
	st.Step, st.Weight = 0, 0
	st.Phase = v1alpha1.PhaseProgressing
	st.Message = fmt.Sprintf("canary %s started: %s", short(d.in.HeadRevision), why)
	d.transition(fmt.Sprintf("canary %s started", short(d.in.HeadRevision)))
	if d.spec.Strategy.Manual() {
		st.Weight = 0
	}
}

// abort routes everything to stable and deletes the canary. A failure with
// onFailure: revert also restores the release's files.
func (d *decision) abort(phase v1alpha1.Phase, why string, failure bool) {
	st := d.st()
	if st.Canary != nil && phase == v1alpha1.PhaseAborted {
		d.markAborted()
	}
	st.Canary, st.Step, st.Weight = nil, 0, 0
	st.Rollback = false
	d.endAnalysis()
	st.Phase = phase
	st.Message = why
	d.p.DeleteCanary = true
	d.drain()
	d.p.RevertFiles = failure && d.spec.OnFailure == v1alpha1.OnFailureRevert
	d.transition(fmt.Sprintf("%s: %s", phase, why))
}

// canary runs the in-flight canary: requests first, then the current step.
func (d *decision) canary() {
	st := d.st()
	rev := st.Canary.Revision
	if a := d.spec.Abort; a != nil && v1alpha1.SameRevision(a.Revision, rev) {
		reason := a.Reason
		if reason == "" {
			reason = "aborted by request"
		}
		d.abort(v1alpha1.PhaseAborted, "aborted: "+reason, true)
		return
	}
	if d.in.Observed.Failed {
		d.abort(v1alpha1.PhaseAborted, "canary failed: "+d.in.Observed.Message, true)
		return
	}
	if st.Phase == v1alpha1.PhasePromoting {
		d.finishPromotion()
		return
	}
	if st.Rollback && d.in.Observed.CanaryReady {
		d.promote("rollback to a promoted version: no steps, no checks")
		return
	}
	if p := d.spec.Promote; p != nil && v1alpha1.SameRevision(p.Revision, rev) && d.checksClean(p.Force) {
		d.promote("promoted by request")
		return
	}
	if !d.in.Observed.CanaryReady || (d.baseline() && !d.in.Observed.BaselineReady) {
		if st.StepStartedAt != nil && d.in.Now.Sub(*st.StepStartedAt) > d.progressDeadline() {
			d.abort(v1alpha1.PhaseAborted, fmt.Sprintf("canary not ready after %s", d.progressDeadline()), true)
			return
		}
		d.p.WakeAt = d.in.Now.Add(readyRecheck)
		return
	}
	if r := d.in.Observed.RouteRejected; r != "" {
		// The data plane keeps its last good routing; so does sluice.
		st.Phase = v1alpha1.PhasePaused
		st.Message = "held: the Gateway rejects the route: " + r
		d.p.WakeAt = d.in.Now.Add(readyRecheck)
		return
	}
	if !d.preRollout() || !d.background() {
		return
	}
	defer d.wakeForAnalysis()
	if d.spec.Strategy.Manual() {
		d.manual()
		return
	}
	if int(st.Step) >= len(d.steps) {
		d.endOfSteps()
		return
	}
	d.step(d.steps[st.Step])
}

// checksClean reports whether no check of the current step has failed, so
// a promotion request may skip the remaining steps.
func (d *decision) checksClean(force bool) bool {
	if force {
		return true
	}
	for _, c := range d.st().Checks {
		if c.Failed > 0 {
			return false
		}
	}
	return true
}

// endOfSteps promotes, except a shadow run with promote: false, which ends
// keeping the stable version.
func (d *decision) endOfSteps() {
	if sh := d.spec.Strategy.Shadow; sh != nil && sh.Promote != nil && !*sh.Promote {
		st := d.st()
		d.markAborted()
		st.Canary, st.Step, st.Weight = nil, 0, 0
		st.Phase = v1alpha1.PhaseSucceeded
		st.Message = "shadow run finished; the stable version is kept (promote: false)"
		d.p.DeleteCanary = true
		d.drain()
		d.transition("shadow run finished")
		return
	}
	d.promote("all steps passed")
}

// promote routes all traffic to the canary and applies the head as the new
// stable; finishPromotion completes once the new stable is healthy.
// With a scale-down delay, the stable track keeps the previous version at
// full size for that long after the switch (a revert inside it is a route
// switch, as mid-canary); only then is the head applied to it.
func (d *decision) promote(why string) {
	st := d.st()
	st.Phase = v1alpha1.PhasePromoting
	st.Weight = 100
	d.endAnalysis()
	st.Message = "promoting " + short(st.Canary.Revision) + ": " + why
	d.transition("promoting " + short(st.Canary.Revision))
	if d.keepingPrevious() {
		if post := d.postPromotion(); len(post) > 0 {
			st.Message += fmt.Sprintf("; the stable track keeps %s until the post-promotion analysis (%s) passes", short(st.Stable.Revision), strings.Join(post, ", "))
			d.wakePost(post)
		} else {
			st.Message += fmt.Sprintf("; the stable track keeps %s for %s (scaleDownDelay)", short(st.Stable.Revision), d.spec.Strategy.KeepPrevious())
			d.p.WakeAt = st.StepStartedAt.Add(d.spec.Strategy.KeepPrevious())
		}
		return
	}
	d.p.Stable = StableFromHead
}

// keepingPrevious says whether a promotion is inside its scale-down delay:
// all traffic on the canary track, the previous version still the stable
// track. A rollback has it too: the data plane may still be sending
// requests to the stable track it has just left.
func (d *decision) keepingPrevious() bool {
	st := d.st()
	if post := d.postPromotion(); len(post) > 0 && !d.postDone(post) {
		return true // the post-promotion checks have not all passed yet
	}
	return st.StepStartedAt != nil && d.in.Now.Before(st.StepStartedAt.Add(d.spec.Strategy.KeepPrevious()))
}

// drain keeps the canary track traffic has just left for the scale-down
// delay, and in any case until the Gateway has taken the route that left
// it (draining): with scaleDownDelay 0s too, pods the data plane still
// sends requests to are not deleted, and no new canary takes the track
// (holdForDrain) while old requests could reach it.
func (d *decision) drain() {
	t := d.in.Now.Add(d.spec.Strategy.KeepPrevious())
	d.st().DrainUntil = &t
	d.p.Drain = true
}

// draining carries a drain on until its time, then ends it.
func (d *decision) draining() {
	st := d.st()
	if st.DrainUntil == nil {
		return
	}
	if d.in.Now.Before(*st.DrainUntil) {
		d.p.Drain = true
		return
	}
	if d.in.Observed.RoutePending && d.in.Now.Before(st.DrainUntil.Add(MaxDrainWait)) {
		// The Gateway has not taken the route that left the track yet.
		d.p.Drain = true
		d.p.WakeAt = d.in.Now.Add(readyRecheck)
		return
	}
	st.DrainUntil = nil
	d.released()
}

// released records that the canary track's last version stopped serving
// now (its drain ended): until each query's range has passed since, the
// track's series hold that version's requests.
func (d *decision) released() {
	t := d.in.Now
	d.st().TrackReleasedAt = &t
}

func (d *decision) finishPromotion() {
	st := d.st()
	if post := d.postPromotion(); len(post) > 0 {
		if failed, why := d.stepRun().fold(post); failed {
			// The previous version is still the stable track: every
			// request goes back to it.
			d.abort(v1alpha1.PhaseAborted, "post-promotion analysis: "+why+"; switched back to "+short(st.Stable.Revision), true)
			return
		}
		d.wakePost(post)
	}
	if d.keepingPrevious() {
		if end := st.StepStartedAt.Add(d.spec.Strategy.KeepPrevious()); end.After(d.in.Now) && (d.p.WakeAt.IsZero() || end.Before(d.p.WakeAt)) {
			d.p.WakeAt = end
		}
		return
	}
	d.p.Stable = StableFromHead
	if d.in.Observed.StableDigest != st.Canary.Digest || !d.in.Observed.StableReady {
		d.p.WakeAt = d.in.Now.Add(readyRecheck)
		return
	}
	old, rollback := st.Stable, st.Rollback
	d.rememberPromoted(old, st.Canary, rollback)
	d.setStable(st.Canary)
	st.Canary, st.Step, st.Weight = nil, 0, 0
	st.Rollback = false
	d.clearAborted()
	d.p.DeleteCanary = true
	d.drain()
	if rollback {
		d.p.RollbackFrom, d.p.RollbackTo = old.Revision, st.Stable.Revision
		st.Phase = v1alpha1.PhaseRolledBack
		st.Message = fmt.Sprintf("rolled back from %s to %s at once (a promoted version)", short(old.Revision), short(st.Stable.Revision))
		d.transition(fmt.Sprintf("rolled back from %s to %s", short(old.Revision), short(st.Stable.Revision)))
		return
	}
	st.Phase = v1alpha1.PhaseSucceeded
	st.Message = "promoted " + short(st.Stable.Revision)
	d.transition("promoted " + short(st.Stable.Revision))
}

// manual applies the weight the spec says, if it is not a leftover from
// the last rollout, running the checks all the time.
func (d *decision) manual() {
	st := d.st()
	want := *d.spec.Strategy.Canary.Weight
	if d.in.StableSpecWeight != nil && *d.in.StableSpecWeight == want {
		want = 0 // a weight left from the last rollout never applies to a new version
	}
	if failed, why := d.stepRun().fold(d.spec.Strategy.Canary.Checks); failed {
		d.abort(v1alpha1.PhaseAborted, why, true)
		return
	}
	if want == 100 {
		d.promote("weight raised to 100")
		return
	}
	if want != st.Weight {
		st.Weight = want
		st.Phase = v1alpha1.PhaseProgressing
		st.Message = fmt.Sprintf("weight %d set by the spec", want)
		d.transition(fmt.Sprintf("weight %d", want))
		return
	}
	st.Phase = v1alpha1.PhasePaused
	st.Message = fmt.Sprintf("at weight %d; raise spec.strategy.canary.weight to continue", st.Weight)
	d.stepRun().wake(d.spec.Strategy.Canary.Checks, false)
}

// advance finishes the current step.
func (d *decision) advance(subject string) {
	st := d.st()
	st.Step++
	st.Phase = v1alpha1.PhaseProgressing
	st.Message = subject
	d.transition(fmt.Sprintf("step %d/%d %s", st.Step, len(d.steps), subject))
}

// step runs one step kind; each is idempotent and makes at most one change.
func (d *decision) step(s v1alpha1.Step) {
	st := d.st()
	switch {
	case s.SetWeight != nil:
		if *s.SetWeight == 100 {
			d.promote("setWeight 100")
			return
		}
		st.Weight = *s.SetWeight
		d.advance(fmt.Sprintf("setWeight %d", *s.SetWeight))
	case s.SetHeaderRoute != nil:
		d.advance("setHeaderRoute " + s.SetHeaderRoute.Name)
	case s.SetMirror != nil && s.SetMirror.Percent > 0 && d.in.Observed.MirrorUnsupported != "":
		d.abort(v1alpha1.PhaseAborted, "setMirror refused, nothing mirrored: "+d.in.Observed.MirrorUnsupported, true)
	case s.SetMirror != nil:
		d.advance(fmt.Sprintf("setMirror %d", s.SetMirror.Percent))
	case s.SetCanaryScale != nil:
		d.advance("setCanaryScale")
	case s.Pause != nil && s.Pause.Duration != nil:
		end := st.StepStartedAt.Add(s.Pause.Duration.Duration)
		if !d.in.Now.Before(end) {
			d.advance("pause " + s.Pause.Duration.String() + " done")
			return
		}
		st.Phase = v1alpha1.PhasePaused
		st.Message = fmt.Sprintf("paused until %s", end.UTC().Format(time.RFC3339))
		d.p.WakeAt = end
	case s.Pause != nil:
		d.gate(s.Pause.Gate)
	case s.Check != nil:
		failed, why := d.stepRun().fold(s.Check)
		switch {
		case failed:
			d.abort(v1alpha1.PhaseAborted, why, true)
		case d.stepRun().done(s.Check):
			d.advance("checks passed: " + d.checksSummary())
		default:
			if why, _ := d.stepRun().starved(s.Check); why != "" {
				st.Phase = v1alpha1.PhasePaused
				st.Message = why + "; still measuring (onTooFewSamples: pause)"
			}
			d.stepRun().wake(s.Check, true)
		}
	}
}

// gate waits at a gate until it is approved in Git for the canary's
// revision or, when a check confirms it, that check passes (measured at
// its interval; a failure only means not yet).
func (d *decision) gate(gate string) {
	st := d.st()
	if d.spec.Gates.Passed(gate, st.Canary.Revision) {
		d.advance("gate " + gate + " approved")
		return
	}
	st.Phase = v1alpha1.PhasePaused
	st.Message = fmt.Sprintf("waiting for approval of gate %q for revision %s", gate, short(st.Canary.Revision))
	c := d.spec.Gates.ConfirmedBy(gate)
	if c == "" {
		return
	}
	r := d.stepRun()
	for _, m := range r.record([]string{c}) {
		if m.Outcome == Pass {
			d.advance(fmt.Sprintf("gate %s confirmed by check %s (%s)", gate, c, m.Value))
			return
		}
	}
	if s := r.state(c); s.Last != "" {
		st.Message += fmt.Sprintf(", or for check %s to confirm it (last %s)", c, s.Last)
	} else {
		st.Message += fmt.Sprintf(", or for check %s to confirm it", c)
	}
	r.wake([]string{c}, false)
}

// progressDeadline is how long a workload may stay unready.
func (d *decision) progressDeadline() time.Duration {
	if d.in.ProgressDeadline > 0 {
		return d.in.ProgressDeadline
	}
	return ProgressDeadline
}

// stepStart is when the current step (or manual weight) began.
func (d *decision) stepStart() time.Time {
	if t := d.st().StepStartedAt; t != nil {
		return *t
	}
	return d.in.Now
}

func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
