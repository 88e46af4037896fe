package strategy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// TrackLabel keeps the stable and canary pods apart: it is added to each
// track's workload selector and pod labels and to its Service's selector.
const TrackLabel = "sluice.dev/track"

// Track values.
const (
	TrackStable   = "stable"
	TrackCanary   = "canary"
	TrackBaseline = "baseline"
)

// addTrack sets the track label at path (a string map) of obj.
func addTrack(obj *unstructured.Unstructured, track string, path ...string) error {
	m, _, err := unstructured.NestedStringMap(obj.Object, path...)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", render.ObjectID(obj), path, err)
	}
	if m == nil {
		m = map[string]string{}
	}
	m[TrackLabel] = track
	return unstructured.SetNestedStringMap(obj.Object, m, path...)
}

// labelWorkload adds the track label to a Deployment's selector and pod
// template labels.
func labelWorkload(w *unstructured.Unstructured, track string) error {
	if err := addTrack(w, track, "spec", "selector", "matchLabels"); err != nil {
		return err
	}
	return addTrack(w, track, "spec", "template", "metadata", "labels")
}

// StableTrack returns copies of the objects with the stable track label on
// the workload and on the traffic Service's selector.
func StableTrack(spec *v1alpha1.ReleaseSpec, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		c := o.DeepCopy()
		switch {
		case isWorkload(c, spec):
			if err := labelWorkload(c, TrackStable); err != nil {
				return nil, err
			}
		case spec.Traffic != nil && spec.Strategy.Routed() && c.GetKind() == "Service" && c.GetAPIVersion() == "v1" && c.GetName() == spec.Traffic.Service:
			if err := addTrack(c, TrackStable, "spec", "selector"); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func isWorkload(o *unstructured.Unstructured, spec *v1alpha1.ReleaseSpec) bool {
	return o.GetKind() == spec.Workload.Kind && o.GetName() == spec.Workload.Name && o.GroupVersionKind().Group == "apps"
}

// CanaryTrack derives the canary from a head render: the workload renamed
// <name>-canary with the canary track label and replicas; copies of the
// ConfigMaps and Secrets its pod template references, renamed and with the
// references rewritten; and <service>-canary selecting the canary pods.
func CanaryTrack(spec *v1alpha1.ReleaseSpec, head *render.Result, replicas int32) ([]*unstructured.Unstructured, error) {
	return copyTrack(spec, head, replicas, v1alpha1.CanaryName, TrackCanary)
}

// copyTrack is a track copied from a render under names made by name: the
// workload at replicas, its config, and the Service selecting its pods
// (the track label set to track).
func copyTrack(spec *v1alpha1.ReleaseSpec, head *render.Result, replicas int32, name func(string) string, track string) ([]*unstructured.Unstructured, error) {
	w := head.Workload.DeepCopy()
	w.SetName(name(w.GetName()))
	stripServerFields(w)
	if err := labelWorkload(w, track); err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(w.Object, int64(replicas), "spec", "replicas"); err != nil {
		return nil, err
	}
	renames := map[string]map[string]string{"ConfigMap": {}, "Secret": {}}
	var out []*unstructured.Unstructured
	for _, cfg := range head.Config {
		c := cfg.DeepCopy()
		renames[c.GetKind()][c.GetName()] = name(c.GetName())
		c.SetName(name(c.GetName()))
		stripServerFields(c)
		out = append(out, c)
	}
	podSpec, _, _ := unstructured.NestedMap(w.Object, "spec", "template", "spec")
	rewriteConfigRefs(podSpec, renames["ConfigMap"], renames["Secret"])
	if err := unstructured.SetNestedMap(w.Object, podSpec, "spec", "template", "spec"); err != nil {
		return nil, err
	}
	out = append([]*unstructured.Unstructured{w}, out...)
	if head.Service != nil {
		svc := head.Service.DeepCopy()
		svc.SetName(name(svc.GetName()))
		stripServerFields(svc)
		for _, f := range []string{"clusterIP", "clusterIPs", "nodePort"} {
			unstructured.RemoveNestedField(svc.Object, "spec", f)
		}
		if err := addTrack(svc, track, "spec", "selector"); err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
}

func stripServerFields(o *unstructured.Unstructured) {
	o.SetResourceVersion("")
	o.SetUID("")
	unstructured.RemoveNestedField(o.Object, "status")
}

// rewriteConfigRefs renames ConfigMap and Secret references in a pod spec
// (env, envFrom, volumes, projected volumes) in place.
func rewriteConfigRefs(podSpec map[string]any, cms, secrets map[string]string) {
	render.VisitConfigRefs(podSpec, func(r render.ConfigRef) {
		names := cms
		if r.Kind == "Secret" {
			names = secrets
		}
		if to, ok := names[r.Name()]; ok {
			r.Map[r.Field] = to
		}
	})
}

// CanaryAutoscaler is a copy of the workload's HorizontalPodAutoscaler for
// the canary track, <name>-canary, scaling <workload>-canary with at least
// replicas (the canary's planned size) and at most the larger of the
// original maximum and that size. It lives as long as the canary track.
func CanaryAutoscaler(hpa *unstructured.Unstructured, replicas int32) (*unstructured.Unstructured, error) {
	c := hpa.DeepCopy()
	c.SetName(v1alpha1.CanaryName(c.GetName()))
	stripServerFields(c)
	target, _, _ := unstructured.NestedString(c.Object, "spec", "scaleTargetRef", "name")
	if err := unstructured.SetNestedField(c.Object, v1alpha1.CanaryName(target), "spec", "scaleTargetRef", "name"); err != nil {
		return nil, err
	}
	replicas = max(replicas, 1)
	maxReplicas, _, _ := unstructured.NestedInt64(c.Object, "spec", "maxReplicas")
	if err := unstructured.SetNestedField(c.Object, int64(replicas), "spec", "minReplicas"); err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(c.Object, max(maxReplicas, int64(replicas)), "spec", "maxReplicas"); err != nil {
		return nil, err
	}
	labels := c.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[TrackLabel] = TrackCanary
	c.SetLabels(labels)
	return c, nil
}

// Size is the workload's full size: the live replica count when an
// autoscaler sets it (Git's number is only where the autoscaler started),
// else the render's.
func Size(head *render.Result, o Observed) int32 {
	if head.Autoscaler != nil && o.StableReplicas > 0 {
		return o.StableReplicas
	}
	return head.Replicas()
}
