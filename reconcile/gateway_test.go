package reconcile

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestUnsupported: a GatewayClass's status.supportedFeatures, as the API
// server stores it, decides which mirror features sluice may use: one
// that lists RequestMirror without the percentage mirrors every request
// but not a share; one that lists nothing is trusted.
func TestUnsupported(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Options{})
	ns := cluster.Namespace(t)
	for class, features := range map[string][]string{
		"mirror-all-" + ns: {FeatureRequestMirror},
		"lists-none-" + ns: nil,
	} {
		gc := objects(t, "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: "+class+"}\nspec: {controllerName: example.com/gateway}\n")[0]
		if err := m.client.Create(ctx, gc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.client.Delete(context.Background(), gc) })
		if features != nil {
			var list []any
			for _, f := range features {
				list = append(list, map[string]any{"name": f})
			}
			unstructured.SetNestedSlice(gc.Object, list, "status", "supportedFeatures")
			unstructured.SetNestedSlice(gc.Object, []any{map[string]any{
				"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
				"lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z"), "observedGeneration": int64(1),
			}}, "status", "conditions")
			if err := m.client.Status().Update(ctx, gc); err != nil {
				t.Fatal(err)
			}
		}
		gw := objects(t, "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: "+class+", namespace: "+ns+"}\nspec:\n  gatewayClassName: "+class+"\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n")[0]
		if err := m.client.Create(ctx, gw); err != nil {
			t.Fatal(err)
		}
	}
	route := func(gateway string) *unstructured.Unstructured {
		return objects(t, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: "+ns+"}\nspec:\n  parentRefs: [{name: "+gateway+"}]\n")[0]
	}
	for _, tc := range []struct {
		gateway  string
		features []string
		want     string
	}{
		{"mirror-all-" + ns, []string{FeatureRequestMirror}, ""},
		{"mirror-all-" + ns, []string{FeatureRequestMirror, FeatureRequestPercentageMirror}, "GatewayClass mirror-all-" + ns + " (of Gateway " + ns + "/mirror-all-" + ns + ") does not support HTTPRouteRequestPercentageMirror"},
		{"lists-none-" + ns, []string{FeatureRequestMirror, FeatureRequestPercentageMirror}, ""},
		{"missing-" + ns, []string{FeatureRequestMirror}, ""}, // the route's own status says so
	} {
		got, err := m.Unsupported(ctx, route(tc.gateway), tc.features...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%s %v: got %q, want %q", tc.gateway, tc.features, got, tc.want)
		}
	}
}
