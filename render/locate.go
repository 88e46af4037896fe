package render

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// GatewayGroup is the Gateway API's group.
const GatewayGroup = "gateway.networking.k8s.io"

// maxRouteRules is the Gateway API's limit on an HTTPRoute's rules.
const maxRouteRules = 16

// Find returns the object of kind and name in objs, matching group when it
// is not "*" and treating an empty namespace as ns.
func Find(objs []*unstructured.Unstructured, group, kind, ns, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() != kind || o.GetName() != name {
			continue
		}
		if group != "*" && o.GroupVersionKind().Group != group {
			continue
		}
		if n := o.GetNamespace(); n != "" && n != ns {
			continue
		}
		return o
	}
	return nil
}

func namesOf(objs []*unstructured.Unstructured, kind string) string {
	var names []string
	for _, o := range objs {
		if o.GetKind() == kind {
			names = append(names, o.GetName())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// locate finds the workload, route and service the spec names, checks the
// route references the service, and computes the version digest.
func locate(p *v1alpha1.Parsed, res *Result) error {
	spec := &p.Release.Spec
	ns := p.Release.Metadata.Namespace
	var errs v1alpha1.ErrorList
	src := p.SourceDir()

	res.Workload = Find(res.Objects, "apps", spec.Workload.Kind, ns, spec.Workload.Name)
	if res.Workload == nil {
		errs = append(errs, p.Errorf("spec.workload.name", "%s %q is not in the render of %s (found: %s)",
			spec.Workload.Kind, spec.Workload.Name, src, namesOf(res.Objects, spec.Workload.Kind)))
	}
	if t := spec.Traffic; t != nil {
		if t.Route != "" {
			res.Route = Find(res.Objects, GatewayGroup, "HTTPRoute", ns, t.Route)
			if res.Route == nil {
				errs = append(errs, p.Errorf("spec.traffic.route", "HTTPRoute %q is not in the render of %s (found: %s)",
					t.Route, src, namesOf(res.Objects, "HTTPRoute")))
			}
		}
		if t.Service != "" {
			res.Service = Find(res.Objects, "", "Service", ns, t.Service)
			if res.Service == nil {
				errs = append(errs, p.Errorf("spec.traffic.service", "Service %q is not in the render of %s (found: %s)",
					t.Service, src, namesOf(res.Objects, "Service")))
			}
		}
		if res.Route != nil {
			if err := RouteShape(res.Route); err != nil {
				errs = append(errs, p.Errorf("spec.traffic.route", "HTTPRoute %q: %v", t.Route, err))
			}
		}
		if res.Route != nil && res.Service != nil {
			n := ServiceRules(res.Route, t.Service)
			if n == 0 {
				errs = append(errs, p.Errorf("spec.traffic.service", "HTTPRoute %q has no backendRef to Service %q", t.Route, t.Service))
			}
			rules, _, _ := unstructured.NestedSlice(res.Route.Object, "spec", "rules")
			if extra := headerRoutes(spec.Strategy.Steps()) * n; len(rules)+extra > maxRouteRules {
				errs = append(errs, p.Errorf("spec.traffic.route", "HTTPRoute %q has %d rules and the header routes add %d; the Gateway API allows %d",
					t.Route, len(rules), extra, maxRouteRules))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	res.Autoscaler = autoscalerOf(res.Objects, res.Workload)
	res.Config = ReferencedConfig(res.Workload, res.Objects)
	d, err := VersionDigest(res.Workload, res.Config)
	if err != nil {
		return fmt.Errorf("%s version digest: %w", p.Release.ID(), err)
	}
	res.VersionDigest = d
	return nil
}

// autoscalerOf finds the HorizontalPodAutoscaler whose scaleTargetRef is
// the workload.
func autoscalerOf(objs []*unstructured.Unstructured, w *unstructured.Unstructured) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() != "HorizontalPodAutoscaler" || o.GroupVersionKind().Group != "autoscaling" {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		if kind == w.GetKind() && name == w.GetName() {
			return o
		}
	}
	return nil
}

// RouteShape checks the parts of an HTTPRoute sluice reads and rewrites
// have the Gateway API's shapes (the API server checks the rest when the
// route is applied): spec.rules a list of objects, each rule's matches,
// backendRefs and filters lists of objects.
func RouteShape(route *unstructured.Unstructured) error {
	spec, ok := route.Object["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("spec: want an object")
	}
	raw, found := spec["rules"]
	if !found {
		return nil
	}
	rules, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("spec.rules: want a list, got %T", raw)
	}
	for i, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			return fmt.Errorf("spec.rules[%d]: want an object, got %T", i, r)
		}
		for _, field := range []string{"matches", "backendRefs", "filters"} {
			v, found := rule[field]
			if !found || v == nil {
				continue
			}
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("spec.rules[%d].%s: want a list, got %T", i, field, v)
			}
			for j, x := range list {
				if _, ok := x.(map[string]any); !ok {
					return fmt.Errorf("spec.rules[%d].%s[%d]: want an object, got %T %v", i, field, j, x, x)
				}
			}
		}
	}
	return nil
}

// headerRoutes counts the distinct header routes the steps set.
func headerRoutes(steps []v1alpha1.Step) int {
	names := map[string]bool{}
	for _, s := range steps {
		if s.SetHeaderRoute != nil {
			names[s.SetHeaderRoute.Name] = true
		}
	}
	return len(names)
}

// ServiceRules counts the route's rules with a backendRef to the Service
// named service.
func ServiceRules(route *unstructured.Unstructured, service string) int {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	n := 0
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		for _, ref := range refs {
			if IsServiceRef(ref, service) {
				n++
				break
			}
		}
	}
	return n
}

// IsServiceRef reports whether a backendRef names the core Service service.
func IsServiceRef(ref any, service string) bool {
	m, ok := ref.(map[string]any)
	if !ok {
		return false
	}
	name, _ := m["name"].(string)
	kind, _ := m["kind"].(string)
	group, _ := m["group"].(string)
	return name == service && (kind == "" || kind == "Service") && group == ""
}
