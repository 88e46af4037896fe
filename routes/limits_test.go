package routes

import (
	"fmt"
	"strings"
	"testing"
)

func TestLimits(t *testing.T) {
	rule := func(extra string) string { return "  - " + extra + "backendRefs: [{name: foo-v1, port: 80}]\n" }
	many := func(n int, f func(i int) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(f(i))
		}
		return b.String()
	}
	route := func(kind, rules string) string {
		return "apiVersion: gateway.networking.k8s.io/v1\nkind: " + kind + "\nmetadata: {name: r}\nspec:\n  rules:\n" + rules
	}
	headers := func(n int, name func(i int) string) string {
		return "matches: [{headers: [" + many(n, func(i int) string { return fmt.Sprintf("{name: %s, value: v},", name(i)) }) + "]}]\n    "
	}
	tests := []struct {
		name, route, want string
		stricter          bool
	}{
		{"17 rules", route("HTTPRoute", many(17, func(int) string { return rule("") })), "spec.rules: 17 rules; the Gateway API allows 16", false},
		{"65 matches", route("HTTPRoute", rule("matches: ["+many(65, func(i int) string { return fmt.Sprintf("{path: {value: /p%d}},", i) })+"]\n    ")), "spec.rules[0].matches: 65 matches", false},
		{"129 matches in a route", route("HTTPRoute", many(3, func(int) string {
			return rule("matches: [" + many(43, func(i int) string { return fmt.Sprintf("{path: {value: /p%d}},", i) }) + "]\n    ")
		})), "129 matches across the rules", false},
		{"17 headers", route("GRPCRoute", rule(headers(17, func(i int) string { return fmt.Sprintf("x-h%d", i) }))), "spec.rules[0].matches[0].headers: 17 headers", false},
		{"a header twice", route("HTTPRoute", rule(headers(2, func(int) string { return "x-a" }))), `"x-a" is matched twice`, false},
		{"a header twice in two cases", route("HTTPRoute", rule(headers(2, func(i int) string { return []string{"X-A", "x-a"}[i] }))), `"X-A" and "x-a" are the same header`, true},
		{"a rule name twice", route("HTTPRoute", rule("name: a\n    ")+rule("name: a\n    ")), `spec.rules[1].name: "a" is also the name of spec.rules[0]`, false},
		{"a weight too large", route("HTTPRoute", "  - backendRefs: [{name: foo-v1, port: 80, weight: 1000001}]\n"), "backendRefs[0].weight: 1000001", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode(obj(t, tt.route))
			if err != nil {
				t.Fatal(err)
			}
			v := Limits(r)
			if len(v) != 1 || !strings.Contains(v.Error(), tt.want) || v[0].Stricter != tt.stricter {
				t.Fatalf("violations %+v, want one containing %q (stricter %v)", v, tt.want, tt.stricter)
			}
		})
	}
	r, _ := Decode(obj(t, route("HTTPRoute", many(16, func(int) string { return rule("") }))))
	if v := Limits(r); len(v) != 0 {
		t.Errorf("16 rules: %v", v)
	}
}
