package routes

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// State is the traffic shape sluice gives a route.
type State struct {
	// Canary is true while a canary track exists; without it the route is
	// applied as written.
	Canary bool
	// Weight is the canary's share, in percent, of the rolled-out
	// Service's share of every rule naming it.
	Weight int32
	// HeaderRoutes send matching requests to the canary, in step order.
	HeaderRoutes []v1alpha1.HeaderRoute
	// MirrorPercent of the requests is copied to the canary.
	MirrorPercent int32
	// Baseline is the baseline track's share, in percent, taken like the
	// canary's from the Service's (Target.Baseline names it); 0: none.
	Baseline int32
}

// Target names what the transform splits: the Service the route's rules
// name, in the route's namespace, and the canary Service beside it.
type Target struct {
	Namespace string
	Service   string
	Canary    string
	// Baseline is the baseline Service, when State.Baseline gives it a
	// share.
	Baseline string
}

// trackShares is how a rule naming the Service divides the Service's share:
// percent to the canary and to the baseline, the rest kept.
type trackShares struct{ canary, baseline int32 }

// maxWeight is the Gateway API's largest backendRef weight.
const maxWeight = 1_000_000

// Transform returns a copy of the route with the state applied to every
// rule with a backendRef to the target Service:
//
//   - the Service's share of the rule is split between it (100-w percent)
//     and the canary (w percent); the rule's other backends keep their
//     trackShares, and the canary's reference keeps the Service's port and
//     filters;
//   - before the rule, one rule per header route, matching the rule's own
//     matches plus the route's headers or query parameters (named
//     <rule>-<header route> when the rule has a name);
//   - a RequestMirror filter to the canary at MirrorPercent.
//
// Rules that do not name the Service are copied through untouched. A
// result that would break a Gateway API limit is an error (see Limits), so
// nothing the API server refuses is ever applied.
func Transform(u *unstructured.Unstructured, t Target, st State) (*unstructured.Unstructured, error) {
	out, err := transform(u, t, st)
	if err != nil || !st.Canary {
		return out, err
	}
	result, err := Decode(out)
	if err != nil {
		return nil, err
	}
	if errs := Limits(result); len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// transform is Transform without the check of the Gateway API's limits.
func transform(u *unstructured.Unstructured, t Target, st State) (*unstructured.Unstructured, error) {
	out := u.DeepCopy()
	if !st.Canary {
		return out, nil
	}
	if st.Weight < 0 || st.Weight > 100 || st.MirrorPercent < 0 || st.MirrorPercent > 100 || st.Baseline < 0 || st.Weight+st.Baseline > 100 {
		return nil, fmt.Errorf("weight %d, baseline %d or mirror %d out of 0..100", st.Weight, st.Baseline, st.MirrorPercent)
	}
	if st.Baseline > 0 && t.Baseline == "" {
		return nil, fmt.Errorf("a baseline share with no baseline Service")
	}
	r, err := Decode(u)
	if err != nil {
		return nil, err
	}
	raw, found, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if !found {
		return out, nil // no rules, nothing to split: kept absent, not null
	}
	var rules []any
	if r.HTTP != nil {
		rules, err = transformRules(r.HTTP.Spec.Rules, raw, t, st, httpRefs, httpRule)
	} else {
		rules, err = transformRules(r.GRPC.Spec.Rules, raw, t, st, grpcRefs, grpcRule)
	}
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedSlice(out.Object, rules, "spec", "rules"); err != nil {
		return nil, err
	}
	return out, nil
}

// transformRules applies the state to the rules of one route kind: apply
// makes one rule from a rule naming the Service, for a header route (nil:
// the rule itself) at trackShares w, mirroring at percent when mirror is set.
func transformRules[R any](rules []R, raw []any, t Target, st State, refsOf func(R) []gwv1.BackendRef,
	apply func(rule R, refs []gwv1.BackendRef, t Target, hr *v1alpha1.HeaderRoute, w trackShares, mirror *gwv1.BackendObjectReference, percent int32) (any, error)) ([]any, error) {
	var out []any
	for i, rule := range rules {
		refs := refsOf(rule)
		if !namesService(refs, t.Namespace, t.Service) {
			out = append(out, raw[i])
			continue
		}
		mirror, err := mirrorOf(refs, t, st.MirrorPercent)
		if err != nil {
			return nil, fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		for _, hr := range st.HeaderRoutes {
			h, err := apply(rule, refs, t, &hr, trackShares{canary: headerWeight(hr)}, nil, 0)
			if err != nil {
				return nil, fmt.Errorf("spec.rules[%d]: header route %s: %w", i, hr.Name, err)
			}
			out = append(out, h)
		}
		m, err := apply(rule, refs, t, nil, trackShares{canary: st.Weight, baseline: st.Baseline}, mirror, st.MirrorPercent)
		if err != nil {
			return nil, fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func httpRule(rule gwv1.HTTPRouteRule, refs []gwv1.BackendRef, t Target, hr *v1alpha1.HeaderRoute, w trackShares, mirror *gwv1.BackendObjectReference, percent int32) (any, error) {
	out := *rule.DeepCopy()
	if hr != nil {
		var err error
		out.Name = suffixed(rule.Name, hr.Name)
		if out.Matches, err = httpMatches(rule.Matches, hr.Match); err != nil {
			return nil, err
		}
	}
	out.BackendRefs = splitRefs(rule.BackendRefs, refs, t, w, func(b *gwv1.HTTPBackendRef) *gwv1.BackendRef { return &b.BackendRef })
	out.Filters = httpFilters(rule.Filters, t, mirror, percent)
	return toMap(&out), nil
}

func grpcRule(rule gwv1.GRPCRouteRule, refs []gwv1.BackendRef, t Target, hr *v1alpha1.HeaderRoute, w trackShares, mirror *gwv1.BackendObjectReference, percent int32) (any, error) {
	out := *rule.DeepCopy()
	if hr != nil {
		var err error
		out.Name = suffixed(rule.Name, hr.Name)
		if out.Matches, err = grpcMatches(rule.Matches, hr.Match); err != nil {
			return nil, err
		}
	}
	out.BackendRefs = splitRefs(rule.BackendRefs, refs, t, w, func(b *gwv1.GRPCBackendRef) *gwv1.BackendRef { return &b.BackendRef })
	out.Filters = grpcFilters(rule.Filters, t, mirror, percent)
	return toMap(&out), nil
}

// mirrorOf is the rule's mirror target when the state mirrors.
func mirrorOf(refs []gwv1.BackendRef, t Target, percent int32) (*gwv1.BackendObjectReference, error) {
	if percent == 0 {
		return nil, nil
	}
	ref, err := mirrorRef(refs, t)
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

func headerWeight(hr v1alpha1.HeaderRoute) int32 {
	if hr.Weight != nil {
		return *hr.Weight
	}
	return 100
}

func suffixed(name *gwv1.SectionName, suffix string) *gwv1.SectionName {
	if name == nil {
		return nil
	}
	n := gwv1.SectionName(string(*name) + "-" + suffix)
	return &n
}

func toMap(v any) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil {
		// A struct of the gateway-api types always converts.
		panic(err)
	}
	return m
}

// part is one backendRef of a split rule: the original it copies, the
// Service it names instead ("": the original's), and its weight.
type part struct {
	from   int
	to     string
	weight int64
}

// split trackShares each reference to the Service between the Service (100-w
// percent of its weight) and the canary (w percent), keeping every other
// backend's share of the rule. A rule whose only backend is the Service
// gets the weights 100-w and w; otherwise the weights are the exact trackShares
// in lowest terms, scaled down (rounding, a backend with traffic keeping
// some) if that passes the Gateway API's largest weight.
func split(refs []gwv1.BackendRef, t Target, w trackShares) []part {
	weight := func(b gwv1.BackendRef) int64 {
		if b.Weight == nil {
			return 1
		}
		return int64(*b.Weight)
	}
	if len(refs) == 1 {
		base := int64(100)
		if weight(refs[0]) == 0 {
			base = 0
		}
		parts := []part{{0, "", base * int64(100-w.canary-w.baseline) / 100}, {0, t.Canary, base * int64(w.canary) / 100}}
		if w.baseline > 0 {
			parts = append(parts, part{0, t.Baseline, base * int64(w.baseline) / 100})
		}
		return parts
	}
	var parts []part
	for i, b := range refs {
		if !IsService(b.BackendObjectReference, t.Namespace, t.Service) {
			parts = append(parts, part{i, "", weight(b) * 100})
			continue
		}
		parts = append(parts, part{i, "", weight(b) * int64(100-w.canary-w.baseline)}, part{i, t.Canary, weight(b) * int64(w.canary)})
		if w.baseline > 0 {
			parts = append(parts, part{i, t.Baseline, weight(b) * int64(w.baseline)})
		}
	}
	g, top := int64(0), int64(0)
	for _, p := range parts {
		g = gcd(g, p.weight)
	}
	for i := range parts {
		if g > 1 {
			parts[i].weight /= g
		}
		top = max(top, parts[i].weight)
	}
	if top > maxWeight {
		f := float64(top) / maxWeight
		for i := range parts {
			if parts[i].weight > 0 {
				parts[i].weight = max(1, int64(math.Round(float64(parts[i].weight)/f)))
			}
		}
	}
	return parts
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// backendRef is a route kind's backend reference: HTTPBackendRef or
// GRPCBackendRef, both a BackendRef plus filters of their kind.
type backendRef[R any] interface {
	*R
	DeepCopy() *R
}

// splitRefs makes a rule's backendRefs from the split: copies of the
// originals (filters included) with the new weights, the canary's renamed.
func splitRefs[R any, P backendRef[R]](orig []R, refs []gwv1.BackendRef, t Target, w trackShares, base func(P) *gwv1.BackendRef) []R {
	var out []R
	for _, p := range split(refs, t, w) {
		b := P(&orig[p.from]).DeepCopy()
		ref := base(b)
		ref.Weight = weightPtr(p.weight)
		if p.to != "" {
			ref.Name = gwv1.ObjectName(p.to)
		}
		out = append(out, *b)
	}
	return out
}

func weightPtr(w int64) *int32 {
	v := int32(w)
	return &v
}

// StateAt is the shape a route has once the first done steps ran, at
// weight w: the header routes set so far (a later setHeaderRoute of the
// same name replaces the earlier, in its place) and the last mirror.
func StateAt(steps []v1alpha1.Step, done int, w int32) State {
	st := State{Canary: true, Weight: w}
	index := map[string]int{}
	for _, s := range steps[:min(done, len(steps))] {
		switch {
		case s.SetHeaderRoute != nil:
			if i, ok := index[s.SetHeaderRoute.Name]; ok {
				st.HeaderRoutes[i] = *s.SetHeaderRoute
			} else {
				index[s.SetHeaderRoute.Name] = len(st.HeaderRoutes)
				st.HeaderRoutes = append(st.HeaderRoutes, *s.SetHeaderRoute)
			}
		case s.SetMirror != nil:
			st.MirrorPercent = s.SetMirror.Percent
		}
	}
	return st
}
