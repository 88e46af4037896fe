package reconcile

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Gateway API feature names (GatewayClass status.supportedFeatures) of
// the RequestMirror filter, and of its percent field: an implementation may
// mirror every request but not a share (kgateway v2.1's conformance report
// lists the first without the second).
const (
	FeatureRequestMirror           = "HTTPRouteRequestMirror"
	FeatureRequestPercentageMirror = "HTTPRouteRequestPercentageMirror"
)

// Unsupported says which of the route's parent Gateways belong to a
// GatewayClass whose status lists its supported features without one of
// features ("" when every class lists them, or does not list features at all: then
// nothing is known and nothing is refused). Implementations that accept a
// filter they do not carry out (Traefik v3.6 answers 500 to every request
// on a rule with a RequestMirror, and says Accepted=True) still leave it out
// of supportedFeatures; this is how sluice hears it before users do.
//
// Gateways and GatewayClasses are the cluster's infrastructure, not the
// release's objects: they are read as the agent, also when m impersonates.
func (m *Manager) Unsupported(ctx context.Context, route *unstructured.Unstructured, features ...string) (string, error) {
	infra := m.client
	if m.agent != nil {
		infra = m.agent.client
	}
	parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	for _, p := range parents {
		ref, _ := p.(map[string]any)
		if kind, _ := ref["kind"].(string); kind != "" && kind != "Gateway" {
			continue
		}
		name, _ := ref["name"].(string)
		ns, _ := ref["namespace"].(string)
		if ns == "" {
			ns = route.GetNamespace()
		}
		gw := &unstructured.Unstructured{}
		gw.SetAPIVersion("gateway.networking.k8s.io/v1")
		gw.SetKind("Gateway")
		if err := infra.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
			if apierrors.IsNotFound(err) {
				continue // the route's own status says so
			}
			return "", fmt.Errorf("gateway %s/%s: %w", ns, name, err)
		}
		className, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName")
		gc := &unstructured.Unstructured{}
		gc.SetAPIVersion("gateway.networking.k8s.io/v1")
		gc.SetKind("GatewayClass")
		if err := infra.Get(ctx, client.ObjectKey{Name: className}, gc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return "", fmt.Errorf("gatewayclass %s: %w", className, err)
		}
		supported, listed := supportedFeatures(gc)
		for _, feature := range features {
			if listed && !supported[feature] {
				return fmt.Sprintf("GatewayClass %s (of Gateway %s/%s) does not support %s: its status.supportedFeatures leaves it out", className, ns, name, feature), nil
			}
		}
	}
	return "", nil
}

// supportedFeatures reads status.supportedFeatures: objects with a name
// (Gateway API v1.2 and later) or plain strings (v1.1).
func supportedFeatures(gc *unstructured.Unstructured) (map[string]bool, bool) {
	list, found, _ := unstructured.NestedSlice(gc.Object, "status", "supportedFeatures")
	if !found || len(list) == 0 {
		return nil, false
	}
	out := map[string]bool{}
	for _, f := range list {
		switch v := f.(type) {
		case string:
			out[strings.TrimSpace(v)] = true
		case map[string]any:
			if n, ok := v["name"].(string); ok {
				out[n] = true
			}
		}
	}
	return out, true
}

// RouteVerdict reads the live route's status: for the current generation,
// a parent whose Accepted or ResolvedRefs condition is False is a
// rejection, returned as "<condition> <reason>: <message> (parent)" (""
// when the route is accepted, not found, or not looked at yet). pending
// is true while some parent's Accepted condition is about an older
// generation: the implementation has not taken the route as last written.
// A route with no status (no implementation reports one) is not pending.
func (m *Manager) RouteVerdict(ctx context.Context, apiVersion, kind, namespace, name string) (verdict string, pending bool, err error) {
	live := &unstructured.Unstructured{}
	live.SetAPIVersion(apiVersion)
	live.SetKind(kind)
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, live); err != nil {
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	parents, _, _ := unstructured.NestedSlice(live.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		ref, _ := pm["parentRef"].(map[string]any)
		conds, _ := pm["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			typ, _ := cm["type"].(string)
			g, hasGen := cm["observedGeneration"].(int64)
			if hasGen && g != live.GetGeneration() {
				pending = pending || typ == "Accepted"
				continue // about an older version of the route
			}
			if (typ == "Accepted" || typ == "ResolvedRefs") && cm["status"] == "False" && verdict == "" {
				verdict = fmt.Sprintf("%s=False %v: %v (parent %v/%v)", typ, cm["reason"], cm["message"], ref["namespace"], ref["name"])
			}
		}
	}
	return verdict, pending, nil
}
