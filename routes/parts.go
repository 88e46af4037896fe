package routes

import (
	"fmt"
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// mirrorRef is where a rule's mirror to the canary points: the canary
// Service on the port the rule sends the Service's requests to. A rule
// naming the Service on several ports has no single such port.
func mirrorRef(refs []gwv1.BackendRef, t Target) (gwv1.BackendObjectReference, error) {
	var ref gwv1.BackendObjectReference
	ports := map[int32]bool{}
	for _, b := range refs {
		if !IsService(b.BackendObjectReference, t.Namespace, t.Service) {
			continue
		}
		if len(ports) == 0 {
			ref = *b.BackendObjectReference.DeepCopy()
		}
		if b.Port != nil {
			ports[int32(*b.Port)] = true
		}
	}
	if len(ports) > 1 {
		var list []int
		for p := range ports {
			list = append(list, int(p))
		}
		sort.Ints(list)
		return ref, fmt.Errorf("names Service %s on ports %v; a mirror copies requests to one port, so mirror from a rule with one", t.Service, list)
	}
	ref.Name = gwv1.ObjectName(t.Canary)
	return ref, nil
}

// isCanaryMirror reports whether a RequestMirror filter is sluice's own,
// to the canary Service.
func isCanaryMirror(m *gwv1.HTTPRequestMirrorFilter, t Target) bool {
	return m != nil && IsService(m.BackendRef, t.Namespace, t.Canary)
}

func mirrorFilter(ref gwv1.BackendObjectReference, percent int32) *gwv1.HTTPRequestMirrorFilter {
	return &gwv1.HTTPRequestMirrorFilter{BackendRef: ref, Percent: &percent}
}

// httpFilters is the rule's filters without a mirror to the canary, plus
// one at percent when percent > 0.
func httpFilters(filters []gwv1.HTTPRouteFilter, t Target, ref *gwv1.BackendObjectReference, percent int32) []gwv1.HTTPRouteFilter {
	var out []gwv1.HTTPRouteFilter
	for _, f := range filters {
		if f.Type == gwv1.HTTPRouteFilterRequestMirror && isCanaryMirror(f.RequestMirror, t) {
			continue
		}
		out = append(out, *f.DeepCopy())
	}
	if percent > 0 && ref != nil {
		out = append(out, gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestMirror, RequestMirror: mirrorFilter(*ref, percent)})
	}
	return out
}

func grpcFilters(filters []gwv1.GRPCRouteFilter, t Target, ref *gwv1.BackendObjectReference, percent int32) []gwv1.GRPCRouteFilter {
	var out []gwv1.GRPCRouteFilter
	for _, f := range filters {
		if f.Type == gwv1.GRPCRouteFilterRequestMirror && isCanaryMirror(f.RequestMirror, t) {
			continue
		}
		out = append(out, *f.DeepCopy())
	}
	if percent > 0 && ref != nil {
		out = append(out, gwv1.GRPCRouteFilter{Type: gwv1.GRPCRouteFilterRequestMirror, RequestMirror: mirrorFilter(*ref, percent)})
	}
	return out
}

// httpMatches adds the header route's headers and query parameters to each
// of the rule's matches (keeping their paths and methods), or makes one
// match when the rule has none.
func httpMatches(matches []gwv1.HTTPRouteMatch, m v1alpha1.RouteMatch) ([]gwv1.HTTPRouteMatch, error) {
	if len(matches) == 0 {
		matches = []gwv1.HTTPRouteMatch{{}}
	}
	var out []gwv1.HTTPRouteMatch
	for _, x := range matches {
		mm := *x.DeepCopy()
		for _, h := range m.Headers {
			t := gwv1.HeaderMatchType(matchType(h))
			mm.Headers = append(mm.Headers, gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(h.Name), Type: &t, Value: h.Value})
		}
		for _, q := range m.QueryParams {
			t := gwv1.QueryParamMatchType(matchType(q))
			mm.QueryParams = append(mm.QueryParams, gwv1.HTTPQueryParamMatch{Name: gwv1.HTTPHeaderName(q.Name), Type: &t, Value: q.Value})
		}
		out = append(out, mm)
	}
	return out, nil
}

// grpcMatches is httpMatches for a GRPCRoute, whose matches have headers
// but no query parameters.
func grpcMatches(matches []gwv1.GRPCRouteMatch, m v1alpha1.RouteMatch) ([]gwv1.GRPCRouteMatch, error) {
	if len(m.QueryParams) > 0 {
		return nil, fmt.Errorf("a GRPCRoute matches no query parameters; match a header (gRPC metadata) instead")
	}
	if len(matches) == 0 {
		matches = []gwv1.GRPCRouteMatch{{}}
	}
	var out []gwv1.GRPCRouteMatch
	for _, x := range matches {
		mm := *x.DeepCopy()
		for _, h := range m.Headers {
			t := gwv1.GRPCHeaderMatchType(matchType(h))
			mm.Headers = append(mm.Headers, gwv1.GRPCHeaderMatch{Name: gwv1.GRPCHeaderName(h.Name), Type: &t, Value: h.Value})
		}
		out = append(out, mm)
	}
	return out, nil
}

func matchType(h v1alpha1.HeaderMatch) string {
	if h.Type == "" {
		return "Exact"
	}
	return h.Type
}
