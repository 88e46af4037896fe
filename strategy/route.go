package strategy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// RouteState is the traffic shape sluice injects into the HTTPRoute.
type RouteState struct {
	// Canary is true while a canary track exists; without it the route is
	// applied as written.
	Canary bool
	// Weight is the canary's share of every rule naming the service.
	Weight int32
	// HeaderRoutes send matching requests to the canary, in step order.
	HeaderRoutes []v1alpha1.HeaderRoute
	// MirrorPercent of the requests is copied to the canary.
	MirrorPercent int32
}

// TransformRoute returns a copy of the head render's HTTPRoute with the
// state applied to every rule whose backendRefs name service: the service
// at 100-w and <service>-canary at w, a header-match rule before it for
// each header route (keeping the rule's own path matches), and a
// RequestMirror filter. Rules and filters that do not involve the service
// are left exactly as written.
func TransformRoute(route *unstructured.Unstructured, service string, st RouteState) (*unstructured.Unstructured, error) {
	out := route.DeepCopy()
	if !st.Canary {
		return out, nil
	}
	// A route of another shape is an error, never a panic.
	if err := render.RouteShape(route); err != nil {
		return nil, fmt.Errorf("%s: %w", render.ObjectID(route), err)
	}
	if st.Weight < 0 || st.Weight > 100 || st.MirrorPercent < 0 || st.MirrorPercent > 100 {
		return nil, fmt.Errorf("%s: weight %d or mirror %d out of 0..100", render.ObjectID(route), st.Weight, st.MirrorPercent)
	}
	rules, _, err := unstructured.NestedSlice(out.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.rules: %w", render.ObjectID(route), err)
	}
	canary := CanaryName(service)
	var result []any
	for _, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok || !namesService(rule, service) {
			result = append(result, r)
			continue
		}
		for _, hr := range st.HeaderRoutes {
			w := int32(100)
			if hr.Weight != nil {
				w = *hr.Weight
			}
			hrule := runtime.DeepCopyJSON(rule)
			hrule["matches"] = mergeMatches(rule["matches"], hr.Match)
			hrule["backendRefs"] = splitRefs(rule["backendRefs"], service, canary, w)
			hrule["filters"] = withMirror(rule["filters"], rule["backendRefs"], service, canary, 0)
			if len(hrule["filters"].([]any)) == 0 {
				delete(hrule, "filters")
			}
			result = append(result, hrule)
		}
		nrule := runtime.DeepCopyJSON(rule)
		nrule["backendRefs"] = splitRefs(rule["backendRefs"], service, canary, st.Weight)
		nrule["filters"] = withMirror(rule["filters"], rule["backendRefs"], service, canary, st.MirrorPercent)
		if len(nrule["filters"].([]any)) == 0 {
			delete(nrule, "filters")
		}
		result = append(result, nrule)
	}
	if err := unstructured.SetNestedSlice(out.Object, result, "spec", "rules"); err != nil {
		return nil, err
	}
	return out, nil
}

func namesService(rule map[string]any, service string) bool {
	refs, _ := rule["backendRefs"].([]any)
	for _, ref := range refs {
		if render.IsServiceRef(ref, service) {
			return true
		}
	}
	return false
}

// splitRefs replaces each backendRef to service by the pair
// [service weight 100-w, canary weight w]; other refs are kept.
func splitRefs(refs any, service, canary string, w int32) []any {
	list, _ := refs.([]any)
	var out []any
	for _, ref := range list {
		if !render.IsServiceRef(ref, service) {
			out = append(out, runtime.DeepCopyJSONValue(ref))
			continue
		}
		stable := runtime.DeepCopyJSONValue(ref).(map[string]any)
		c := runtime.DeepCopyJSONValue(ref).(map[string]any)
		stable["weight"] = int64(100 - w)
		c["name"] = canary
		c["weight"] = int64(w)
		delete(c, "filters")
		out = append(out, stable, c)
	}
	return out
}

// withMirror returns the rule's filters without a RequestMirror to the
// canary, plus one with percent when percent > 0.
func withMirror(filters, refs any, service, canary string, percent int32) []any {
	list, _ := filters.([]any)
	out := []any{}
	for _, f := range list {
		fm, _ := f.(map[string]any)
		if fm["type"] == "RequestMirror" {
			if rm, ok := fm["requestMirror"].(map[string]any); ok {
				if br, ok := rm["backendRef"].(map[string]any); ok && br["name"] == canary {
					continue
				}
			}
		}
		out = append(out, runtime.DeepCopyJSONValue(f))
	}
	if percent <= 0 {
		return out
	}
	mirror := map[string]any{"name": canary}
	for _, ref := range refs.([]any) {
		if render.IsServiceRef(ref, service) {
			if port, ok := ref.(map[string]any)["port"]; ok {
				mirror["port"] = port
			}
			break
		}
	}
	return append(out, map[string]any{
		"type":          "RequestMirror",
		"requestMirror": map[string]any{"backendRef": mirror, "percent": int64(percent)},
	})
}

// mergeMatches adds the header route's header and query matches to each
// of the rule's matches (keeping their paths and methods), or makes one
// match when the rule has none.
func mergeMatches(matches any, m v1alpha1.RouteMatch) []any {
	list, _ := matches.([]any)
	if len(list) == 0 {
		list = []any{map[string]any{}}
	}
	var out []any
	for _, x := range list {
		mm := runtime.DeepCopyJSONValue(x).(map[string]any)
		if len(m.Headers) > 0 {
			hs, _ := mm["headers"].([]any)
			for _, h := range m.Headers {
				hs = append(hs, headerMatch(h))
			}
			mm["headers"] = hs
		}
		if len(m.QueryParams) > 0 {
			qs, _ := mm["queryParams"].([]any)
			for _, q := range m.QueryParams {
				qs = append(qs, headerMatch(q))
			}
			mm["queryParams"] = qs
		}
		out = append(out, mm)
	}
	return out
}

func headerMatch(h v1alpha1.HeaderMatch) map[string]any {
	t := h.Type
	if t == "" {
		t = "Exact"
	}
	return map[string]any{"name": h.Name, "type": t, "value": h.Value}
}
