package routes

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

var lazy testcluster.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	lazy.Stop()
	os.Exit(code)
}

// experimentalGroup is where the experimental channel's route CRDs are
// installed beside the standard ones: the same schemas and validation
// rules under another group, so one API server checks both channels.
const experimentalGroup = "gateway.experimental.sluice.test"

// gatewayAPIDir is the gateway-api module sluice is built with.
func gatewayAPIDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("go list -m sigs.k8s.io/gateway-api: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// corpus is every HTTPRoute and GRPCRoute in the Gateway API project's own
// examples, both channels.
func corpus(t *testing.T) []*unstructured.Unstructured {
	dir := gatewayAPIDir(t)
	var out []*unstructured.Unstructured
	for _, sub := range []string{"examples/standard", "examples/experimental"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			objs, err := testcluster.DecodeYAML(data)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			for _, o := range objs {
				if o.GroupVersionKind().Group == Group && (o.GetKind() == HTTPRoute || o.GetKind() == GRPCRoute) {
					o.SetAnnotations(map[string]string{"corpus": strings.TrimPrefix(p, dir+"/")})
					out = append(out, o)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// services are the core Services a route's rules name in its namespace;
// a route naming none is transformed for a Service it does not name.
func services(r *Route, ns string) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range r.refs() {
		for _, b := range list {
			if IsService(b.BackendObjectReference, ns, string(b.Name)) && !seen[string(b.Name)] {
				seen[string(b.Name)] = true
				out = append(out, string(b.Name))
			}
		}
	}
	if len(out) == 0 {
		out = []string{"not-named"}
	}
	return out
}

func corpusStates() []State {
	w50 := int32(50)
	hdr := func(name, header, typ, value string, w *int32) v1alpha1.HeaderRoute {
		return v1alpha1.HeaderRoute{Name: name, Weight: w, Match: v1alpha1.RouteMatch{Headers: []v1alpha1.HeaderMatch{{Name: header, Type: typ, Value: value}}}}
	}
	ff := hdr("firefox", "User-Agent", "RegularExpression", ".*Firefox.*", nil)
	ko := hdr("korean", "Accept-Language", "", "ko", &w50)
	env := hdr("env", "env", "", "canary", nil) // a header the examples' own matches name
	query := v1alpha1.HeaderRoute{Name: "q", Match: v1alpha1.RouteMatch{QueryParams: []v1alpha1.HeaderMatch{{Name: "canary", Value: "1"}}}}
	var many []v1alpha1.HeaderRoute
	for i := range 8 {
		many = append(many, hdr(fmt.Sprintf("h%d", i), fmt.Sprintf("x-h%d", i), "", "1", nil))
	}
	return []State{
		{},
		{Canary: true, Weight: 0},
		{Canary: true, Weight: 10},
		{Canary: true, Weight: 50},
		{Canary: true, Weight: 100},
		{Canary: true, Weight: 10, HeaderRoutes: []v1alpha1.HeaderRoute{ff}},
		{Canary: true, Weight: 10, HeaderRoutes: []v1alpha1.HeaderRoute{ff, ko}},
		{Canary: true, Weight: 10, MirrorPercent: 20},
		{Canary: true, Weight: 25, HeaderRoutes: []v1alpha1.HeaderRoute{ff}, MirrorPercent: 10},
		{Canary: true, Weight: 10, HeaderRoutes: []v1alpha1.HeaderRoute{query}},
		{Canary: true, Weight: 10, HeaderRoutes: []v1alpha1.HeaderRoute{env}},
		{Canary: true, Weight: 10, HeaderRoutes: many},
	}
}

// TestExamplesCorpus runs the transform over every route of the Gateway
// API's examples, for each Service they name and twelve canary states,
// checks the invariants below in Go, and has the real API server
// dry-run every result on both CRD channels. A result the transform
// refuses for a limit must be one the API server refuses too (unless the
// refusal is one where sluice is knowingly stricter).
func TestExamplesCorpus(t *testing.T) {
	type result struct {
		name string
		obj  *unstructured.Unstructured
		want bool // accepted
	}
	var results []result
	seen := map[[32]byte]bool{}
	routesN, cases, refused := 0, 0, 0
	for _, u := range corpus(t) {
		name := fmt.Sprintf("%s %s/%s", u.GetAnnotations()["corpus"], u.GetKind(), u.GetName())
		r, err := Decode(u)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		routesN++
		ns := Namespace(u, "default")
		for _, svc := range services(r, ns) {
			target := Target{Namespace: ns, Service: svc, Canary: svc + "-canary"}
			for i, st := range corpusStates() {
				cases++
				id := fmt.Sprintf("%s service %s state %d", name, svc, i)
				out, err := Transform(u, target, st)
				var lim Violations
				switch {
				case errors.As(err, &lim):
					refused++
					if i < 10 {
						t.Errorf("%s: an ordinary state refused: %v", id, lim)
					}
					raw, rerr := transform(u, target, st)
					if rerr != nil {
						t.Fatalf("%s: %v", id, rerr)
					}
					if !stricterOnly(lim) {
						results = append(results, result{id + " (refused: " + lim.Error() + ")", raw, false})
					}
					continue
				case err != nil && r.GRPC != nil && len(st.HeaderRoutes) > 0 && len(st.HeaderRoutes[0].Match.QueryParams) > 0:
					continue // refused as it should be: gRPC has no query parameters
				case err != nil:
					t.Errorf("%s: %v", id, err)
					continue
				}
				if err := invariants(u, out, r, target, st); err != nil {
					t.Errorf("%s: %v", id, err)
				}
				b, _ := json.Marshal(out.Object)
				if h := sha256.Sum256(b); !seen[h] {
					seen[h] = true
					results = append(results, result{id, out, true})
				}
			}
		}
	}
	if routesN < 50 {
		t.Fatalf("the corpus has %d routes; the gateway-api module's examples have more than 50", routesN)
	}
	t.Logf("%d routes, %d cases, %d refused for a limit, %d distinct results dry-run on 2 channels", routesN, cases, refused, len(results))

	c := lazy.Get(t)
	ns := c.Namespace(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	installExperimental(t, c)
	jobs := make(chan result)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for res := range jobs {
				var refusedBy []string
				for _, group := range []string{Group, experimentalGroup} {
					o := res.obj.DeepCopy()
					o.SetAPIVersion(group + "/v1")
					o.SetNamespace(ns)
					o.SetAnnotations(nil)
					gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: strings.ToLower(o.GetKind()) + "s"}
					_, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					switch {
					case err != nil && !apierrors.IsInvalid(err):
						t.Errorf("%s: %s channel: %v", res.name, group, err)
					case err != nil && res.want:
						t.Errorf("%s: refused by the %s channel: %v", res.name, group, err)
					case err != nil:
						refusedBy = append(refusedBy, group)
					}
				}
				if !res.want && len(refusedBy) == 0 {
					t.Errorf("%s: sluice refused it but both channels accept it", res.name)
				}
			}
		})
	}
	for _, r := range results {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
}

func stricterOnly(v Violations) bool {
	for _, x := range v {
		if !x.Stricter {
			return false
		}
	}
	return true
}

// installExperimental installs the experimental channel's HTTPRoute and
// GRPCRoute CRDs under experimentalGroup.
func installExperimental(t *testing.T, c *testcluster.Cluster) {
	dir := filepath.Join(gatewayAPIDir(t), "config/crd/experimental")
	var docs []string
	for _, f := range []string{"httproutes", "grpcroutes"} {
		data, err := os.ReadFile(filepath.Join(dir, "gateway.networking.k8s.io_"+f+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := testcluster.DecodeYAML(data)
		if err != nil {
			t.Fatal(err)
		}
		crd := objs[0]
		crd.SetName(f + "." + experimentalGroup)
		crd.SetAnnotations(nil) // api-approved.kubernetes.io is for k8s.io groups only
		if err := unstructured.SetNestedField(crd.Object, experimentalGroup, "spec", "group"); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(crd.Object)
		docs = append(docs, string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testcluster.ApplyYAML(ctx, c.Config, []byte(strings.Join(docs, "\n---\n"))); err != nil {
		t.Fatal(err)
	}
}

// invariants are what every transform must keep, whatever the route.
func invariants(in, out *unstructured.Unstructured, r *Route, t Target, st State) error {
	if !st.Canary {
		if !reflect.DeepEqual(in.Object, out.Object) {
			return fmt.Errorf("no canary, yet the route changed")
		}
		return nil
	}
	// Only spec.rules changes; rules stay absent when absent.
	a, b := in.DeepCopy(), out.DeepCopy()
	inRules, inFound, _ := unstructured.NestedSlice(a.Object, "spec", "rules")
	outRules, outFound, _ := unstructured.NestedSlice(b.Object, "spec", "rules")
	if inFound != outFound {
		return fmt.Errorf("spec.rules present %v, was %v", outFound, inFound)
	}
	unstructured.RemoveNestedField(a.Object, "spec", "rules")
	unstructured.RemoveNestedField(b.Object, "spec", "rules")
	if !reflect.DeepEqual(a.Object, b.Object) {
		return fmt.Errorf("a field other than spec.rules changed")
	}
	res, err := Decode(out)
	if err != nil {
		return err
	}
	inRefs, outRefs := r.refs(), res.refs()
	k := 0
	for i, refs := range inRefs {
		if !namesService(refs, t.Namespace, t.Service) {
			if !reflect.DeepEqual(inRules[i], outRules[k]) {
				return fmt.Errorf("spec.rules[%d] does not name the Service, yet changed", i)
			}
			k++
			continue
		}
		for h, hr := range st.HeaderRoutes {
			if err := shares(refs, outRefs[k+h], t, headerWeight(hr)); err != nil {
				return fmt.Errorf("spec.rules[%d] header route %s: %w", i, hr.Name, err)
			}
		}
		k += len(st.HeaderRoutes)
		if err := shares(refs, outRefs[k], t, st.Weight); err != nil {
			return fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		if err := sameFilters(r, i, res, k, t); err != nil {
			return fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		if err := mirrors(res, k, t, st.MirrorPercent); err != nil {
			return fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		k++
	}
	if k != len(outRefs) {
		return fmt.Errorf("%d rules out, want %d", len(outRefs), k)
	}
	return nil
}

// shares checks each backend's share of the rule: the Service's split
// w:100-w with the canary, every other backend's unchanged, and the
// canary's reference a copy of the Service's but for its name.
func shares(in, out []gwv1.BackendRef, t Target, w int32) error {
	weight := func(b gwv1.BackendRef) float64 {
		if b.Weight == nil {
			return 1
		}
		return float64(*b.Weight)
	}
	sum := func(list []gwv1.BackendRef) float64 {
		s := 0.0
		for _, b := range list {
			s += weight(b)
		}
		return s
	}
	sin, sout := sum(in), sum(out)
	if sin == 0 {
		return nil // a rule with no traffic: every share is 0 either way
	}
	k := 0
	for _, b := range in {
		share := weight(b) / sin
		if !IsService(b.BackendObjectReference, t.Namespace, t.Service) {
			if got := weight(out[k]) / sout; math.Abs(got-share) > 1e-4 || out[k].Name != b.Name {
				return fmt.Errorf("backend %s: share %.5f, was %.5f", b.Name, got, share)
			}
			k++
			continue
		}
		stable, canary := out[k], out[k+1]
		want := b.BackendObjectReference.DeepCopy()
		want.Name = gwv1.ObjectName(t.Canary)
		if !reflect.DeepEqual(*want, canary.BackendObjectReference) {
			return fmt.Errorf("canary reference %+v, want %+v", canary.BackendObjectReference, *want)
		}
		if got, exp := weight(stable)/sout, share*float64(100-w)/100; math.Abs(got-exp) > 1e-4 {
			return fmt.Errorf("Service %s: share %.5f, want %.5f", b.Name, got, exp)
		}
		if got, exp := weight(canary)/sout, share*float64(w)/100; math.Abs(got-exp) > 1e-4 {
			return fmt.Errorf("canary: share %.5f, want %.5f", got, exp)
		}
		k += 2
	}
	return nil
}

// mirrors checks rule k has one mirror to the canary, on the Service's
// port, when the state mirrors, and none otherwise.
func mirrors(r *Route, k int, t Target, percent int32) error {
	var found []*gwv1.HTTPRequestMirrorFilter
	if r.HTTP != nil {
		for _, f := range r.HTTP.Spec.Rules[k].Filters {
			if isCanaryMirror(f.RequestMirror, t) {
				found = append(found, f.RequestMirror)
			}
		}
	} else {
		for _, f := range r.GRPC.Spec.Rules[k].Filters {
			if isCanaryMirror(f.RequestMirror, t) {
				found = append(found, f.RequestMirror)
			}
		}
	}
	switch {
	case percent == 0 && len(found) > 0:
		return fmt.Errorf("%d mirrors to the canary, want none", len(found))
	case percent > 0 && (len(found) != 1 || *found[0].Percent != percent):
		return fmt.Errorf("mirrors %+v, want one at %d%%", found, percent)
	}
	return nil
}

// backendFilters is the JSON of each backendRef's filters in rule i.
func backendFilters(r *Route, i int) []string {
	var out []string
	add := func(v any) {
		b, _ := json.Marshal(v)
		out = append(out, string(b))
	}
	if r.HTTP != nil {
		for _, b := range r.HTTP.Spec.Rules[i].BackendRefs {
			add(b.Filters)
		}
	} else {
		for _, b := range r.GRPC.Spec.Rules[i].BackendRefs {
			add(b.Filters)
		}
	}
	return out
}

// sameFilters checks every backendRef of output rule k has the filters of
// the input backendRef it came from: the canary's copy included.
func sameFilters(in *Route, i int, out *Route, k int, t Target) error {
	was, now := backendFilters(in, i), backendFilters(out, k)
	j := 0
	for n, b := range in.refs()[i] {
		copies := 1
		if IsService(b.BackendObjectReference, t.Namespace, t.Service) {
			copies = 2
		}
		for range copies {
			if now[j] != was[n] {
				return fmt.Errorf("backendRefs[%d] filters %s, want %s", j, now[j], was[n])
			}
			j++
		}
	}
	return nil
}
