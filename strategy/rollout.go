package strategy

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// rollout runs rolling and recreate releases: the head is applied as the
// stable track itself, waited for, checked, and rolled back to the stable
// revision when it does not become healthy or a check fails.
func (d *decision) rollout() {
	st := d.st()
	switch {
	case st.Canary == nil && d.in.HeadDigest == st.Stable.Digest:
		d.steady()
		return
	case st.Canary == nil && d.in.HeadDigest == st.AbortedDigest && !d.retryRequested():
		return // rolled back; not retried until the version changes or spec.retry names it
	case st.Canary == nil || st.Canary.Digest != d.in.HeadDigest:
		if d.in.HeadDigest == st.AbortedDigest {
			d.clearAborted() // spec.retry asked for it again
		}
		st.Canary = d.head()
		st.Step, st.Weight = 0, 0
		st.Phase = v1alpha1.PhaseProgressing
		st.Message = "rolling out " + short(d.in.HeadRevision)
		d.p.Stable = StableFromHead
		d.transition("rolling out " + short(d.in.HeadRevision))
		return
	}
	d.p.Stable = StableFromHead
	obs := d.in.Observed
	healthy := obs.StableDigest == st.Canary.Digest && obs.StableReady
	if !healthy {
		switch {
		case obs.Failed:
			d.rollback("the new version failed: " + obs.Message)
		case d.in.Now.Sub(d.stepStart()) > d.progressDeadline():
			d.rollback(fmt.Sprintf("the new version was not healthy after %s", d.progressDeadline()))
		default:
			d.p.WakeAt = d.in.Now.Add(readyRecheck)
		}
		return
	}
	names, _ := d.activeChecks()
	if failed, why := d.stepRun().fold(names); failed {
		d.rollback(why)
		return
	}
	if !d.stepRun().done(names) {
		d.stepRun().wake(names, true)
		return
	}
	d.rememberPromoted(st.Stable, st.Canary, false)
	d.setStable(st.Canary)
	st.Canary = nil
	st.Phase = v1alpha1.PhaseSucceeded
	d.clearAborted()
	st.Message = "rolled out " + short(st.Stable.Revision)
	d.transition("rolled out " + short(st.Stable.Revision))
}

// rollback returns a rolling release to its stable revision.
func (d *decision) rollback(why string) {
	st := d.st()
	d.markAborted()
	st.Canary = nil
	st.Phase = v1alpha1.PhaseRolledBack
	st.Message = why
	d.p.Stable = StableFromStable
	d.p.RevertFiles = d.spec.OnFailure == v1alpha1.OnFailureRevert
	d.transition("rolled back: " + why)
}
