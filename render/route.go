package render

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/routes"
)

// findRoute returns the HTTPRoute or GRPCRoute named name, nil when there
// is neither, and an error when there are both.
func findRoute(objs []*unstructured.Unstructured, ns, name string) (*unstructured.Unstructured, error) {
	var found *unstructured.Unstructured
	for _, kind := range routes.Kinds {
		o := Find(objs, routes.Group, kind, ns, name)
		if o != nil && found != nil {
			return nil, fmt.Errorf("an HTTPRoute and a GRPCRoute are both named %q; a release routes one of them, so rename the other", name)
		}
		if o != nil {
			found = o
		}
	}
	return found, nil
}

// checkRoute decodes the release's route with the Gateway API's types,
// checks it sends traffic to the release's Service, and applies to it the
// shape each step of the strategy leaves it in: a shape the API server
// would refuse (more rules, matches or headers than the Gateway API
// allows, a rule name or header named twice) is an error now, before
// anything is applied.
func checkRoute(p *v1alpha1.Parsed, route *unstructured.Unstructured) v1alpha1.ErrorList {
	spec := &p.Release.Spec
	t := spec.Traffic
	kind := route.GetKind()
	r, err := routes.Decode(route)
	if err != nil {
		return v1alpha1.ErrorList{p.Errorf("spec.traffic.route", "%s %q: %v", kind, t.Route, err)}
	}
	ns := routes.Namespace(route, p.Release.Metadata.Namespace)
	if r.ServiceRules(ns, t.Service) == 0 {
		return v1alpha1.ErrorList{p.Errorf("spec.traffic.service", "%s %q has no backendRef to Service %q in namespace %s", kind, t.Route, t.Service, ns)}
	}
	target := routes.Target{Namespace: ns, Service: t.Service, Canary: v1alpha1.CanaryName(t.Service)}
	steps := spec.Strategy.Steps()
	for done := 0; done <= len(steps); done++ {
		if _, err := routes.Transform(route, target, routes.StateAt(steps, done, 50)); err != nil {
			after := "with a canary"
			if done > 0 {
				after = fmt.Sprintf("after step %d of %d (%s)", done, len(steps), steps[done-1].Kind())
			}
			return v1alpha1.ErrorList{p.Errorf("spec.traffic.route", "%s %q %s: %v", kind, t.Route, after, err)}
		}
	}
	return nil
}
