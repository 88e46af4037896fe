package strategy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestSuspendFreezesAndResumeKeepsThePauseLength(t *testing.T) {
	suspended := release(t, canarySteps, "  suspend: true\n")
	r := release(t, canarySteps, "")

	// Suspended 30s into the 2m pause of step 1.
	in := input(suspended, inflight(1, 5, v1alpha1.PhasePaused, 0), 30*time.Second)
	p := Next(in)
	if !p.Suspended || !p.Commit || p.Subject != "suspended" || p.Status.SuspendedAt == nil || !p.Status.SuspendedAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("suspend: %+v", p)
	}
	if p.Status.Step != 1 || p.Status.Phase != v1alpha1.PhasePaused || !p.Status.StepStartedAt.Equal(t0) || !p.WakeAt.IsZero() {
		t.Fatalf("a suspend must freeze the release where it stands: %+v", p.Status)
	}
	if due := DueChecks(input(suspended, inflight(3, 5, v1alpha1.PhaseProgressing, 0), time.Hour)); len(due) != 0 {
		t.Fatalf("a suspended release measured %v", due)
	}

	// An hour later, still suspended: long past the pause's end, nothing moves.
	in.Status = p.Status
	in.Now = t0.Add(time.Hour)
	p = Next(in)
	if p.Commit || !p.Suspended || p.Status.Step != 1 {
		t.Fatalf("still suspended: %+v", p)
	}

	// Resumed at 1h: 30s of the pause had run, so 90s remain.
	resume := input(r, p.Status, time.Hour)
	p = Next(resume)
	if p.Suspended || !p.Commit || p.Status.SuspendedAt != nil || p.Status.Step != 1 {
		t.Fatalf("resume: %+v", p)
	}
	if want := t0.Add(time.Hour - 30*time.Second); !p.Status.StepStartedAt.Equal(want) {
		t.Fatalf("step start after resume = %s, want %s", p.Status.StepStartedAt, want)
	}
	if want := t0.Add(time.Hour + 90*time.Second); !p.WakeAt.Equal(want) {
		t.Fatalf("pause ends at %s, want %s", p.WakeAt, want)
	}
	in = input(r, p.Status, time.Hour+89*time.Second+999*time.Millisecond)
	if p2 := Next(in); p2.Status.Step != 1 {
		t.Fatalf("pause ended early: step %d", p2.Status.Step)
	}
	in.Now = t0.Add(time.Hour + 90*time.Second)
	if p2 := Next(in); p2.Status.Step != 2 {
		t.Fatalf("pause did not end on time: step %d", p2.Status.Step)
	}
}

func TestRetryRunsTheAbortedRevisionAgainOnce(t *testing.T) {
	r := release(t, canarySteps, "  abort: {revision: 2222222}\n")
	p := Next(input(r, inflight(3, 5, v1alpha1.PhaseProgressing, 0), time.Second))
	if p.Status.Phase != v1alpha1.PhaseAborted || p.Status.AbortedDigest != "c" || p.Status.AbortedRevision != canaryRev {
		t.Fatalf("abort: %+v", p.Status)
	}
	aborted := p.Status

	// The same version at a later commit (the abort's own commit): stays aborted.
	plain := release(t, canarySteps, "")
	in := input(plain, aborted, time.Minute)
	in.HeadRevision = newerRev
	if p := Next(in); p.Commit || p.Status.Canary != nil {
		t.Fatalf("an aborted version ran again without a retry: %+v", p)
	}
	// A retry naming another revision does nothing.
	in.Spec = release(t, canarySteps, "  retry: {revision: 9999999}\n")
	if p := Next(in); p.Commit || p.Status.Canary != nil {
		t.Fatalf("a retry of another revision restarted the canary: %+v", p)
	}
	// A retry naming the aborted revision starts the canary again.
	in.Spec = release(t, canarySteps, "  retry: {revision: 2222222}\n")
	p = Next(in)
	if !p.Commit || p.Status.Canary == nil || p.Status.Canary.Revision != newerRev || p.Status.Step != 0 || p.Status.AbortedDigest != "" {
		t.Fatalf("retry: %+v", p.Status)
	}
	// Aborted again: the retry left in the file does not loop.
	st := p.Status
	st.Canary.Revision = newerRev
	in2 := input(release(t, canarySteps, "  retry: {revision: 2222222}\n  abort: {revision: 3333333}\n"), st, 2*time.Minute)
	in2.HeadRevision = newerRev
	p = Next(in2)
	if p.Status.Phase != v1alpha1.PhaseAborted || p.Status.AbortedRevision != newerRev {
		t.Fatalf("second abort: %+v", p.Status)
	}
	in2.Status = p.Status
	in2.Spec = release(t, canarySteps, "  retry: {revision: 2222222}\n")
	if p := Next(in2); p.Status.Canary != nil {
		t.Fatalf("an old retry restarted a newer abort: %+v", p.Status)
	}
}

// promotedTwice is a release that promoted "s" then "c" over "s0": the
// rollback window holds s (newest) and s0.
func promotedTwice() v1alpha1.ReleaseStatus {
	return v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(canaryRev, "c"),
		Promoted: []v1alpha1.Revision{*rev(stableRev, "s"), *rev("0000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "s0")}}
}

func TestRevertAfterPromotionRollsBackAtOnce(t *testing.T) {
	r := release(t, canarySteps, "")
	in := Input{Spec: r, HeadRevision: newerRev, HeadDigest: "s", Replicas: 4, Status: promotedTwice(),
		Observed: Observed{StableDigest: "c", StableReady: true}, Now: t0}
	if due := DueChecks(in); len(due) != 0 {
		t.Fatalf("checks due: %v", due)
	}
	p := Next(in)
	if !p.Status.Rollback || p.Status.Canary == nil || p.Status.Canary.Digest != "s" || !p.Canary || p.CanaryReplicas != 4 || p.Route.Weight != 0 {
		t.Fatalf("rollback start: %+v", p)
	}
	// Ready: one switch to 100, no steps, no checks.
	in.Status, in.Now = p.Status, t0.Add(time.Second)
	in.Observed.CanaryReady = true
	if due := DueChecks(in); len(due) != 0 {
		t.Fatalf("checks due during a rollback: %v", due)
	}
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhasePromoting || p.Route.Weight != 100 || p.Stable != StableFromStable || !p.WakeAt.Equal(t0.Add(31*time.Second)) {
		t.Fatalf("rollback switch (the stable track it left kept for the delay): %+v", p)
	}
	// After the delay the head goes to the stable track.
	in.Status, in.Now = p.Status, t0.Add(31*time.Second)
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhasePromoting || p.Route.Weight != 100 || p.Stable != StableFromHead {
		t.Fatalf("rollback after the delay: %+v", p)
	}
	// The stable track runs it: RolledBack, the canary track drained for
	// the delay, and the bad version is not in the window (returning to it
	// runs its canary).
	in.Status, in.Now = p.Status, t0.Add(32*time.Second)
	in.Observed.StableDigest = "s"
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseRolledBack || p.Status.Stable.Digest != "s" || p.Status.Canary != nil || !p.DeleteCanary ||
		!p.Drain || p.Status.DrainUntil == nil || !p.Status.DrainUntil.Equal(t0.Add(62*time.Second)) || !p.WakeAt.Equal(*p.Status.DrainUntil) {
		t.Fatalf("rollback finish: %+v", p)
	}
	for _, pr := range p.Status.Promoted {
		if pr.Digest == "c" || pr.Digest == "s" {
			t.Fatalf("window after rollback = %v", p.Status.Promoted)
		}
	}
	if p.Subject != "rolled back from 2222222 to 3333333" {
		t.Errorf("subject %q", p.Subject)
	}
	// Returning to it runs its canary, once the canary track has drained.
	in.Status, in.HeadDigest, in.HeadRevision = p.Status, "c", canaryRev
	if p := Next(in); p.Status.Canary != nil || !p.Drain || !p.WakeAt.Equal(*in.Status.DrainUntil) {
		t.Fatalf("a new canary took over the draining canary track: %+v", p.Status)
	}
	in.Now = in.Status.DrainUntil.Add(time.Second)
	if p := Next(in); p.Status.Rollback || p.Status.Canary == nil {
		t.Fatalf("returning to the rolled-back-from version must run a canary: %+v", p.Status)
	}
}

func TestRollbackWindow(t *testing.T) {
	tests := []struct {
		name     string
		extra    string
		digest   string
		rollback bool
	}{
		{"newest promoted", "", "s", true},
		{"second newest promoted", "", "s0", true},
		{"outside a window of 1", "    rollbackWindow: {revisions: 1}\n", "s0", false},
		{"window 0 disables", "    rollbackWindow: {revisions: 0}\n", "s", false},
		{"never promoted", "", "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := release(t, canarySteps+"\n"+tc.extra, "")
			in := Input{Spec: r, HeadRevision: newerRev, HeadDigest: tc.digest, Replicas: 2, Status: promotedTwice(),
				Observed: Observed{StableDigest: "c", StableReady: true}, Now: t0}
			p := Next(in)
			if p.Status.Rollback != tc.rollback || p.Status.Canary == nil {
				t.Fatalf("rollback = %v, want %v (%+v)", p.Status.Rollback, tc.rollback, p.Status)
			}
			// Mid-canary, a head moving to a version in the window is a rollback too.
			mid := inflight(3, 5, v1alpha1.PhaseProgressing, 0)
			mid.Stable, mid.Promoted = rev(canaryRev, "c"), promotedTwice().Promoted
			mid.Canary = rev(newerRev, "n")
			in.Status = mid
			if p := Next(in); p.Status.Rollback != tc.rollback {
				t.Fatalf("mid-canary rollback = %v, want %v", p.Status.Rollback, tc.rollback)
			}
		})
	}
}

func TestPromotionFillsTheWindow(t *testing.T) {
	r := release(t, canarySteps+"\n    rollbackWindow: {revisions: 2}\n", "")
	st := inflight(8, 100, v1alpha1.PhasePromoting, 0)
	st.Promoted = []v1alpha1.Revision{*rev("0000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "s0"), *rev("0000001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "s1")}
	in := input(r, st, v1alpha1.DefaultScaleDownDelay+time.Second)
	in.Observed.StableDigest = "c"
	p := Next(in)
	got := []string{}
	for _, pr := range p.Status.Promoted {
		got = append(got, pr.Digest)
	}
	if p.Status.Phase != v1alpha1.PhaseSucceeded || len(got) != 2 || got[0] != "s" || got[1] != "s0" {
		t.Fatalf("window = %v (phase %s)", got, p.Status.Phase)
	}
}

// Current, given the status a decision wrote, plans the same objects as
// that decision: what `sluice diff` shows after a pass is what the pass
// applied.
func TestCurrentMatchesTheLastDecision(t *testing.T) {
	for seed := range uint64(60) {
		var plans []Plan
		var inputs []Input
		recordWalk(t, seed, 60, func(in Input, p Plan) {
			inputs = append(inputs, in)
			plans = append(plans, p)
		})
		for i, p := range plans {
			if !p.Commit || p.Suspended {
				continue
			}
			in := inputs[i]
			in.Status, in.Results = p.Status, nil
			got := Current(in)
			sameStable := got.Stable == p.Stable || (p.Status.Stable != nil && p.Status.Stable.Revision == in.HeadRevision)
			if !sameStable || got.Canary != p.Canary || got.CanaryReplicas != p.CanaryReplicas || !reflect.DeepEqual(got.Route, p.Route) {
				t.Fatalf("seed %d step %d (%s): Current = stable %s canary %v/%d route %+v; the decision planned stable %s canary %v/%d route %+v",
					seed, i, p.Subject, got.Stable, got.Canary, got.CanaryReplicas, got.Route, p.Stable, p.Canary, p.CanaryReplicas, p.Route)
			}
		}
	}
}

// The canary track traffic has just left (an abort, a finished promotion)
// is drained for the scale-down delay: nothing pruned until then, a wake-up
// at its end, then it goes. With scaleDownDelay 0s it goes as soon as the
// Gateway has taken the route.
func TestCanaryTrackDrainsAfterTrafficLeaves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		delay time.Duration
	}{
		{"default delay", "", 30 * time.Second},
		{"10s", "\n    scaleDownDelay: 10s", 10 * time.Second},
		{"none", "\n    scaleDownDelay: 0s", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := release(t, canarySteps+tc.extra, "  abort: {revision: 2222222}\n")
			in := input(r, inflight(3, 5, v1alpha1.PhaseProgressing, 0), 0)
			p := Next(in)
			if p.Status.Phase != v1alpha1.PhaseAborted || p.Canary || p.Route.Canary {
				t.Fatalf("abort: %+v", p)
			}
			if tc.delay == 0 {
				// No delay, but not before the Gateway has taken the route
				// that left the track.
				if !p.Drain || !p.Status.DrainUntil.Equal(t0) {
					t.Fatalf("no drain at all with no delay: %+v", p)
				}
				in.Status, in.Now = p.Status, t0.Add(time.Second)
				in.Observed.RoutePending = true
				if p := Next(in); !p.Drain || !p.WakeAt.Equal(t0.Add(2*time.Second)) {
					t.Fatalf("the track went before the Gateway took the route: %+v", p)
				}
				in.Observed.RoutePending = false
				if p := Next(in); p.Drain || p.Status.DrainUntil != nil {
					t.Fatalf("drained on after the Gateway took the route: %+v", p)
				}
				return
			}
			if !p.Drain || !p.Status.DrainUntil.Equal(t0.Add(tc.delay)) || !p.WakeAt.Equal(t0.Add(tc.delay)) {
				t.Fatalf("abort did not drain the canary track for %s: %+v", tc.delay, p)
			}
			in.Status, in.Now = p.Status, t0.Add(tc.delay-time.Millisecond)
			if p := Next(in); !p.Drain || p.Commit || !p.WakeAt.Equal(t0.Add(tc.delay)) {
				t.Fatalf("drain ended early: %+v", p)
			}
			in.Now = t0.Add(tc.delay)
			if p := Next(in); p.Drain || p.Status.DrainUntil != nil || p.Commit {
				t.Fatalf("drain did not end at its time: %+v", p)
			}
		})
	}
}

// A setMirror step on a Gateway that cannot mirror aborts the canary
// before any filter is written; setMirror 0 (ending a mirror) and the
// other steps are not affected.
func TestMirrorOnAGatewayThatCannotMirror(t *testing.T) {
	r := release(t, canarySteps, "")
	in := input(r, inflight(4, 5, v1alpha1.PhaseProgressing, 0), 0) // step 4 is setMirror 20
	in.Observed.MirrorUnsupported = "GatewayClass traefik does not support HTTPRouteRequestMirror"
	p := Next(in)
	if p.Status.Phase != v1alpha1.PhaseAborted || p.Route.MirrorPercent != 0 || p.Route.Canary || !strings.Contains(p.Status.Message, "HTTPRouteRequestMirror") {
		t.Fatalf("mirror on a Gateway that cannot: %+v", p)
	}
	in.Status = inflight(3, 5, v1alpha1.PhaseProgressing, 0) // setHeaderRoute: unaffected
	if p := Next(in); p.Status.Phase == v1alpha1.PhaseAborted {
		t.Fatalf("a header route aborted for the mirror: %+v", p.Status)
	}
	in.Observed.MirrorUnsupported = ""
	in.Status = inflight(4, 5, v1alpha1.PhaseProgressing, 0)
	if p := Next(in); p.Status.Phase == v1alpha1.PhaseAborted || p.Route.MirrorPercent != 20 {
		t.Fatalf("a Gateway that can mirror: %+v", p)
	}
}

// A route the Gateway rejects holds the canary where it stands, saying
// why; once the verdict clears the steps go on.
func TestRejectedRouteHoldsTheCanary(t *testing.T) {
	r := release(t, canarySteps, "")
	in := input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 0)
	in.Observed.RouteRejected = "ResolvedRefs=False BackendNotFound: service app-canary not found"
	p := Next(in)
	if p.Status.Step != 0 || p.Status.Weight != 0 || p.Status.Phase != v1alpha1.PhasePaused || !strings.Contains(p.Status.Message, "BackendNotFound") || p.WakeAt.IsZero() {
		t.Fatalf("rejected route: %+v", p)
	}
	in.Status, in.Observed.RouteRejected = p.Status, ""
	if p := Next(in); p.Status.Step != 1 || p.Status.Weight != 5 {
		t.Fatalf("the canary did not go on once the route was accepted: %+v", p.Status)
	}
}

// A drain past its time goes on while the Gateway has not taken the route
// that left the track (its status is about an older generation), for at
// most MaxDrainWait.
func TestDrainWaitsForTheGatewayToTakeTheRoute(t *testing.T) {
	r := release(t, canarySteps+"\n    scaleDownDelay: 10s", "  abort: {revision: 2222222}\n")
	in := input(r, inflight(3, 5, v1alpha1.PhaseProgressing, 0), 0)
	p := Next(in)
	if !p.Drain {
		t.Fatalf("abort did not drain: %+v", p)
	}
	in.Status, in.Now, in.Observed.RoutePending = p.Status, t0.Add(11*time.Second), true
	if p := Next(in); !p.Drain || !p.WakeAt.Equal(t0.Add(12*time.Second)) {
		t.Fatalf("the drain ended before the Gateway took the route: %+v", p)
	}
	in.Now = t0.Add(10*time.Second + MaxDrainWait)
	if p := Next(in); p.Drain {
		t.Fatalf("a Gateway that never takes the route kept the track past MaxDrainWait: %+v", p)
	}
	in.Now, in.Observed.RoutePending = t0.Add(11*time.Second), false
	if p := Next(in); p.Drain {
		t.Fatalf("the drain went on with the route taken: %+v", p)
	}
}
