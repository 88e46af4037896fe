package strategy

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// suspended freezes a release whose spec says suspend (recording when, once)
// and resumes one whose spec no longer does, moving the current step's
// start forward by the time suspended so a running pause or check interval
// does not count it. It reports whether the release stays frozen.
func (d *decision) suspended() bool {
	st := d.st()
	if d.spec.Suspend {
		d.p.Suspended = true
		if st.SuspendedAt == nil {
			t := d.in.Now
			st.SuspendedAt = &t
			st.Message = "suspended by spec.suspend: nothing is applied until it is false"
			d.p.Commit = true
			d.p.Subject = "suspended"
			d.p.Checks = st.Checks
		}
		return true
	}
	if st.SuspendedAt != nil {
		if st.StepStartedAt != nil && st.SuspendedAt.After(*st.StepStartedAt) {
			t := st.StepStartedAt.Add(d.in.Now.Sub(*st.SuspendedAt))
			st.StepStartedAt = &t
		}
		st.SuspendedAt = nil
		st.Message = "resumed"
		d.p.Commit = true
		d.p.Subject = "resumed"
		d.p.Checks = st.Checks
	}
	return false
}

// retryRequested reports whether spec.retry names the aborted canary
// revision, so the aborted version runs again.
func (d *decision) retryRequested() bool {
	r, st := d.spec.Retry, d.st()
	return r != nil && st.AbortedRevision != "" && v1alpha1.SameRevision(r.Revision, st.AbortedRevision)
}

// markAborted remembers the canary's version and revision as aborted: it is
// not run again until its digest changes or spec.retry names the revision.
func (d *decision) markAborted() {
	st := d.st()
	st.AbortedDigest = st.Canary.Digest
	st.AbortedRevision = st.Canary.Revision
}

// clearAborted forgets the aborted version (a promotion, or a retry).
func (d *decision) clearAborted() {
	st := d.st()
	st.AbortedDigest, st.AbortedRevision = "", ""
}

// setStable makes rev the stable version, stamped with when it became
// so (a downstream stage's soak counts from it).
func (d *decision) setStable(rev *v1alpha1.Revision) {
	r := *rev
	at := d.in.Now.UTC()
	r.PromotedAt = &at
	d.st().Stable = &r
}

// inWindow returns the promoted version the head's digest equals within the
// rollback window, or nil.
func (d *decision) inWindow() *v1alpha1.Revision {
	st := d.st()
	for i, r := range st.Promoted {
		if i >= d.spec.Strategy.Window() {
			break
		}
		if r.Digest == d.in.HeadDigest {
			return &st.Promoted[i]
		}
	}
	return nil
}

// startRollback brings the head, a version promoted before, up as the
// canary track at full size; it is switched to at once when ready, with no
// steps and no checks, and made stable (canary, then finishPromotion).
func (d *decision) startRollback(to *v1alpha1.Revision) {
	st := d.st()
	from := st.Stable
	st.Canary = d.head()
	st.Rollback = true
	d.p.RollbackFrom, d.p.RollbackTo = from.Revision, d.in.HeadRevision
	st.Step, st.Weight = 0, 0
	st.Phase = v1alpha1.PhaseProgressing
	st.Message = fmt.Sprintf("rolling back from %s to %s (the version promoted as %s): no steps, no checks",
		short(from.Revision), short(d.in.HeadRevision), short(to.Revision))
	d.transition(fmt.Sprintf("rolling back from %s to %s", short(from.Revision), short(d.in.HeadRevision)))
}

// rememberPromoted records the stable version being replaced in the
// rollback window (newest first, no duplicates, the new stable left out).
// A version rolled back from is not recorded: it was bad, and returning to
// it must run its canary again.
func (d *decision) rememberPromoted(old, next *v1alpha1.Revision, rollback bool) {
	st := d.st()
	keep := []v1alpha1.Revision{}
	if old != nil && !rollback && old.Digest != next.Digest {
		o := *old
		o.PromotedAt = nil // the window compares versions, not times
		keep = append(keep, o)
	}
	for _, r := range st.Promoted {
		if r.Digest != next.Digest && (old == nil || r.Digest != old.Digest) {
			keep = append(keep, r)
		}
	}
	if n := max(d.spec.Strategy.Window(), 0); len(keep) > n {
		keep = keep[:n]
	}
	if len(keep) == 0 {
		keep = nil
	}
	st.Promoted = keep
}
