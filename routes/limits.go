package routes

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The Gateway API's limits on a route (v1.6 CRDs, both channels).
const (
	maxRules         = 16
	maxMatches       = 64  // per rule
	maxRouteMatches  = 128 // across the route's rules
	maxHeaders       = 16  // per match, and query parameters alike
	maxFilters       = 16  // per rule and per backendRef
	maxBackendRefs   = 16  // per rule
	maxSectionLength = 253
)

// Violation is one way a route breaks a Gateway API limit.
type Violation struct {
	// Field is the path of the offending field, e.g. spec.rules[2].matches.
	Field string
	// Message says what is wrong.
	Message string
	// Stricter is true where sluice refuses what the API server accepts:
	// a header named twice with different case, which the Gateway API says
	// is the same header (only the first is considered, so a header route
	// would silently never match).
	Stricter bool
}

// Violations is the list Limits returns; it is an error.
type Violations []Violation

func (v Violations) Error() string {
	var parts []string
	for _, x := range v {
		parts = append(parts, x.Field+": "+x.Message)
	}
	return strings.Join(parts, "; ")
}

// Limits checks a route against the limits the Gateway API's CRDs enforce
// (rule, match, header, filter and backend counts, weights, unique rule
// names) and against header names repeated in one match.
func Limits(r *Route) Violations {
	var l limits
	l.rules(shapes(r))
	return l.v
}

// shape is what the limits look at in a rule of either kind.
type shape struct {
	name       *gwv1.SectionName
	headers    [][]string // per match
	queries    [][]string // per match (HTTPRoute only)
	counted    int        // matches as the route-wide limit counts them
	filters    int
	refs       []gwv1.BackendRef
	refFilters []int
}

func shapes(r *Route) []shape {
	var out []shape
	if r.HTTP != nil {
		for _, rule := range r.HTTP.Spec.Rules {
			// A rule without matches gets one (the CRD's default).
			s := shape{name: rule.Name, counted: max(1, len(rule.Matches)), filters: len(rule.Filters), refs: httpRefs(rule)}
			for _, m := range rule.Matches {
				var hs, qs []string
				for _, h := range m.Headers {
					hs = append(hs, string(h.Name))
				}
				for _, q := range m.QueryParams {
					qs = append(qs, string(q.Name))
				}
				s.headers, s.queries = append(s.headers, hs), append(s.queries, qs)
			}
			for _, b := range rule.BackendRefs {
				s.refFilters = append(s.refFilters, len(b.Filters))
			}
			out = append(out, s)
		}
		return out
	}
	for _, rule := range r.GRPC.Spec.Rules {
		s := shape{name: rule.Name, counted: len(rule.Matches), filters: len(rule.Filters), refs: grpcRefs(rule)}
		for _, m := range rule.Matches {
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, string(h.Name))
			}
			s.headers = append(s.headers, hs)
		}
		for _, b := range rule.BackendRefs {
			s.refFilters = append(s.refFilters, len(b.Filters))
		}
		out = append(out, s)
	}
	return out
}

type limits struct{ v Violations }

func (l *limits) add(field, format string, args ...any) {
	l.v = append(l.v, Violation{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (l *limits) count(field string, n, most int, what string) {
	if n > most {
		l.add(field, "%d %s; the Gateway API allows %d", n, what, most)
	}
}

func (l *limits) rules(rules []shape) {
	l.count("spec.rules", len(rules), maxRules, "rules")
	names := map[string]int{}
	total := 0
	for i, r := range rules {
		p := fmt.Sprintf("spec.rules[%d]", i)
		l.name(p, r.name, names, i)
		l.count(p+".matches", len(r.headers), maxMatches, "matches")
		total += r.counted
		for j, hs := range r.headers {
			l.headers(fmt.Sprintf("%s.matches[%d].headers", p, j), hs, true)
		}
		for j, qs := range r.queries {
			l.headers(fmt.Sprintf("%s.matches[%d].queryParams", p, j), qs, false)
		}
		l.count(p+".filters", r.filters, maxFilters, "filters")
		l.count(p+".backendRefs", len(r.refs), maxBackendRefs, "backendRefs")
		for j, b := range r.refs {
			l.backend(fmt.Sprintf("%s.backendRefs[%d]", p, j), b, r.refFilters[j])
		}
	}
	if total > maxRouteMatches {
		l.add("spec.rules", "%d matches across the rules; the Gateway API allows %d in a route", total, maxRouteMatches)
	}
}

// name checks a rule's name is a valid section name, unique in the route.
func (l *limits) name(p string, name *gwv1.SectionName, seen map[string]int, i int) {
	if name == nil {
		return
	}
	n := string(*name)
	if len(n) > maxSectionLength {
		l.add(p+".name", "%q is %d characters; the Gateway API allows %d", n, len(n), maxSectionLength)
	} else if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
		l.add(p+".name", "%q: %s", n, strings.Join(msgs, "; "))
	}
	if j, dup := seen[n]; dup {
		l.add(p+".name", "%q is also the name of spec.rules[%d]; rule names are unique in a route", n, j)
	}
	seen[n] = i
}

// headers checks a match's header (or query parameter) names: at most 16,
// each once. Header names are compared without case, as HTTP does.
func (l *limits) headers(p string, names []string, header bool) {
	what := "query parameters"
	if header {
		what = "headers"
	}
	l.count(p, len(names), maxHeaders, what)
	exact, folded := map[string]bool{}, map[string]string{}
	for _, n := range names {
		switch f := strings.ToLower(n); {
		case exact[n]:
			l.add(p, "%q is matched twice; a match names each of its %s once", n, what)
		case header && folded[f] != "":
			l.v = append(l.v, Violation{Field: p, Stricter: true,
				Message: fmt.Sprintf("%q and %q are the same header; only the first would be matched", folded[f], n)})
		}
		exact[n], folded[strings.ToLower(n)] = true, n
	}
}

func (l *limits) backend(p string, b gwv1.BackendRef, filters int) {
	l.count(p+".filters", filters, maxFilters, "filters")
	if b.Weight != nil && (*b.Weight < 0 || *b.Weight > maxWeight) {
		l.add(p+".weight", "%d; the Gateway API allows 0 to %d", *b.Weight, maxWeight)
	}
}
