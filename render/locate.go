package render

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/routes"
)

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

func namesOf(objs []*unstructured.Unstructured, kinds ...string) string {
	var names []string
	for _, o := range objs {
		if slices.Contains(kinds, o.GetKind()) {
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
			var err error
			res.Route, err = findRoute(res.Objects, ns, t.Route)
			if err != nil {
				errs = append(errs, p.Errorf("spec.traffic.route", "%v", err))
			} else if res.Route == nil {
				errs = append(errs, p.Errorf("spec.traffic.route", "no HTTPRoute or GRPCRoute %q in the render of %s (found: %s)",
					t.Route, src, namesOf(res.Objects, routes.Kinds...)))
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
			errs = append(errs, checkRoute(p, res.Route)...)
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
