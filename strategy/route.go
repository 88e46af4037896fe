package strategy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/routes"
)

// RouteState is the traffic shape sluice gives a release's route.
type RouteState = routes.State

// TransformRoute returns a copy of the head render's HTTPRoute or
// GRPCRoute with the state applied to every rule naming the release's
// Service (in namespace ns, unless the route gives its own): the Service's
// share split with <service>-canary, a header-match rule before it for
// each header route, and a mirror to the canary. Rules and filters that do
// not involve the Service are left exactly as written.
func TransformRoute(route *unstructured.Unstructured, ns, service string, st RouteState) (*unstructured.Unstructured, error) {
	t := routes.Target{Namespace: routes.Namespace(route, ns), Service: service, Canary: v1alpha1.CanaryName(service)}
	if st.Baseline > 0 {
		t.Baseline = v1alpha1.BaselineName(service)
	}
	out, err := routes.Transform(route, t, st)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", render.ObjectID(route), err)
	}
	return out, nil
}
