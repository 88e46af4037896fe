package reconcile

import (
	"context"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Endpoints counts a Service's endpoints as its EndpointSlices list them,
// which is what a Gateway's data plane routes to: ready is those ready to
// take traffic, other those listed but not ready (starting, or terminating
// and still listed). An address in several slices counts once.
func (m *Manager) Endpoints(ctx context.Context, namespace, service string) (ready, other int, err error) {
	var list discoveryv1.EndpointSliceList
	if err := m.client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return 0, 0, fmt.Errorf("EndpointSlices of Service/%s/%s: %w", namespace, service, err)
	}
	seen := map[string]bool{}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 || seen[e.Addresses[0]] {
				continue
			}
			seen[e.Addresses[0]] = true
			// Ready unset means ready (the API's convention); terminating
			// endpoints are never ready.
			if (e.Conditions.Ready == nil || *e.Conditions.Ready) && (e.Conditions.Terminating == nil || !*e.Conditions.Terminating) {
				ready++
			} else {
				other++
			}
		}
	}
	return ready, other, nil
}
