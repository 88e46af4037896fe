package routes

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// backends lists "name/ns:weight" for each backendRef of rule i.
func backends(t *testing.T, u *unstructured.Unstructured, i int) []string {
	t.Helper()
	r, err := Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range r.refs()[i] {
		s := string(b.Name)
		if b.Namespace != nil {
			s += "/" + string(*b.Namespace)
		}
		if b.Weight != nil {
			s += ":" + itoa(*b.Weight)
		}
		out = append(out, s)
	}
	return out
}

func itoa(v int32) string { b, _ := yaml.Marshal(v); return strings.TrimSpace(string(b)) }

var app = Target{Namespace: "shop", Service: "foo-v1", Canary: "foo-v1-canary"}

func TestSplitKeepsOtherBackendsShares(t *testing.T) {
	route := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - backendRefs:
    - {name: foo-v1, port: 8080, weight: 90}
    - {name: foo-v2, port: 8080, weight: 10}
  - backendRefs:
    - {name: foo-v1, port: 8080, weight: 0}
    - {name: foo-v2, port: 8080, weight: 1}
  - backendRefs:
    - {name: foo-v1, namespace: other, port: 8080}
  - backendRefs:
    - {name: foo-v1, port: 8080}
    - {name: foo-v1, namespace: shop, port: 8080}
`
	tests := []struct {
		w    int32
		want [][]string
	}{
		{10, [][]string{
			{"foo-v1:81", "foo-v1-canary:9", "foo-v2:10"}, // 81% / 9% / 10%: foo-v2 keeps its tenth
			{"foo-v1:0", "foo-v1-canary:0", "foo-v2:1"},   // a drained Service stays drained
			{"foo-v1/other"}, // another namespace's foo-v1 is not ours
			{"foo-v1:9", "foo-v1-canary:1", "foo-v1/shop:9", "foo-v1-canary/shop:1"},
		}},
		{50, [][]string{
			{"foo-v1:9", "foo-v1-canary:9", "foo-v2:2"},
			{"foo-v1:0", "foo-v1-canary:0", "foo-v2:1"},
			{"foo-v1/other"},
			{"foo-v1:1", "foo-v1-canary:1", "foo-v1/shop:1", "foo-v1-canary/shop:1"},
		}},
	}
	for _, tt := range tests {
		out, err := Transform(obj(t, route), app, State{Canary: true, Weight: tt.w})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range tt.want {
			if diff := cmp.Diff(want, backends(t, out, i)); diff != "" {
				t.Errorf("w=%d rule %d (-want +got):\n%s", tt.w, i, diff)
			}
		}
	}
}

func TestSplitFitsTheLargestWeight(t *testing.T) {
	route := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - backendRefs:
    - {name: foo-v1, port: 8080, weight: 999999}
    - {name: foo-v2, port: 8080, weight: 1}
`
	out, err := Transform(obj(t, route), app, State{Canary: true, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	// 999999*99 : 999999*1 : 100, scaled into 0..1000000 with every
	// backend that had traffic keeping some.
	if diff := cmp.Diff([]string{"foo-v1:1000000", "foo-v1-canary:10101", "foo-v2:1"}, backends(t, out, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCanaryCopyKeepsPortAndFilters(t *testing.T) {
	route := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - name: main
    backendRefs:
    - name: foo-v1
      port: 8080
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: x-backend, value: foo}]}
`
	hr := v1alpha1.HeaderRoute{Name: "beta", Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: "x-beta", Value: "1"}}}}
	out, err := Transform(obj(t, route), app, State{Canary: true, Weight: 20, HeaderRoutes: []v1alpha1.HeaderRoute{hr}, MirrorPercent: 5})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Decode(out)
	rules := r.HTTP.Spec.Rules
	if len(rules) != 2 || rules[0].Name == nil || *rules[0].Name != "main-beta" || *rules[1].Name != "main" {
		t.Fatalf("rule names: want main-beta, main; got %d rules", len(rules))
	}
	for i, rule := range rules {
		for _, b := range rule.BackendRefs {
			if b.Port == nil || *b.Port != 8080 || len(b.Filters) != 1 {
				t.Errorf("rule %d backend %s: port %v filters %d; want 8080 and the Service's filter", i, b.Name, b.Port, len(b.Filters))
			}
		}
	}
	f := rules[1].Filters
	if len(f) != 1 || f[0].RequestMirror == nil || f[0].RequestMirror.BackendRef.Name != "foo-v1-canary" || *f[0].RequestMirror.BackendRef.Port != 8080 {
		t.Errorf("main rule filters: want one mirror to foo-v1-canary:8080, got %+v", f)
	}
	if len(rules[0].Filters) != 0 {
		t.Errorf("header rule mirrors: %+v", rules[0].Filters)
	}
}

func TestTransformRefuses(t *testing.T) {
	twoPorts := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - backendRefs:
    - {name: foo-v1, port: 8080}
    - {name: foo-v1, port: 9090}
`
	grpc := `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - backendRefs: [{name: foo-v1, port: 9000}]
`
	query := v1alpha1.HeaderRoute{Name: "q", Match: v1alpha1.RouteMatch{QueryParams: []v1alpha1.HeaderMatch{{Name: "canary", Value: "1"}}}}
	tests := []struct {
		name, route string
		st          State
		want        string
	}{
		{"mirror from two ports", twoPorts, State{Canary: true, MirrorPercent: 10}, "on ports [8080 9090]; a mirror copies requests to one port"},
		{"query parameters on gRPC", grpc, State{Canary: true, HeaderRoutes: []v1alpha1.HeaderRoute{query}}, "a GRPCRoute matches no query parameters"},
		{"weight out of range", grpc, State{Canary: true, Weight: 101}, "out of 0..100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Transform(obj(t, tt.route), app, tt.st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Mirroring nothing from two ports is fine.
	if _, err := Transform(obj(t, twoPorts), app, State{Canary: true, Weight: 10}); err != nil {
		t.Fatal(err)
	}
}

func TestGRPCRoute(t *testing.T) {
	route := `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - matches: [{method: {service: echo.Echo}}]
    backendRefs: [{name: foo-v1, port: 9000}]
`
	hr := v1alpha1.HeaderRoute{Name: "ff", Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: "x-canary", Value: "1"}}}}
	out, err := Transform(obj(t, route), app, State{Canary: true, Weight: 30, HeaderRoutes: []v1alpha1.HeaderRoute{hr}})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Decode(out)
	rules := r.GRPC.Spec.Rules
	if len(rules) != 2 {
		t.Fatalf("%d rules, want 2", len(rules))
	}
	m := rules[0].Matches[0]
	if m.Method == nil || *m.Method.Service != "echo.Echo" || len(m.Headers) != 1 || m.Headers[0].Name != "x-canary" {
		t.Errorf("header rule match: %+v", m)
	}
	if diff := cmp.Diff([]string{"foo-v1:0", "foo-v1-canary:100"}, backends(t, out, 0)); diff != "" {
		t.Errorf("header rule (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"foo-v1:70", "foo-v1-canary:30"}, backends(t, out, 1)); diff != "" {
		t.Errorf("main rule (-want +got):\n%s", diff)
	}
}

func TestNoRulesStayAbsent(t *testing.T) {
	route := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {hostnames: [a.example]}\n"
	out, err := Transform(obj(t, route), app, State{Canary: true, Weight: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, found := out.Object["spec"].(map[string]any)["rules"]; found {
		t.Errorf("rules added: %v", out.Object["spec"])
	}
}

// TestBaselineShare: the baseline's share comes out of the Service's like
// the canary's, in the main rule only; header routes send nothing to it;
// shares that do not fit are refused.
func TestBaselineShare(t *testing.T) {
	route := obj(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  rules:
  - backendRefs: [{name: foo-v1, port: 8080}]
  - backendRefs:
    - {name: foo-v1, port: 8080, weight: 3}
    - {name: other, port: 8080, weight: 1}
`)
	bt := app
	bt.Baseline = "foo-v1-baseline"
	out, err := Transform(route, bt, State{Canary: true, Weight: 10, Baseline: 10,
		HeaderRoutes: []v1alpha1.HeaderRoute{{Name: "qa", Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: "x-qa", Value: "1"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"foo-v1:0", "foo-v1-canary:100"},                                 // the header route
		{"foo-v1:80", "foo-v1-canary:10", "foo-v1-baseline:10"},           // the single backend
		{"foo-v1:0", "foo-v1-canary:3", "other:1"},                        // header route of rule 2
		{"foo-v1:24", "foo-v1-canary:3", "foo-v1-baseline:3", "other:10"}, // 3:1 kept, the 3 split 80/10/10
	}
	for i, w := range want {
		if got := backends(t, out, i); !cmp.Equal(got, w) {
			t.Errorf("rule %d: %v, want %v", i, got, w)
		}
	}
	for _, st := range []State{{Canary: true, Weight: 60, Baseline: 50}, {Canary: true, Weight: 10, Baseline: -1}} {
		if _, err := Transform(route, bt, st); err == nil {
			t.Errorf("%+v accepted", st)
		}
	}
	if _, err := Transform(route, app, State{Canary: true, Weight: 10, Baseline: 10}); err == nil {
		t.Errorf("a baseline share with no baseline Service accepted")
	}
}
