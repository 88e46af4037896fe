package strategy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

const userRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: shop}
spec:
  parentRefs: [{name: public}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: X-Team, value: shop}]}
    backendRefs:
    - {name: app, port: 80}
  - backendRefs:
    - {name: other, port: 8080}
`

func routeObj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func rules(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	r, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	b, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTransformRoute(t *testing.T) {
	w50 := int32(50)
	ff := v1alpha1.HeaderRoute{Name: "ff", Weight: &w50, Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: "User-Agent", Type: "RegularExpression", Value: ".*Firefox.*"}}}}
	redirect := `- filters:
  - requestRedirect:
      path:
        replacePrefixMatch: /
        type: ReplacePrefixMatch
      statusCode: 301
    type: RequestRedirect
  matches:
  - path:
      type: PathPrefix
      value: /old
`
	other := `- backendRefs:
  - name: other
    port: 8080
`
	modifier := `  filters:
  - requestHeaderModifier:
      add:
      - name: X-Team
        value: shop
    type: RequestHeaderModifier
`
	tests := []struct {
		name string
		st   RouteState
		want string
	}{
		{"no canary: as written", RouteState{}, redirect + `- backendRefs:
  - name: app
    port: 80
` + modifier + `  matches:
  - path:
      type: PathPrefix
      value: /api
` + other},
		{"weight 25", RouteState{Canary: true, Weight: 25}, redirect + `- backendRefs:
  - name: app
    port: 80
    weight: 75
  - name: app-canary
    port: 80
    weight: 25
` + modifier + `  matches:
  - path:
      type: PathPrefix
      value: /api
` + other},
		{"header route before the rule, path kept; mirror 20", RouteState{Canary: true, Weight: 5, HeaderRoutes: []v1alpha1.HeaderRoute{ff}, MirrorPercent: 20}, redirect + `- backendRefs:
  - name: app
    port: 80
    weight: 50
  - name: app-canary
    port: 80
    weight: 50
` + modifier + `  matches:
  - headers:
    - name: User-Agent
      type: RegularExpression
      value: .*Firefox.*
    path:
      type: PathPrefix
      value: /api
- backendRefs:
  - name: app
    port: 80
    weight: 95
  - name: app-canary
    port: 80
    weight: 5
` + modifier + `  - requestMirror:
      backendRef:
        name: app-canary
        port: 80
      percent: 20
    type: RequestMirror
  matches:
  - path:
      type: PathPrefix
      value: /api
` + other},
		{"mirror 100 at weight 0", RouteState{Canary: true, MirrorPercent: 100}, redirect + `- backendRefs:
  - name: app
    port: 80
    weight: 100
  - name: app-canary
    port: 80
    weight: 0
` + modifier + `  - requestMirror:
      backendRef:
        name: app-canary
        port: 80
      percent: 100
    type: RequestMirror
  matches:
  - path:
      type: PathPrefix
      value: /api
` + other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := routeObj(t, userRoute)
			before := rules(t, in)
			out, err := TransformRoute(in, "shop", "app", tt.st)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, rules(t, out)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if rules(t, in) != before {
				t.Error("the input route was changed")
			}
			again, _ := TransformRoute(in, "shop", "app", tt.st)
			if rules(t, again) != rules(t, out) {
				t.Error("not idempotent")
			}
		})
	}
	if _, err := TransformRoute(routeObj(t, userRoute), "shop", "app", RouteState{Canary: true, Weight: 101}); err == nil {
		t.Error("weight 101 accepted")
	}
}

// Routes of other shapes are errors from TransformRoute, never panics.
func TestTransformRouteMalformed(t *testing.T) {
	for _, y := range []string{
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app}\nspec:\n  rules:\n  - matches: [\"x\"]\n    backendRefs: [{name: app}]\n",
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app}\nspec:\n  rules:\n  - backendRefs: [{name: app}]\n    filters: [7]\n",
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app}\nspec: {rules: 3}\n",
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: app}\nspec: []\n",
	} {
		st := RouteState{Canary: true, Weight: 10, MirrorPercent: 5, HeaderRoutes: []v1alpha1.HeaderRoute{{Name: "ff", Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: "a", Value: "b"}}}}}}
		if _, err := TransformRoute(routeObj(t, y), "shop", "app", st); err == nil {
			t.Errorf("no error for\n%s", y)
		}
	}
}
