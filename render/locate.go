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
	res.Config = ReferencedConfig(res.Workload, res.Objects)
	d, err := VersionDigest(res.Workload, res.Config)
	if err != nil {
		return fmt.Errorf("%s version digest: %w", p.Release.ID(), err)
	}
	res.VersionDigest = d
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
