//go:build !mutation

package strategy

import (
	"context"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
)

var lazyCluster testcluster.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	lazyCluster.Stop()
	os.Exit(code)
}

func startCluster(t *testing.T) *testcluster.Cluster { return lazyCluster.Get(t) }

// TestExamplesOnTheAPIServer walks every routed example through each of
// its steps and applies the stable track, the canary track and the
// transformed HTTPRoute to the real API server, whose Gateway API CRD
// validation must accept them all.
func TestExamplesOnTheAPIServer(t *testing.T) {
	c := startCluster(t)
	m, err := reconcile.New(c.Config, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := render.NewDiskFS("../examples")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := v1alpha1.FindReleases(fsys, fsys.Root(), ".")
	var r render.Renderer
	routed := 0
	for _, f := range files {
		p, res, err := r.Load(context.Background(), fsys, fsys.Root(), f, "")
		if err != nil {
			t.Fatal(err)
		}
		spec := &p.Release.Spec
		if !spec.Strategy.Routed() {
			continue
		}
		routed++
		t.Run(p.Release.ID(), func(t *testing.T) {
			ns := c.Namespace(t)
			steps := spec.Strategy.Steps()
			// The states a rollout goes through: each step index, and in
			// manual mode a few weights; then promoting.
			type state struct {
				step   int32
				weight int32
				phase  v1alpha1.Phase
			}
			var states []state
			weight := int32(0)
			for i := range steps {
				states = append(states, state{int32(i), weight, v1alpha1.PhaseProgressing})
				if steps[i].SetWeight != nil {
					weight = *steps[i].SetWeight
				}
			}
			if spec.Strategy.Manual() {
				for _, w := range []int32{0, 10, 25, 50} {
					states = append(states, state{0, w, v1alpha1.PhaseProgressing})
				}
			}
			states = append(states, state{int32(len(steps)), 100, v1alpha1.PhasePromoting})
			for _, s := range states {
				st := inflight(s.step, s.weight, s.phase, 0)
				d := &decision{in: Input{Spec: p.Release, Replicas: 3}, spec: spec, steps: steps}
				d.p.Status = st
				rs := d.route()
				route, err := TransformRoute(res.Route, p.Release.Metadata.Namespace, spec.Traffic.Service, rs)
				if err != nil {
					t.Fatal(err)
				}
				if rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules"); len(rules) > 16 {
					t.Fatalf("step %d: %d rules", s.step, len(rules))
				}
				stable, err := StableTrack(spec, res.Objects)
				if err != nil {
					t.Fatal(err)
				}
				canary, err := CanaryTrack(spec, res, d.canaryReplicas())
				if err != nil {
					t.Fatal(err)
				}
				var objs []*unstructured.Unstructured
				for _, o := range stable {
					if o.GetKind() == "HTTPRoute" && o.GetName() == spec.Traffic.Route {
						o = route
					}
					objs = append(objs, o)
				}
				objs = append(objs, canary...)
				for _, o := range objs {
					o.SetNamespace(ns)
				}
				if _, err := m.Apply(context.Background(), reconcile.Set{Release: ns + "/" + p.Release.Metadata.Name, Namespace: ns, Objects: objs}, reconcile.ApplyOptions{Force: true}); err != nil {
					t.Fatalf("step %d (%+v): %v", s.step, rs, err)
				}
			}
		})
	}
	if routed != 5 {
		t.Errorf("walked %d routed examples, want 5", routed)
	}
}

func TestCanaryTrack(t *testing.T) {
	fsys, _ := render.NewDiskFS("../examples")
	var r render.Renderer
	p, res, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/demo/canary/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := CanaryTrack(&p.Release.Spec, res, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("canary track = %d objects", len(objs))
	}
	w, cm, svc := objs[0], objs[1], objs[2]
	sel, _, _ := unstructured.NestedStringMap(w.Object, "spec", "selector", "matchLabels")
	labels, _, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
	replicas, _, _ := unstructured.NestedInt64(w.Object, "spec", "replicas")
	if w.GetName() != "canary-canary" || sel[TrackLabel] != TrackCanary || labels[TrackLabel] != TrackCanary || replicas != 2 {
		t.Errorf("workload %s selector %v labels %v replicas %d", w.GetName(), sel, labels, replicas)
	}
	if !strings.HasSuffix(cm.GetName(), "-canary") || cm.GetKind() != "ConfigMap" {
		t.Errorf("config copy = %s %s", cm.GetKind(), cm.GetName())
	}
	froms, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "containers")
	if !strings.Contains(strings.Join(flatten(froms), " "), cm.GetName()) {
		t.Errorf("the canary's envFrom does not name %s", cm.GetName())
	}
	ssel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	if svc.GetName() != "canary-canary" || ssel[TrackLabel] != TrackCanary {
		t.Errorf("service %s selector %v", svc.GetName(), ssel)
	}
	// The stable track gets the stable label; the head render is untouched.
	stable, _ := StableTrack(&p.Release.Spec, res.Objects)
	for _, o := range stable {
		if o.GetKind() == "Service" {
			s, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector")
			if s[TrackLabel] != TrackStable {
				t.Errorf("stable service selector %v", s)
			}
		}
	}
	orig, _, _ := unstructured.NestedStringMap(res.Workload.Object, "spec", "selector", "matchLabels")
	if _, ok := orig[TrackLabel]; ok {
		t.Error("the cached render was changed")
	}
}

func flatten(v []any) []string {
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		case string:
			out = append(out, t)
		}
	}
	for _, e := range v {
		walk(e)
	}
	return out
}
