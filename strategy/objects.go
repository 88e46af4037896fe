package strategy

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// VersionAnnotation records on each track's workload the version digest it
// runs, so the agent can observe what the cluster serves.
const VersionAnnotation = "sluice.dev/version"

// ErrNoStableRender: the plan keeps the stable track at its revision, and
// no render of that revision was given. Nothing may be applied: the head
// render must never stand in for it.
var ErrNoStableRender = errors.New("the stable revision's render is missing")

// Objects builds what to apply for a plan: every object from the head
// render except the workload and its config, which come from the stable
// render unless the plan says head; the track labels; the canary track;
// and the HTTPRoute with the plan's traffic shape. The agent applies
// exactly this, and `sluice diff` shows exactly this. stable is the render
// at plan.Status.Stable's revision (the head render when that is the
// head); it may be nil only when the plan takes the stable track from head.
func Objects(r *v1alpha1.Release, head, stable *render.Result, plan Plan, headDigest string) ([]*unstructured.Unstructured, error) {
	spec := &r.Spec
	src, version := head, headDigest
	if plan.Stable == StableFromStable && plan.Status.Stable != nil {
		// Never the head's pod template under the stable version's name.
		if stable == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoStableRender, short(plan.Status.Stable.Revision))
		}
		version = plan.Status.Stable.Digest
		src = stable
	}
	versioned := map[string]bool{render.ObjectID(head.Workload): true}
	for _, c := range head.Config {
		versioned[render.ObjectID(c)] = true
	}
	var objs []*unstructured.Unstructured
	for _, o := range head.Objects {
		if !versioned[render.ObjectID(o)] {
			objs = append(objs, o)
		}
	}
	w := src.Workload.DeepCopy()
	setAnnotation(w, VersionAnnotation, version)
	setStrategy(w, spec)
	if head.Autoscaler != nil {
		// The autoscaler owns replicas: left out, server-side apply leaves
		// the field to it instead of setting it back on every pass.
		unstructured.RemoveNestedField(w.Object, "spec", "replicas")
	}
	objs = append(objs, w)
	objs = append(objs, src.Config...)

	if spec.Strategy.Routed() {
		var err error
		if objs, err = StableTrack(spec, objs); err != nil {
			return nil, err
		}
	}
	if plan.Canary {
		canary, err := CanaryTrack(spec, head, plan.CanaryReplicas)
		if err != nil {
			return nil, err
		}
		setAnnotation(canary[0], VersionAnnotation, headDigest)
		objs = append(objs, canary...)
		if head.Autoscaler != nil {
			// The canary track scales on its own, from its planned size.
			unstructured.RemoveNestedField(canary[0].Object, "spec", "replicas")
			hpa, err := CanaryAutoscaler(head.Autoscaler, plan.CanaryReplicas)
			if err != nil {
				return nil, err
			}
			objs = append(objs, hpa)
		}
	}
	if plan.Canary && plan.Baseline {
		// The stable version, at the canary's size, under its own names.
		baseline, err := copyTrack(spec, src, plan.CanaryReplicas, v1alpha1.BaselineName, TrackBaseline)
		if err != nil {
			return nil, err
		}
		setAnnotation(baseline[0], VersionAnnotation, version)
		objs = append(objs, baseline...)
	}
	if spec.Strategy.Routed() && head.Route != nil {
		route, err := TransformRoute(head.Route, r.Metadata.Namespace, spec.Traffic.Service, plan.Route)
		if err != nil {
			return nil, err
		}
		for i, o := range objs {
			if o.GetKind() == route.GetKind() && o.GetName() == spec.Traffic.Route {
				objs[i] = route
			}
		}
	}
	return objs, nil
}

func setAnnotation(o *unstructured.Unstructured, k, v string) {
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[k] = v
	o.SetAnnotations(ann)
}

// setStrategy gives rolling and recreate releases their Deployment strategy.
func setStrategy(w *unstructured.Unstructured, spec *v1alpha1.ReleaseSpec) {
	switch {
	case spec.Strategy.Recreate != nil:
		_ = unstructured.SetNestedField(w.Object, map[string]any{"type": "Recreate"}, "spec", "strategy")
	case spec.Strategy.Rolling != nil:
		ru := map[string]any{}
		if s := spec.Strategy.Rolling.MaxSurge; s != nil {
			ru["maxSurge"] = intOrString(*s)
		}
		if u := spec.Strategy.Rolling.MaxUnavailable; u != nil {
			ru["maxUnavailable"] = intOrString(*u)
		}
		_ = unstructured.SetNestedField(w.Object, map[string]any{"type": "RollingUpdate", "rollingUpdate": ru}, "spec", "strategy")
	}
}

func intOrString(v v1alpha1.IntOrPercent) any {
	if v.Percent {
		return v.String()
	}
	return int64(v.Value)
}
