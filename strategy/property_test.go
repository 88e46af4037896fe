package strategy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// walkSpecs are the strategies the random walks drive.
var walkSpecs = []string{
	canarySteps,
	"    blueGreen: {checks: [ok], previewMatch: {headers: [{name: X-Preview, value: \"1\"}]}}",
	"    abTest: {match: {headers: [{name: User-Agent, value: Firefox}]}, checks: [once], gate: qa2}",
	"    shadow: {percent: 30, duration: 1m, checks: [ok]}",
	"    canary: {steps: [{setMirror: {percent: 100}}, {setWeight: 0}, {setCanaryScale: {matchTrafficWeight: true}}, {setWeight: 60}, {check: [ok, once]}, {setMirror: {percent: 0}}]}",
}

// walk drives Next through a random sequence of events and checks the
// invariants after every decision. It returns an error describing the
// first broken invariant.
func walk(t *testing.T, seed uint64, steps int) error {
	return walkWith(t, seed, steps, nil)
}

// recordWalk runs a walk handing every decision to visit.
func recordWalk(t *testing.T, seed uint64, steps int, visit func(Input, Plan)) {
	if err := walkWith(t, seed, steps, visit); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
}

func walkWith(t *testing.T, seed uint64, steps int, visit func(Input, Plan)) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	specIdx := rng.IntN(len(walkSpecs))
	specGates := release(t, walkSpecs[specIdx], "").Spec.Strategy.Gates()
	versions := []string{"s", "c", "n"}
	revOf := map[string]string{"s": stableRev, "c": canaryRev, "n": newerRev}
	head := "c"
	approve := false
	now := t0
	st := v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseSucceeded, Stable: rev(stableRev, "s")}
	obs := Observed{StableDigest: "s", StableReady: true}
	route := routeObj(t, userRoute)
	// passed[rev] records the gate and check steps each canary got past.
	passed := map[string]map[int]bool{}
	for i := range steps {
		// Events.
		switch rng.IntN(10) {
		case 0:
			head = versions[rng.IntN(len(versions))]
		case 1:
			approve = !approve
		case 2:
			obs.CanaryReady = !obs.CanaryReady
		}
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		extra := ""
		if approve && len(specGates) > 0 {
			extra = "  gates:\n    approved:\n"
			for _, g := range specGates {
				extra += fmt.Sprintf("    - {gate: %s, revision: %s}\n", g, revOf[head][:7])
			}
		}
		r := cachedRelease(t, walkSpecs[specIdx], extra)
		in := Input{Spec: r, HeadRevision: revOf[head], HeadDigest: head, Replicas: 3, Status: st, Observed: obs, Now: now}
		for _, c := range DueChecks(in) {
			o := Pass
			if rng.IntN(8) == 0 {
				o = Fail
			}
			in.Results = append(in.Results, Measurement{Check: c, Outcome: o, Value: string(o)})
		}
		p := Next(in)
		if visit != nil {
			visit(in, p)
		}

		// Invariant: pure and idempotent.
		if again := Next(in); !reflect.DeepEqual(p, again) {
			return fmt.Errorf("step %d: not deterministic: %s", i, cmp.Diff(p, again))
		}
		// Invariant: a status written and read back gives the same decision
		// (status.yaml is written through JSON by sigs.k8s.io/yaml; the
		// YAML layer itself is round-tripped in TestCanaryTransitions).
		b, _ := json.Marshal(in.Status)
		var back v1alpha1.ReleaseStatus
		if err := json.Unmarshal(b, &back); err != nil {
			return err
		}
		in2 := in
		in2.Status = back
		if again := Next(in2); !reflect.DeepEqual(p, again) {
			return fmt.Errorf("step %d: round trip changes the decision: %s", i, cmp.Diff(p, again))
		}
		// Invariant: weights in range and summing to 100 per rule.
		out, err := TransformRoute(route, "app", p.Route)
		if err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
		rules, _, _ := unstructured.NestedSlice(out.Object, "spec", "rules")
		for _, rr := range rules {
			refs, _, _ := unstructured.NestedSlice(rr.(map[string]any), "backendRefs")
			sum, split := int64(0), false
			for _, ref := range refs {
				m := ref.(map[string]any)
				w, ok := m["weight"].(int64)
				if render.IsServiceRef(ref, "app") || m["name"] == "app-canary" {
					split = split || ok
					if w < 0 || w > 100 {
						return fmt.Errorf("step %d: weight %d", i, w)
					}
					sum += w
				}
			}
			if split && sum != 100 {
				return fmt.Errorf("step %d: rule weights sum to %d", i, sum)
			}
		}
		// Invariant: after an abort the canary has no traffic and no mirror.
		if p.DeleteCanary && (p.Canary || p.Route.Weight != 0 || p.Route.MirrorPercent != 0) {
			return fmt.Errorf("step %d: abort left traffic: %+v", i, p.Route)
		}
		// Record gates and checks passed; promotion needs all before it.
		steps := r.Spec.Strategy.Steps()
		if st.Canary != nil && p.Status.Canary != nil && st.Canary.Revision == p.Status.Canary.Revision && p.Status.Step == st.Step+1 {
			if passed[st.Canary.Revision] == nil {
				passed[st.Canary.Revision] = map[int]bool{}
			}
			passed[st.Canary.Revision][int(st.Step)] = true
		}
		// A rollback (no steps, no checks) starts only for a head equal to a
		// version in the rollback window of the status before the call.
		if p.Status.Rollback && (st.Canary == nil || !st.Rollback || st.Canary.Revision != p.Status.Canary.Revision) {
			ok := false
			for k, pr := range st.Promoted {
				ok = ok || (k < r.Spec.Strategy.Window() && pr.Digest == head)
			}
			if !ok || p.Status.Canary.Digest != head {
				return fmt.Errorf("step %d: rollback to %s, not in the window %v", i, head, st.Promoted)
			}
		}
		if st.Phase != v1alpha1.PhasePromoting && p.Status.Phase == v1alpha1.PhasePromoting && !p.Status.Rollback {
			for k, s := range steps {
				if k >= int(st.Step) {
					break
				}
				if (s.Check != nil || (s.Pause != nil && s.Pause.Gate != "")) && !passed[p.Status.Canary.Revision][k] {
					return fmt.Errorf("step %d: promoting %s without passing step %d (%s)", i, p.Status.Canary.Revision, k, s.Kind())
				}
			}
			if int(st.Step) < len(steps)-1 {
				return fmt.Errorf("step %d: promoting from step %d of %d", i, st.Step, len(steps))
			}
		}
		if p.Status.Canary == nil || (st.Canary != nil && p.Status.Canary.Revision != st.Canary.Revision) {
			if st.Canary != nil {
				delete(passed, st.Canary.Revision)
			}
		}
		// The cluster follows the plan.
		switch {
		case p.Stable == StableFromHead:
			obs.StableDigest = head
		case p.Status.Stable != nil:
			obs.StableDigest = p.Status.Stable.Digest
		}
		if p.DeleteCanary {
			obs.CanaryReady = false
		} else if p.Canary && rng.IntN(2) == 0 {
			obs.CanaryReady = true
		}
		st = p.Status
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

func TestRandomWalks(t *testing.T) {
	for seed := range uint64(150) {
		if err := walk(t, seed, 100); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// FuzzStateMachine explores more event sequences: go test -fuzz FuzzStateMachine ./strategy
func FuzzStateMachine(f *testing.F) {
	for _, s := range []uint64{1, 7, 42, 1234} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		if err := walk(t, seed, 80); err != nil {
			t.Fatal(err)
		}
	})
}
