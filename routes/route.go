package routes

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	sigsjson "sigs.k8s.io/json"
)

// gatewayAPI is the version of the Gateway API types routes decode into.
const gatewayAPI = "v1.6"

// typeName says a Go kind as the route's YAML would.
func typeName(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice":
		return "a list"
	case "int32", "int64", "int":
		return "a number"
	}
	return "a " + kind
}

// Group is the Gateway API's group.
const Group = "gateway.networking.k8s.io"

// The route kinds a release can name.
const (
	HTTPRoute = "HTTPRoute"
	GRPCRoute = "GRPCRoute"
)

// Kinds are the route kinds sluice transforms, in the order a release's
// route is looked up when its kind is not given.
var Kinds = []string{HTTPRoute, GRPCRoute}

// Route is a decoded HTTPRoute or GRPCRoute: exactly one of HTTP and GRPC
// is set.
type Route struct {
	HTTP *gwv1.HTTPRoute
	GRPC *gwv1.GRPCRoute
}

// Decode reads u strictly into the gateway-api types: a field the types do
// not know, or a value of the wrong type, is an error naming the field, so
// the transform never drops a part of a route it does not understand.
func Decode(u *unstructured.Unstructured) (*Route, error) {
	var r Route
	var into any
	switch u.GetKind() {
	case HTTPRoute:
		r.HTTP = &gwv1.HTTPRoute{}
		into = r.HTTP
	case GRPCRoute:
		r.GRPC = &gwv1.GRPCRoute{}
		into = r.GRPC
	default:
		return nil, fmt.Errorf("kind %s: sluice routes traffic with an HTTPRoute or a GRPCRoute", u.GetKind())
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	strict, err := sigsjson.UnmarshalStrict(data, into, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: want %s, got %s", te.Field, typeName(te.Type.Kind().String()), te.Value)
		}
		return nil, err
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%w (a field the Gateway API %s types sluice is built with do not know; it would be lost)", strict[0], gatewayAPI)
	}
	return &r, nil
}

// IsService reports whether a backend reference names the core Service
// service in namespace ns (the route's own namespace when the reference
// gives none). A reference of the same name in another namespace is
// another Service.
func IsService(ref gwv1.BackendObjectReference, ns, service string) bool {
	if string(ref.Name) != service {
		return false
	}
	if ref.Group != nil && *ref.Group != "" {
		return false
	}
	if ref.Kind != nil && *ref.Kind != "Service" {
		return false
	}
	return ref.Namespace == nil || string(*ref.Namespace) == ns
}

// refs lists the backend references of each rule.
func (r *Route) refs() [][]gwv1.BackendRef {
	var out [][]gwv1.BackendRef
	if r.HTTP != nil {
		for _, rule := range r.HTTP.Spec.Rules {
			out = append(out, httpRefs(rule))
		}
		return out
	}
	for _, rule := range r.GRPC.Spec.Rules {
		out = append(out, grpcRefs(rule))
	}
	return out
}

func httpRefs(rule gwv1.HTTPRouteRule) []gwv1.BackendRef {
	out := make([]gwv1.BackendRef, len(rule.BackendRefs))
	for i, b := range rule.BackendRefs {
		out[i] = b.BackendRef
	}
	return out
}

func grpcRefs(rule gwv1.GRPCRouteRule) []gwv1.BackendRef {
	out := make([]gwv1.BackendRef, len(rule.BackendRefs))
	for i, b := range rule.BackendRefs {
		out[i] = b.BackendRef
	}
	return out
}

// ServiceRules counts the rules with a backend reference to service in ns.
func (r *Route) ServiceRules(ns, service string) int {
	n := 0
	for _, list := range r.refs() {
		if namesService(list, ns, service) {
			n++
		}
	}
	return n
}

func namesService(refs []gwv1.BackendRef, ns, service string) bool {
	for _, b := range refs {
		if IsService(b.BackendObjectReference, ns, service) {
			return true
		}
	}
	return false
}

// Namespace is the namespace the route's references are relative to: its
// own, else the release's.
func Namespace(u *unstructured.Unstructured, release string) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns
	}
	return release
}
