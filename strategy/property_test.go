package strategy

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// walkSpecs are the strategies the walks drive; %d in the manual one is
// the weight the walk's pull requests set.
var walkSpecs = []string{
	canarySteps,
	"    blueGreen: {checks: [ok], previewMatch: {headers: [{name: X-Preview, value: \"1\"}]}}",
	"    abTest: {match: {headers: [{name: User-Agent, value: Firefox}]}, checks: [once], gate: qa2}",
	"    shadow: {percent: 30, duration: 1m, checks: [ok]}",
	"    canary: {steps: [{setMirror: {percent: 100}}, {setWeight: 0}, {setCanaryScale: {matchTrafficWeight: true}}, {setWeight: 60}, {check: [ok, once]}, {setMirror: {percent: 0}}]}",
	"    canary: {weight: %d, checks: [ok]}",
	"    rolling: {checks: [once]}",
}

// events draws the walk's choices from bytes: the fuzzer's input first,
// then (for the seeded walks) a PCG stream. With no stream, the walk ends
// when the bytes do, so the fuzzer steers every choice.
type events struct {
	data []byte
	rng  *rand.Rand
}

func (e *events) byte() (byte, bool) {
	if len(e.data) > 0 {
		b := e.data[0]
		e.data = e.data[1:]
		return b, true
	}
	if e.rng == nil {
		return 0, false
	}
	return byte(e.rng.Uint32()), true
}

func (e *events) intn(n int) int {
	b, _ := e.byte()
	return int(b) % n
}

// reached names what the walks got to, for the reachability check.
type reached map[string]bool

// walkEvents drives Next through the events and checks, on every decision,
// the reason it was allowed. It returns the first broken promise.
func walkEvents(t *testing.T, ev *events, steps int, seen reached, visit func(Input, Plan)) error {
	specIdx := ev.intn(len(walkSpecs))
	revOf := map[string]string{"s": stableRev, "c": canaryRev, "n": newerRev}
	versions := []string{"s", "c", "n"}
	head, approve, abortReq, promoteReq, weight := "c", false, false, false, int32(10)
	now := t0
	st := v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(stableRev, "s")}
	obs := Observed{StableDigest: "s", StableReady: true}
	route := routeObj(t, userRoute)
	// trueStart is when the current step really began (the model's clock,
	// not the status's): a status that stored it rounded would show here.
	trueStart := now
	passed := map[string]map[int]bool{}
	for i := 0; i < steps; i++ {
		b, ok := ev.byte()
		if !ok {
			return nil
		}
		switch b % 16 {
		case 0, 1:
			head = versions[ev.intn(len(versions))]
		case 2:
			approve = !approve
		case 3:
			obs.CanaryReady = !obs.CanaryReady
		case 4:
			abortReq = ev.intn(4) == 0
		case 5:
			promoteReq = ev.intn(3) == 0
		case 6:
			weight = []int32{0, 10, 25, 50, 100}[ev.intn(5)]
		case 7:
			obs.Failed, obs.Message = ev.intn(6) == 0, "ProgressDeadlineExceeded"
		case 8:
			obs.StableReady = ev.intn(5) != 0
		}
		// Sub-second clocks: milliseconds up to 90 s.
		now = now.Add(time.Duration(int(binary.BigEndian.Uint16([]byte{byte(ev.intn(256)), byte(ev.intn(256))}))%90000) * time.Millisecond)

		spec := walkSpecs[specIdx]
		if strings.Contains(spec, "%d") {
			spec = fmt.Sprintf(spec, weight)
		}
		r := cachedRelease(t, spec, walkExtra(r0Gates(t, spec), head, revOf, approve, abortReq, promoteReq, st))
		in := Input{Spec: r, HeadRevision: revOf[head], HeadDigest: head, Replicas: 3, Status: st, Observed: obs, Now: now}
		due := DueChecks(in)
		for _, c := range due {
			o := Pass
			switch ev.intn(10) {
			case 0:
				o = Fail
			case 1:
				o = Inconclusive
			}
			in.Results = append(in.Results, Measurement{Check: c, Outcome: o, Value: string(o)})
		}
		p := Next(in)
		if visit != nil {
			visit(in, p)
		}
		if err := checkDecision(in, p, due, trueStart, passed, route, seen); err != nil {
			return fmt.Errorf("step %d (spec %d, %s): %w", i, specIdx, p.Subject, err)
		}
		if p.Commit && p.Status.StepStartedAt != nil && (st.StepStartedAt == nil || !p.Status.StepStartedAt.Equal(*st.StepStartedAt)) {
			trueStart = now
		}
		// The cluster follows the plan.
		switch {
		case p.Stable == StableFromHead:
			obs.StableDigest = head
		case p.Status.Stable != nil:
			obs.StableDigest = p.Status.Stable.Digest
		}
		if p.DeleteCanary {
			obs.CanaryReady, obs.Failed = false, false
		} else if p.Canary && ev.intn(2) == 0 {
			obs.CanaryReady = true
		}
		// status.yaml is written and read back as the agent does.
		st = roundTrip(t, p.Status)
	}
	return nil
}

// r0Gates is the gates the strategy's steps name.
func r0Gates(t *testing.T, spec string) []string {
	return cachedRelease(t, spec, "").Spec.Strategy.Gates()
}

// walkExtra is the spec's requests for this call: approvals (for the head
// revision, as people approve what they see), an abort, a promotion.
func walkExtra(gates []string, head string, revOf map[string]string, approve, abortReq, promoteReq bool, st v1alpha1.ReleaseStatus) string {
	extra := ""
	if approve && len(gates) > 0 {
		extra += "  gates:\n    approved:\n"
		for _, g := range gates {
			extra += fmt.Sprintf("    - {gate: %s, revision: %s}\n", g, revOf[head][:7])
		}
	}
	if abortReq {
		extra += fmt.Sprintf("  abort: {revision: %s}\n", revOf[head][:7])
	}
	if promoteReq {
		extra += fmt.Sprintf("  promote: {revision: %s}\n", revOf[head][:7])
	}
	return extra
}

func roundTrip(t *testing.T, st v1alpha1.ReleaseStatus) v1alpha1.ReleaseStatus {
	b, err := yaml.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back v1alpha1.ReleaseStatus
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// checkDecision is the oracle: every transition is checked against the
// reason the contract gives for it, computed from the call's own input.
func checkDecision(in Input, p Plan, due []string, trueStart time.Time, passed map[string]map[int]bool, route *unstructured.Unstructured, seen reached) error {
	st, spec := in.Status, &in.Spec.Spec
	steps := spec.Strategy.Steps()
	// Pure and idempotent, and the same after a status round trip.
	if again := Next(in); !reflect.DeepEqual(p, again) {
		return fmt.Errorf("not deterministic: %s", cmp.Diff(p, again))
	}
	// Weights in range and summing to 100 per rule.
	if spec.Strategy.Routed() {
		out, err := TransformRoute(route, "shop", "app", p.Route)
		if err != nil {
			return err
		}
		rules, _, _ := unstructured.NestedSlice(out.Object, "spec", "rules")
		for _, rr := range rules {
			refs, _, _ := unstructured.NestedSlice(rr.(map[string]any), "backendRefs")
			sum, split := int64(0), false
			for _, ref := range refs {
				m := ref.(map[string]any)
				w, ok := m["weight"].(int64)
				if m["name"] == "app" || m["name"] == "app-canary" {
					split = split || ok
					if w < 0 || w > 100 {
						return fmt.Errorf("weight %d", w)
					}
					sum += w
				}
			}
			if split && sum != 100 {
				return fmt.Errorf("rule weights sum to %d", sum)
			}
		}
	}
	if p.DeleteCanary && (p.Canary || p.Route.Weight != 0 || p.Route.MirrorPercent != 0) {
		return fmt.Errorf("abort left traffic: %+v", p.Route)
	}
	same := st.Canary != nil && p.Status.Canary != nil && st.Canary.Revision == p.Status.Canary.Revision
	advanced := same && p.Status.Step == st.Step+1 && spec.Strategy.Routed() && !spec.Strategy.Manual()
	if advanced && int(st.Step) < len(steps) {
		s := steps[st.Step]
		switch {
		case s.Pause != nil && s.Pause.Gate != "":
			ok := false
			for _, a := range spec.Gates.Approved {
				ok = ok || (a.Gate == s.Pause.Gate && strings.HasPrefix(st.Canary.Revision, a.Revision))
			}
			if !ok {
				return fmt.Errorf("gate %s passed with no approval for %s in this call's spec", s.Pause.Gate, st.Canary.Revision)
			}
			seen["gate passed"] = true
		case s.Pause != nil && s.Pause.Duration != nil:
			if end := trueStart.Add(s.Pause.Duration.Duration); in.Now.Before(end) {
				return fmt.Errorf("pause of %s ended %s early", s.Pause.Duration.Duration, end.Sub(in.Now))
			}
			seen["pause passed"] = true
		case s.Check != nil:
			for _, name := range s.Check {
				c := spec.CheckByName(name)
				var n, failed, inconclusive int32
				for _, cs := range st.Checks {
					if cs.Name == name {
						n, failed, inconclusive = cs.Passed+cs.Failed+cs.Inconclusive, cs.Failed, cs.Inconclusive
					}
				}
				for _, m := range in.Results {
					if m.Check == name {
						n++
						if m.Outcome == Fail {
							failed++
						}
						if m.Outcome == Inconclusive {
							inconclusive++
						}
					}
				}
				if n < count(c) || failed > limit(c.FailureLimit) || inconclusive > limit(c.InconclusiveLimit) {
					return fmt.Errorf("check step advanced with %s at %d/%d measurements, %d failed, %d inconclusive", name, n, count(c), failed, inconclusive)
				}
			}
			seen["check step passed"] = true
		}
		if passed[st.Canary.Revision] == nil {
			passed[st.Canary.Revision] = map[int]bool{}
		}
		passed[st.Canary.Revision][int(st.Step)] = true
	}
	// A revert: the head is the stable version.
	if spec.Strategy.Routed() && st.Stable != nil && in.HeadDigest == st.Stable.Digest {
		if st.Canary != nil {
			if p.Status.Phase != v1alpha1.PhaseRolledBack || len(due) > 0 {
				return fmt.Errorf("a revert mid-canary gave %s with checks due %v", p.Status.Phase, due)
			}
			seen["revert mid-canary"] = true
		} else if p.Status.Canary != nil {
			return fmt.Errorf("a revert to the stable version started a canary")
		}
	}
	// Promotion: from the last steps, every gate and check step passed,
	// unless requested for this revision.
	if st.Phase != v1alpha1.PhasePromoting && p.Status.Phase == v1alpha1.PhasePromoting && !p.Status.Rollback && !spec.Strategy.Manual() {
		requested := spec.Promote != nil && strings.HasPrefix(p.Status.Canary.Revision, spec.Promote.Revision)
		if requested {
			seen["promoted by request"] = true
		} else {
			for k, s := range steps {
				if k >= int(st.Step) {
					break
				}
				if (s.Check != nil || (s.Pause != nil && s.Pause.Gate != "")) && !passed[p.Status.Canary.Revision][k] {
					return fmt.Errorf("promoting %s without passing step %d (%s)", p.Status.Canary.Revision, k, s.Kind())
				}
			}
			if int(st.Step) < len(steps)-1 {
				return fmt.Errorf("promoting from step %d of %d", st.Step, len(steps))
			}
		}
	}
	if p.Status.Canary == nil || (st.Canary != nil && p.Status.Canary.Revision != st.Canary.Revision) {
		if st.Canary != nil {
			delete(passed, st.Canary.Revision)
		}
	}
	// An abort has a reason the call's input holds.
	if p.Status.Phase == v1alpha1.PhaseAborted && st.Phase != v1alpha1.PhaseAborted && st.Canary != nil {
		msg := p.Status.Message
		switch {
		case strings.Contains(msg, "aborted:"):
			if spec.Abort == nil || !strings.HasPrefix(st.Canary.Revision, spec.Abort.Revision) {
				return fmt.Errorf("aborted by a request this call's spec does not hold")
			}
			seen["aborted by request"] = true
		case strings.Contains(msg, "canary failed"):
			if !in.Observed.Failed {
				return fmt.Errorf("aborted for a failure the cluster did not report")
			}
			seen["aborted: canary failed"] = true
		case strings.Contains(msg, "inconclusive"):
			seen["aborted: inconclusive"] = true
		case strings.Contains(msg, "failed"):
			seen["aborted: check failed"] = true
		case strings.Contains(msg, "not ready"):
			seen["aborted: not ready"] = true
		}
	}
	switch {
	case st.Phase != v1alpha1.PhaseSucceeded && p.Status.Phase == v1alpha1.PhaseSucceeded && spec.Strategy.Routed():
		seen["promoted"] = true
	case spec.Strategy.Manual() && p.Commit && strings.HasPrefix(p.Subject, "weight "):
		seen["manual weight"] = true
	case spec.Strategy.Rolling != nil && p.Status.Phase == v1alpha1.PhaseSucceeded && st.Phase == v1alpha1.PhaseProgressing:
		seen["rolled out"] = true
	case spec.Strategy.Rolling != nil && p.Status.Phase == v1alpha1.PhaseRolledBack && st.Phase != v1alpha1.PhaseRolledBack:
		seen["rolling rolled back"] = true
	case st.Phase == v1alpha1.PhasePromoting && !in.Observed.StableReady && p.Status.Phase == v1alpha1.PhasePromoting:
		seen["promotion waits for a ready stable"] = true
	}
	return nil
}

var releaseCache = map[string]*v1alpha1.Release{}

// cachedRelease parses each spec once; walks only read releases.
func cachedRelease(t *testing.T, strategy, extra string) *v1alpha1.Release {
	key := strategy + "\x00" + extra
	if r, ok := releaseCache[key]; ok {
		return r
	}
	r := release(t, strategy, extra)
	releaseCache[key] = r
	return r
}

// recordWalk runs a seeded walk handing every decision to visit.
func recordWalk(t *testing.T, seed uint64, steps int, visit func(Input, Plan)) {
	ev := &events{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if err := walkEvents(t, ev, steps, reached{}, visit); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
}

// walkReach is everything the seeded walks must get to: a walk that never
// reaches a transition proves nothing about it.
var walkReach = []string{"gate passed", "pause passed", "check step passed", "revert mid-canary", "promoted",
	"promoted by request", "aborted by request", "aborted: canary failed", "aborted: check failed", "aborted: inconclusive",
	"manual weight", "rolled out", "rolling rolled back", "promotion waits for a ready stable"}

func TestRandomWalks(t *testing.T) {
	seen := reached{}
	for seed := range uint64(300) {
		ev := &events{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
		if err := walkEvents(t, ev, 120, seen, nil); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	for _, what := range walkReach {
		if !seen[what] {
			t.Errorf("no walk reached %q", what)
		}
	}
}

// FuzzStateMachine lets the fuzzer choose every event from its input
// bytes: go test -fuzz FuzzStateMachine ./strategy
func FuzzStateMachine(f *testing.F) {
	for _, s := range [][]byte{{0, 1, 2, 3}, []byte("sluice walks the state machine"), {5, 16, 32, 2, 2, 2, 9, 9, 9, 9, 9, 9, 9, 9, 9}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := walkEvents(t, &events{data: data}, 400, reached{}, nil); err != nil {
			t.Fatal(err)
		}
	})
}
