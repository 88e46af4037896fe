package v1alpha1

import (
	"fmt"
	"strings"
)

// Preset gate and route names used when a preset expands to steps.
const (
	// DefaultBlueGreenGate is the gate a blue-green release waits at before
	// the switch, unless autoPromote is set or another gate is named.
	DefaultBlueGreenGate = "promote"
	// PreviewRouteName names blue-green's preview header route.
	PreviewRouteName = "preview"
	// ABTestRouteName names the A/B test's header route.
	ABTestRouteName = "ab-test"
)

// Routed reports whether the strategy shifts traffic through an HTTPRoute.
func (s *Strategy) Routed() bool {
	return s.Canary != nil || s.BlueGreen != nil || s.ABTest != nil || s.Shadow != nil
}

// Mirrors says whether any step mirrors requests to the canary.
func (s *Strategy) Mirrors() bool {
	for _, st := range s.Steps() {
		if st.SetMirror != nil && st.SetMirror.Percent > 0 {
			return true
		}
	}
	return false
}

// MirrorsShare says whether a step mirrors part of the requests (a percent
// between 0 and 100), which needs the Gateway's percentage mirroring.
func (s *Strategy) MirrorsShare() bool {
	for _, st := range s.Steps() {
		if st.SetMirror != nil && st.SetMirror.Percent > 0 && st.SetMirror.Percent < 100 {
			return true
		}
	}
	return false
}

// Name is the strategy's name as written in the file, or "" if none is set.
func (s *Strategy) Name() string {
	switch {
	case s.Canary != nil:
		return "canary"
	case s.BlueGreen != nil:
		return "blueGreen"
	case s.ABTest != nil:
		return "abTest"
	case s.Shadow != nil:
		return "shadow"
	case s.Rolling != nil:
		return "rolling"
	case s.Recreate != nil:
		return "recreate"
	}
	return ""
}

// Manual reports whether the release is a canary in manual (PR-driven
// weight) mode.
func (s *Strategy) Manual() bool { return s.Canary != nil && s.Canary.Weight != nil }

func i32(v int32) *int32 { return &v }

// Steps returns the step list the strategy runs: the canary's steps, or the
// expansion of a preset. Manual mode, rolling and recreate have no steps.
// The last step of a preset that promotes is setWeight: 100.
func (s *Strategy) Steps() []Step {
	switch {
	case s.Canary != nil:
		return s.Canary.Steps
	case s.BlueGreen != nil:
		b := s.BlueGreen
		steps := []Step{{SetCanaryScale: &CanaryScale{Percent: i32(100)}}}
		if b.PreviewMatch != nil {
			steps = append(steps, Step{SetHeaderRoute: &HeaderRoute{Name: PreviewRouteName, Match: *b.PreviewMatch, Weight: i32(100)}})
		}
		if len(b.Checks) > 0 {
			steps = append(steps, Step{Check: b.Checks})
		}
		if !b.AutoPromote {
			gate := b.Gate
			if gate == "" {
				gate = DefaultBlueGreenGate
			}
			steps = append(steps, Step{Pause: &Pause{Gate: gate}})
		}
		return append(steps, Step{SetWeight: i32(100)})
	case s.ABTest != nil:
		a := s.ABTest
		w := a.Weight
		if w == nil {
			w = i32(100)
		}
		steps := []Step{{SetHeaderRoute: &HeaderRoute{Name: ABTestRouteName, Match: a.Match, Weight: w}}}
		if a.Duration != nil {
			steps = append(steps, Step{Pause: &Pause{Duration: a.Duration}})
		}
		if len(a.Checks) > 0 {
			steps = append(steps, Step{Check: a.Checks})
		}
		if a.Gate != "" {
			steps = append(steps, Step{Pause: &Pause{Gate: a.Gate}})
		}
		return append(steps, Step{SetWeight: i32(100)})
	case s.Shadow != nil:
		sh := s.Shadow
		steps := []Step{{SetMirror: &Mirror{Percent: sh.Percent}}}
		if sh.Duration != nil {
			steps = append(steps, Step{Pause: &Pause{Duration: sh.Duration}})
		}
		if len(sh.Checks) > 0 {
			steps = append(steps, Step{Check: sh.Checks})
		}
		if sh.Gate != "" {
			steps = append(steps, Step{Pause: &Pause{Gate: sh.Gate}})
		}
		if sh.Promote == nil || *sh.Promote {
			steps = append(steps, Step{SetMirror: &Mirror{Percent: 0}}, Step{SetWeight: i32(100)})
		}
		return steps
	}
	return nil
}

// Kind names the step's kind as written in the file.
func (s *Step) Kind() string {
	switch {
	case s.SetWeight != nil:
		return "setWeight"
	case s.Pause != nil:
		return "pause"
	case s.Check != nil:
		return "check"
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute"
	case s.SetMirror != nil:
		return "setMirror"
	case s.SetCanaryScale != nil:
		return "setCanaryScale"
	}
	return ""
}

// Gates lists the gates the strategy's pause steps name, in order.
func (s *Strategy) Gates() []string {
	var gates []string
	for _, st := range s.Steps() {
		if st.Pause != nil && st.Pause.Gate != "" {
			gates = append(gates, st.Pause.Gate)
		}
	}
	return gates
}

// ConfirmedBy names the check that may open gate, "" when none does.
func (g Gates) ConfirmedBy(gate string) string {
	for _, c := range g.Confirm {
		if c.Gate == gate {
			return c.Check
		}
	}
	return ""
}

// Passed reports whether gate is approved for the canary revision rev.
// Approvals for other revisions are ignored, so an approval left in the file
// never passes the next version's gate.
func (g Gates) Passed(gate, rev string) bool {
	for _, a := range g.Approved {
		if a.Gate == gate && rev != "" && SameRevision(a.Revision, rev) {
			return true
		}
	}
	return false
}

// SameRevision reports whether a (possibly abbreviated, at least 7 hex
// digits) revision names the full commit rev.
func SameRevision(short, rev string) bool {
	if len(short) < 7 || len(short) > len(rev) {
		return short == rev && short != ""
	}
	return rev[:len(short)] == short
}

// CheckByName returns the check named name, or nil.
func (s *ReleaseSpec) CheckByName(name string) *Check {
	for i := range s.Checks {
		if s.Checks[i].Name == name {
			return &s.Checks[i]
		}
	}
	return nil
}

// CanaryName is the name of the canary copy of a release's object: the
// canary Deployment of its workload, the canary Service its route sends
// the canary's share to.
func CanaryName(name string) string { return name + "-canary" }

// BaselineName is the name of the baseline copy of a release's object
// (spec.analysis.baseline).
func BaselineName(name string) string { return name + "-baseline" }

// String is a step as people read it in a status table: "setWeight: 20",
// "pause{gate: qa}", "pause{duration: 30s}", "check: [errors latency]".
func (s Step) String() string {
	var parts []string
	if s.SetWeight != nil {
		parts = append(parts, fmt.Sprintf("setWeight: %d", *s.SetWeight))
	}
	if s.Pause != nil {
		switch {
		case s.Pause.Gate != "":
			parts = append(parts, "pause{gate: "+s.Pause.Gate+"}")
		case s.Pause.Duration != nil:
			parts = append(parts, "pause{duration: "+s.Pause.Duration.Duration.String()+"}")
		default:
			parts = append(parts, "pause")
		}
	}
	if len(s.Check) > 0 {
		parts = append(parts, "check: ["+strings.Join(s.Check, " ")+"]")
	}
	if s.SetHeaderRoute != nil {
		parts = append(parts, "setHeaderRoute: "+s.SetHeaderRoute.Name)
	}
	if s.SetMirror != nil {
		parts = append(parts, "setMirror")
	}
	if s.SetCanaryScale != nil {
		parts = append(parts, "setCanaryScale")
	}
	return strings.Join(parts, ", ")
}
