package strategy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

const (
	stableRev = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	canaryRev = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	newerRev  = "3333333ccccccccccccccccccccccccccccccccc"
)

func release(t *testing.T, strategy string, extra string) *v1alpha1.Release {
	t.Helper()
	y := `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: shop}
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
` + strategy + `
  checks:
  - name: ok
    webhook: {url: "http://smoke/run"}
    count: 2
    interval: 10s
    failureLimit: 1
  - name: once
    webhook: {url: "http://smoke/run"}
` + extra
	p, err := v1alpha1.ParseRelease("releases/shop/app/release.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p.Release
}

const canarySteps = `    canary:
      steps:
      - setWeight: 5
      - pause: {duration: 2m}
      - check: [ok]
      - setHeaderRoute: {name: ff, match: {headers: [{name: User-Agent, value: Firefox}]}, weight: 50}
      - setMirror: {percent: 20}
      - setWeight: 25
      - pause: {gate: qa}
      - setWeight: 100`

func rev(r, d string) *v1alpha1.Revision { return &v1alpha1.Revision{Revision: r, Digest: d} }

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

// inflight is a canary of canaryRev (digest "c") over stable (digest "s").
func inflight(step, weight int32, phase v1alpha1.Phase, started time.Duration) v1alpha1.ReleaseStatus {
	return v1alpha1.ReleaseStatus{Phase: phase, Stable: rev(stableRev, "s"), Canary: rev(canaryRev, "c"), Step: step, Weight: weight, StepStartedAt: at(started)}
}

func input(r *v1alpha1.Release, st v1alpha1.ReleaseStatus, now time.Duration) Input {
	return Input{Spec: r, HeadRevision: canaryRev, HeadDigest: "c", Replicas: 4, Status: st,
		Observed: Observed{StableDigest: "s", StableReady: true, CanaryReady: true}, Now: t0.Add(now)}
}

func TestCanaryTransitions(t *testing.T) {
	r := release(t, canarySteps, "")
	approved := release(t, canarySteps, "  gates:\n    approved:\n    - {gate: qa, revision: 2222222}\n")
	otherApproval := release(t, canarySteps, "  gates:\n    approved:\n    - {gate: qa, revision: 9999999}\n")
	tests := []struct {
		name       string
		in         Input
		wantPhase  v1alpha1.Phase
		wantStep   int32
		wantWeight int32
		commit     bool
		wake       time.Duration // 0: no wake
		check      func(t *testing.T, p Plan)
	}{
		{name: "new version starts a canary",
			in:        Input{Spec: r, HeadRevision: canaryRev, HeadDigest: "c", Replicas: 4, Status: v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(stableRev, "s")}, Observed: Observed{StableDigest: "s", StableReady: true}, Now: t0},
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 0, wantWeight: 0, commit: true,
			check: func(t *testing.T, p Plan) {
				if !p.Canary || p.Route.Weight != 0 || p.CanaryReplicas != 4 || p.Stable != StableFromStable {
					t.Errorf("plan = %+v", p)
				}
			}},
		{name: "canary not ready yet: wait, no commit", in: func() Input {
			in := input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), time.Second)
			in.Observed.CanaryReady = false
			return in
		}(), wantPhase: v1alpha1.PhaseProgressing, wantStep: 0, commit: false, wake: 2 * time.Second},
		{name: "canary never ready: aborted after the deadline", in: func() Input {
			in := input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), ProgressDeadline+time.Second)
			in.Observed.CanaryReady = false
			return in
		}(), wantPhase: v1alpha1.PhaseAborted, commit: true},
		{name: "setWeight 5", in: input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), time.Second),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 1, wantWeight: 5, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Subject != "step 1/8 setWeight 5" || p.Route.Weight != 5 {
					t.Errorf("subject %q route %+v", p.Subject, p.Route)
				}
			}},
		{name: "entering a pause is committed, keeping the step's start", in: input(r, inflight(1, 5, v1alpha1.PhaseProgressing, 0), time.Minute),
			wantPhase: v1alpha1.PhasePaused, wantStep: 1, wantWeight: 5, commit: true, wake: 2 * time.Minute,
			check: func(t *testing.T, p Plan) {
				if !p.Status.StepStartedAt.Equal(t0) {
					t.Errorf("step start moved to %s", p.Status.StepStartedAt)
				}
			}},
		{name: "pause not over: no commit", in: input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), time.Minute),
			wantPhase: v1alpha1.PhasePaused, wantStep: 1, wantWeight: 5, wake: 2 * time.Minute},
		{name: "pause over, measured from status across a restart", in: input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), 2*time.Minute),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 2, wantWeight: 5, commit: true},
		{name: "check step: first measurement due at once", in: input(r, inflight(2, 5, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 2, wantWeight: 5, wake: 0},
		{name: "check step: one pass of two, next due in 10s", in: func() Input {
			in := input(r, inflight(2, 5, v1alpha1.PhaseProgressing, 0), 0)
			in.Results = []Measurement{{Check: "ok", Outcome: Pass, Value: "200"}}
			return in
		}(), wantPhase: v1alpha1.PhaseProgressing, wantStep: 2, wantWeight: 5, wake: 10 * time.Second,
			check: func(t *testing.T, p Plan) {
				if len(p.Status.Checks) != 1 || p.Status.Checks[0].Passed != 1 {
					t.Errorf("checks = %+v", p.Status.Checks)
				}
			}},
		{name: "check step: passes and advances", in: func() Input {
			st := inflight(2, 5, v1alpha1.PhaseProgressing, 0)
			st.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 1, Last: "200"}}
			in := input(r, st, 10*time.Second)
			in.Results = []Measurement{{Check: "ok", Outcome: Fail, Value: "500"}}
			return in
		}(), wantPhase: v1alpha1.PhaseProgressing, wantStep: 3, wantWeight: 5, commit: true,
			check: func(t *testing.T, p Plan) {
				if ChecksTrailer(p.Checks) != "ok=500 fail" || p.Status.Checks != nil {
					t.Errorf("trailer %q, status checks %+v", ChecksTrailer(p.Checks), p.Status.Checks)
				}
			}},
		{name: "check step: over the failure limit aborts", in: func() Input {
			st := inflight(2, 5, v1alpha1.PhaseProgressing, 0)
			st.Checks = []v1alpha1.CheckState{{Name: "ok", Failed: 1}}
			in := input(r, st, 10*time.Second)
			in.Results = []Measurement{{Check: "ok", Outcome: Fail, Value: "500"}}
			return in
		}(), wantPhase: v1alpha1.PhaseAborted, commit: true,
			check: func(t *testing.T, p Plan) {
				if !p.DeleteCanary || p.Canary || p.Status.AbortedDigest != "c" || p.RevertFiles {
					t.Errorf("abort plan = %+v", p)
				}
			}},
		{name: "header route", in: input(r, inflight(3, 5, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 4, wantWeight: 5, commit: true,
			check: func(t *testing.T, p Plan) {
				if len(p.Route.HeaderRoutes) != 1 || p.Route.HeaderRoutes[0].Name != "ff" {
					t.Errorf("route = %+v", p.Route)
				}
			}},
		{name: "mirror", in: input(r, inflight(4, 5, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 5, wantWeight: 5, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Route.MirrorPercent != 20 {
					t.Errorf("route = %+v", p.Route)
				}
			}},
		{name: "gate not approved", in: input(r, inflight(6, 25, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhasePaused, wantStep: 6, wantWeight: 25, commit: true},
		{name: "gate approved for another revision is ignored", in: input(otherApproval, inflight(6, 25, v1alpha1.PhasePaused, 0), time.Hour),
			wantPhase: v1alpha1.PhasePaused, wantStep: 6, wantWeight: 25},
		{name: "gate approved (before it was reached)", in: input(approved, inflight(6, 25, v1alpha1.PhasePaused, 0), 0),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 7, wantWeight: 25, commit: true},
		{name: "setWeight 100 promotes, keeping the previous version", in: input(r, inflight(7, 25, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhasePromoting, wantStep: 7, wantWeight: 100, commit: true, wake: 30 * time.Second,
			check: func(t *testing.T, p Plan) {
				if p.Stable != StableFromStable || p.Route.Weight != 100 || !p.Canary || p.DeleteCanary {
					t.Errorf("promotion plan = %+v", p)
				}
			}},
		{name: "setWeight 100 promotes at once with scaleDownDelay 0s", in: input(release(t, canarySteps+"\n    scaleDownDelay: 0s\n", ""), inflight(7, 25, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhasePromoting, wantStep: 7, wantWeight: 100, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Stable != StableFromHead || p.Route.Weight != 100 || !p.Canary {
					t.Errorf("promotion plan = %+v", p)
				}
			}},
		{name: "inside the scale-down delay the previous version stays stable", in: func() Input {
			in := input(r, inflight(7, 100, v1alpha1.PhasePromoting, 0), 29*time.Second)
			in.Observed.StableDigest = "s"
			return in
		}(), wantPhase: v1alpha1.PhasePromoting, wantStep: 7, wantWeight: 100, wake: 30 * time.Second,
			check: func(t *testing.T, p Plan) {
				if p.Stable != StableFromStable || p.Route.Weight != 100 || !p.Canary || p.DeleteCanary {
					t.Errorf("plan inside the delay = %+v", p)
				}
			}},
		{name: "a revert inside the scale-down delay is a route switch", in: func() Input {
			in := input(r, inflight(7, 100, v1alpha1.PhasePromoting, 0), 10*time.Second)
			in.HeadRevision, in.HeadDigest = newerRev, "s"
			return in
		}(), wantPhase: v1alpha1.PhaseRolledBack, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Stable != StableFromStable || p.Canary || !p.DeleteCanary || p.Status.Stable.Digest != "s" || len(p.Status.Promoted) != 0 {
					t.Errorf("revert inside the delay = %+v", p)
				}
			}},
		{name: "promoting waits for the new stable", in: input(r, inflight(7, 100, v1alpha1.PhasePromoting, 0), 30*time.Second),
			wantPhase: v1alpha1.PhasePromoting, wantStep: 7, wantWeight: 100, wake: 31 * time.Second,
			check: func(t *testing.T, p Plan) {
				if p.Stable != StableFromHead {
					t.Errorf("after the delay the head is not applied to the stable track: %+v", p)
				}
			}},
		{name: "promotion completes", in: func() Input {
			in := input(r, inflight(7, 100, v1alpha1.PhasePromoting, 0), 31*time.Second)
			in.Observed.StableDigest = "c"
			return in
		}(), wantPhase: v1alpha1.PhaseSucceeded, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Status.Stable.Revision != canaryRev || p.Status.Canary != nil || !p.DeleteCanary || p.Canary {
					t.Errorf("promoted plan = %+v", p)
				}
			}},
		{name: "newer version mid-pause restarts the steps", in: func() Input {
			in := input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), time.Minute)
			in.HeadRevision, in.HeadDigest = newerRev, "n"
			return in
		}(), wantPhase: v1alpha1.PhaseProgressing, wantStep: 0, wantWeight: 0, commit: true,
			check: func(t *testing.T, p Plan) {
				if p.Status.Canary.Revision != newerRev {
					t.Errorf("canary = %+v", p.Status.Canary)
				}
			}},
		{name: "revert mid-step rolls back at once, no checks", in: func() Input {
			in := input(r, inflight(2, 5, v1alpha1.PhaseProgressing, 0), 0)
			in.HeadRevision, in.HeadDigest = newerRev, "s"
			return in
		}(), wantPhase: v1alpha1.PhaseRolledBack, commit: true,
			check: func(t *testing.T, p Plan) {
				if DueChecks(Input{Spec: r, Status: p.Status, Now: t0, HeadDigest: "s"}) != nil || !p.DeleteCanary || p.Status.AbortedDigest != "" {
					t.Errorf("revert plan = %+v", p)
				}
			}},
		{name: "abort request for the canary revision", in: input(release(t, canarySteps, "  abort: {revision: 2222222, reason: bad}\n"), inflight(3, 5, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhaseAborted, commit: true},
		{name: "abort request for another revision is ignored", in: input(release(t, canarySteps, "  abort: {revision: 9999999}\n"), inflight(3, 5, v1alpha1.PhaseProgressing, 0), 0),
			wantPhase: v1alpha1.PhaseProgressing, wantStep: 4, wantWeight: 5, commit: true},
		{name: "promote request skips the remaining steps", in: input(release(t, canarySteps, "  promote: {revision: 2222222}\n"), inflight(1, 5, v1alpha1.PhasePaused, 0), 0),
			wantPhase: v1alpha1.PhasePromoting, wantStep: 1, wantWeight: 100, commit: true},
		{name: "aborted version is not retried", in: Input{Spec: r, HeadRevision: canaryRev, HeadDigest: "c", Status: v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseAborted, Stable: rev(stableRev, "s"), AbortedDigest: "c"}, Observed: Observed{StableDigest: "s", StableReady: true}, Now: t0},
			wantPhase: v1alpha1.PhaseAborted},
		{name: "weights-only change is not a new version", in: Input{Spec: r, HeadRevision: newerRev, HeadDigest: "s", Status: v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(stableRev, "s")}, Observed: Observed{StableDigest: "s", StableReady: true}, Now: t0},
			wantPhase: v1alpha1.PhaseSucceeded},
		{name: "canary failed in the cluster", in: func() Input {
			in := input(release(t, canarySteps, "  onFailure: revert\n"), inflight(1, 5, v1alpha1.PhasePaused, 0), 0)
			in.Observed.Failed, in.Observed.Message = true, "ProgressDeadlineExceeded"
			return in
		}(), wantPhase: v1alpha1.PhaseAborted, commit: true,
			check: func(t *testing.T, p Plan) {
				if !p.RevertFiles {
					t.Error("onFailure: revert did not ask for the files")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Next(tt.in)
			st := p.Status
			if st.Phase != tt.wantPhase || st.Step != tt.wantStep || st.Weight != tt.wantWeight || p.Commit != tt.commit {
				t.Fatalf("got phase %s step %d weight %d commit %v (%s), want %s %d %d %v", st.Phase, st.Step, st.Weight, p.Commit, st.Message, tt.wantPhase, tt.wantStep, tt.wantWeight, tt.commit)
			}
			var wake time.Duration
			if !p.WakeAt.IsZero() {
				wake = p.WakeAt.Sub(t0)
			}
			if tt.wake != 0 && wake != tt.wake {
				t.Errorf("wake at +%s, want +%s", wake, tt.wake)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			// Pure: the same input, the same plan; and a status written and
			// read back gives the same decision.
			if diff := cmp.Diff(p, Next(tt.in)); diff != "" {
				t.Errorf("not deterministic:\n%s", diff)
			}
			b, _ := yaml.Marshal(tt.in.Status)
			var back v1alpha1.ReleaseStatus
			if err := yaml.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			in2 := tt.in
			in2.Status = back
			if diff := cmp.Diff(p, Next(in2)); diff != "" {
				t.Errorf("status round trip changes the decision:\n%s", diff)
			}
		})
	}
}

func TestManualMode(t *testing.T) {
	manual := func(w int32) *v1alpha1.Release {
		return release(t, "    canary:\n      weight: "+itoa(w)+"\n      checks: [ok]", "")
	}
	w10, w25 := int32(10), int32(25)
	tests := []struct {
		name       string
		r          *v1alpha1.Release
		stableW    *int32
		statusW    int32
		results    []Measurement
		wantPhase  v1alpha1.Phase
		wantWeight int32
		wantCommit bool
	}{
		{"PR sets 10 with the new image", manual(10), nil, 0, nil, v1alpha1.PhaseProgressing, 10, true},
		{"leftover weight from the last rollout stays at 0", manual(25), &w25, 0, nil, v1alpha1.PhasePaused, 0, true},
		{"raised to 25", manual(25), &w10, 10, nil, v1alpha1.PhaseProgressing, 25, true},
		{"lowered to 10 is allowed", manual(10), &w25, 25, nil, v1alpha1.PhaseProgressing, 10, true},
		{"unchanged weight waits", manual(10), nil, 10, nil, v1alpha1.PhasePaused, 10, true},
		{"100 promotes", manual(100), &w10, 50, nil, v1alpha1.PhasePromoting, 100, true},
		{"checks run all the time and abort", manual(10), nil, 10, []Measurement{{Check: "ok", Outcome: Fail}, {Check: "ok", Outcome: Fail}}, v1alpha1.PhaseAborted, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(tt.r, inflight(0, tt.statusW, v1alpha1.PhaseProgressing, 0), time.Minute)
			in.StableSpecWeight = tt.stableW
			in.Results = tt.results
			p := Next(in)
			if p.Status.Phase != tt.wantPhase || p.Status.Weight != tt.wantWeight || p.Commit != tt.wantCommit {
				t.Errorf("got %s weight %d commit %v (%s)", p.Status.Phase, p.Status.Weight, p.Commit, p.Status.Message)
			}
		})
	}
	// Continuous checks fall due every interval from the weight's start.
	in := input(manual(10), inflight(0, 10, v1alpha1.PhasePaused, 0), 25*time.Second)
	in.Status.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 2}}
	if due := DueChecks(in); len(due) != 1 {
		t.Errorf("due = %v at +25s after 2 measurements every 10s", due)
	}
	in.Status.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 3}}
	if due := DueChecks(in); len(due) != 0 {
		t.Errorf("due = %v at +25s after 3 measurements", due)
	}
}

func itoa(v int32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(v)) }

func fmtInt(v int32) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

func TestPresets(t *testing.T) {
	t.Run("blue-green without autoPromote waits at the gate, then switches 0 to 100", func(t *testing.T) {
		r := release(t, "    blueGreen: {checks: [once]}", "")
		st := inflight(0, 0, v1alpha1.PhaseProgressing, 0)
		var weights []int32
		for i := 0; i < 10 && st.Phase != v1alpha1.PhasePromoting; i++ {
			in := input(r, st, time.Duration(i)*time.Minute)
			if due := DueChecks(in); len(due) > 0 {
				in.Results = []Measurement{{Check: "once", Outcome: Pass, Value: "ok"}}
			}
			p := Next(in)
			if p.CanaryReplicas != 4 && p.Status.Step > 0 {
				t.Errorf("blue-green canary at %d replicas, want full size 4", p.CanaryReplicas)
			}
			weights = append(weights, p.Route.Weight)
			if p.Status.Phase == v1alpha1.PhasePaused && !p.Commit {
				st = p.Status
				break
			}
			st = p.Status
		}
		if st.Phase != v1alpha1.PhasePaused || !strings.Contains(st.Message, `"promote"`) {
			t.Fatalf("blue-green did not wait at the promote gate: %s %s", st.Phase, st.Message)
		}
		for _, w := range weights {
			if w != 0 {
				t.Errorf("blue-green gave the new version traffic before the switch: %v", weights)
			}
		}
		r2 := release(t, "    blueGreen: {checks: [once]}", "  gates:\n    approved:\n    - {gate: promote, revision: 2222222}\n")
		p := Next(input(r2, st, time.Hour))
		p = Next(input(r2, p.Status, time.Hour))
		if p.Status.Phase != v1alpha1.PhasePromoting || p.Route.Weight != 100 {
			t.Errorf("after approval: %s weight %d", p.Status.Phase, p.Route.Weight)
		}
	})
	t.Run("blue-green autoPromote", func(t *testing.T) {
		r := release(t, "    blueGreen: {autoPromote: true}", "")
		st := inflight(0, 0, v1alpha1.PhaseProgressing, 0)
		p := Next(input(r, st, 0))      // setCanaryScale 100%
		p = Next(input(r, p.Status, 0)) // setWeight 100
		if p.Status.Phase != v1alpha1.PhasePromoting {
			t.Errorf("phase = %s", p.Status.Phase)
		}
	})
	t.Run("A/B header route precedes the default rule", func(t *testing.T) {
		r := release(t, "    abTest:\n      match: {headers: [{name: User-Agent, type: RegularExpression, value: \".*Firefox.*\"}, {name: Accept-Language, type: RegularExpression, value: \"^ko.*\"}]}", "")
		p := Next(input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 0))
		if len(p.Route.HeaderRoutes) != 1 || p.Route.Weight != 0 {
			t.Fatalf("route = %+v", p.Route)
		}
	})
	t.Run("shadow with promote: false keeps stable", func(t *testing.T) {
		r := release(t, "    shadow: {percent: 20, promote: false}", "")
		p := Next(input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 0))
		if p.Route.MirrorPercent != 20 || p.Route.Weight != 0 {
			t.Fatalf("route = %+v", p.Route)
		}
		p = Next(input(r, p.Status, 0))
		if p.Status.Phase != v1alpha1.PhaseSucceeded || p.Status.Stable.Revision != stableRev || !p.DeleteCanary {
			t.Errorf("shadow end: %+v", p.Status)
		}
	})
}

func TestInstallAndRolling(t *testing.T) {
	r := release(t, "    rolling: {maxSurge: 1, checks: [once]}", "  onFailure: revert\n")
	in := Input{Spec: r, HeadRevision: stableRev, HeadDigest: "s", Replicas: 2, Now: t0}
	p := Next(in)
	if p.Status.Phase != v1alpha1.PhaseProgressing || p.Stable != StableFromHead || !p.Commit {
		t.Fatalf("install start: %+v", p)
	}
	in.Status, in.Observed = p.Status, Observed{StableDigest: "s", StableReady: true}
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseSucceeded || p.Status.Stable.Digest != "s" || !p.Commit {
		t.Fatalf("install done: %+v", p.Status)
	}
	// A new version rolls out, is checked, succeeds.
	in.Status, in.HeadRevision, in.HeadDigest = p.Status, canaryRev, "c"
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseProgressing || p.Stable != StableFromHead {
		t.Fatalf("rollout start: %+v", p)
	}
	in.Status, in.Observed = p.Status, Observed{StableDigest: "c", StableReady: true}
	if due := DueChecks(in); len(due) != 1 {
		t.Fatalf("post-rollout checks due = %v", due)
	}
	in.Results = []Measurement{{Check: "once", Outcome: Pass}}
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseSucceeded || p.Status.Stable.Digest != "c" {
		t.Fatalf("rollout done: %+v", p.Status)
	}
	// A version that never becomes ready rolls back to the stable revision.
	in.Status, in.HeadRevision, in.HeadDigest, in.Results = p.Status, newerRev, "n", nil
	p = Next(in)
	in.Status, in.Observed = p.Status, Observed{StableDigest: "c", StableReady: true}
	in.Now = t0.Add(ProgressDeadline + time.Minute)
	p = Next(in)
	if p.Status.Phase != v1alpha1.PhaseRolledBack || p.Stable != StableFromStable || !p.RevertFiles || p.Status.AbortedDigest != "n" {
		t.Fatalf("rollback: %+v", p)
	}
	in.Status = p.Status
	if p = Next(in); p.Commit || p.Status.Phase != v1alpha1.PhaseRolledBack {
		t.Errorf("a rolled-back version was retried: %+v", p.Status)
	}
}

func TestCheckEdgeCases(t *testing.T) {
	steps := `    canary:
      steps:
      - check: [ok]
      - setWeight: 10
      - check: [ok]
      - setWeight: 50
      - check: [ok]
      - setWeight: 100`
	incl := `  - name: flaky
    webhook: {url: "http://x"}
    count: 3
    inconclusiveLimit: 1
`
	r := release(t, steps, "")
	fail2 := []Measurement{{Check: "ok", Outcome: Fail, Value: "500"}}
	for _, step := range []int32{0, 2, 4} { // first, middle and last check step
		st := inflight(step, 10, v1alpha1.PhaseProgressing, 0)
		st.Checks = []v1alpha1.CheckState{{Name: "ok", Failed: 1}}
		in := input(r, st, 10*time.Second)
		in.Results = fail2
		if p := Next(in); p.Status.Phase != v1alpha1.PhaseAborted || p.Route.Weight != 0 || p.Canary {
			t.Errorf("check failing at step %d: %s %+v", step, p.Status.Phase, p.Route)
		}
	}
	// Inconclusive results have their own limit.
	ri := release(t, "    canary:\n      steps:\n      - check: [flaky]\n      - setWeight: 100", incl)
	st := inflight(0, 0, v1alpha1.PhaseProgressing, 0)
	in := input(ri, st, 0)
	in.Results = []Measurement{{Check: "flaky", Outcome: Inconclusive, Value: "empty result"}}
	p := Next(in)
	if p.Status.Phase == v1alpha1.PhaseAborted || p.Status.Checks[0].Inconclusive != 1 {
		t.Fatalf("one inconclusive within the limit: %+v", p.Status)
	}
	in = input(ri, p.Status, 30*time.Second)
	in.Results = []Measurement{{Check: "flaky", Outcome: Inconclusive, Value: "NaN"}}
	if p = Next(in); p.Status.Phase != v1alpha1.PhaseAborted || !strings.Contains(p.Status.Message, "inconclusive 2 times") {
		t.Errorf("over the inconclusive limit: %s %s", p.Status.Phase, p.Status.Message)
	}
	// A gate whose approval is removed while waiting keeps waiting.
	approved := release(t, canarySteps, "  gates:\n    approved:\n    - {gate: qa, revision: 2222222}\n")
	p = Next(input(approved, inflight(6, 25, v1alpha1.PhasePaused, 0), 0))
	if p.Status.Step != 7 {
		t.Fatalf("approved gate did not pass: %+v", p.Status)
	}
	if p = Next(input(release(t, canarySteps, ""), inflight(6, 25, v1alpha1.PhasePaused, 0), time.Hour)); p.Status.Step != 6 || p.Status.Phase != v1alpha1.PhasePaused {
		t.Errorf("gate with the approval removed: %+v", p.Status)
	}
}
