package strategy

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// The edges of the decision code, each case a boundary a mutation of the
// code would cross (docs/testing.md).

func TestDueChecksCountsEveryMeasurement(t *testing.T) {
	r := release(t, canarySteps, "")
	// Step 2 is check [ok]; ok has count 2, interval 10s.
	for _, tc := range []struct {
		name   string
		checks []v1alpha1.CheckState
		due    bool
	}{
		{"none yet", nil, true},
		{"one of two", []v1alpha1.CheckState{{Name: "ok", Passed: 1}}, true},
		{"two of two", []v1alpha1.CheckState{{Name: "ok", Passed: 2}}, false},
		{"a pass and an inconclusive are two", []v1alpha1.CheckState{{Name: "ok", Passed: 1, Inconclusive: 1}}, false},
		{"a pass and a failure are two", []v1alpha1.CheckState{{Name: "ok", Passed: 1, Failed: 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := inflight(2, 5, v1alpha1.PhaseProgressing, 0)
			st.Checks = tc.checks
			if due := DueChecks(input(r, st, time.Hour)); (len(due) > 0) != tc.due {
				t.Errorf("due = %v, want due %v", due, tc.due)
			}
		})
	}
}

// A check whose measurements are all in does not set the wake time.
func TestWakeSkipsFinishedChecks(t *testing.T) {
	r := release(t, "    canary: {steps: [{setWeight: 5}, {check: [ok, slow]}, {setWeight: 50}]}", `  - name: slow
    webhook: {url: "http://smoke/run"}
    count: 3
    interval: 30s
`)
	st := inflight(1, 5, v1alpha1.PhaseProgressing, 0)
	st.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 2}, {Name: "slow", Passed: 1}}
	p := Next(input(r, st, 25*time.Second))
	if want := t0.Add(30 * time.Second); !p.WakeAt.Equal(want) {
		t.Errorf("wake at %s, want %s (the next slow measurement; ok is done)", p.WakeAt, want)
	}
}

func TestChecksTrailerVerdicts(t *testing.T) {
	got := ChecksTrailer([]v1alpha1.CheckState{
		{Name: "a", Passed: 1, Last: "1"},
		{Name: "b", Failed: 1, Passed: 3, Last: "2"},
		{Name: "c", Inconclusive: 1, Last: "NaN"},
		{Name: "d", Inconclusive: 1, Passed: 1, Last: "4"},
	})
	if want := "a=1 pass, b=2 fail, c=NaN inconclusive, d=4 pass"; got != want {
		t.Errorf("trailer %q, want %q", got, want)
	}
}

func TestInstallCommitsOnceAndFollowsTheHead(t *testing.T) {
	r := release(t, canarySteps, "")
	in := Input{Spec: r, HeadRevision: canaryRev, HeadDigest: "c", Replicas: 2, Now: t0}
	p := Next(in)
	if !p.Commit || p.Status.Phase != v1alpha1.PhaseProgressing || p.Status.Canary.Digest != "c" || p.Stable != StableFromHead {
		t.Fatalf("first install pass: %+v", p)
	}
	// Waiting for the pods: no second commit.
	in.Status, in.Now = p.Status, t0.Add(time.Second)
	if p2 := Next(in); p2.Commit || p2.WakeAt.IsZero() {
		t.Fatalf("second install pass committed or did not wake: %+v", p2)
	}
	// A new head while installing: installing that one, committed.
	in.HeadRevision, in.HeadDigest = newerRev, "n"
	if p3 := Next(in); !p3.Commit || p3.Status.Canary.Digest != "n" {
		t.Fatalf("a new head during the install: %+v", p3)
	}
	// Ready: installed.
	in.HeadRevision, in.HeadDigest = canaryRev, "c"
	in.Observed = Observed{StableDigest: "c", StableReady: true}
	if p4 := Next(in); p4.Status.Phase != v1alpha1.PhaseSucceeded || p4.Status.Stable.Digest != "c" {
		t.Fatalf("install done: %+v", p4.Status)
	}
	// A previous install that failed over is not "installing this head".
	failed := p.Status
	failed.Phase = v1alpha1.PhaseFailed
	in.Status, in.Observed = failed, Observed{}
	if p5 := Next(in); !p5.Commit || p5.Status.Phase != v1alpha1.PhaseProgressing {
		t.Fatalf("install after a failed phase: %+v", p5)
	}
}

func TestAbortReasonAndDeadline(t *testing.T) {
	noReason := release(t, canarySteps, "  abort: {revision: 2222222}\n")
	if p := Next(input(noReason, inflight(1, 5, v1alpha1.PhasePaused, 0), time.Second)); p.Status.Message != "aborted: aborted by request" {
		t.Errorf("abort message %q", p.Status.Message)
	}
	withReason := release(t, canarySteps, "  abort: {revision: 2222222, reason: latency}\n")
	if p := Next(input(withReason, inflight(1, 5, v1alpha1.PhasePaused, 0), time.Second)); p.Status.Message != "aborted: latency" {
		t.Errorf("abort message %q", p.Status.Message)
	}
	r := release(t, canarySteps, "")
	in := input(r, inflight(0, 0, v1alpha1.PhaseProgressing, 0), ProgressDeadline)
	in.Observed.CanaryReady = false
	if p := Next(in); p.Status.Phase == v1alpha1.PhaseAborted {
		t.Error("aborted exactly at the deadline")
	}
	in.Now = in.Now.Add(time.Nanosecond)
	if p := Next(in); p.Status.Phase != v1alpha1.PhaseAborted {
		t.Error("not aborted past the deadline")
	}
}

func TestPromoteRequestNeedsCleanChecks(t *testing.T) {
	r := release(t, canarySteps, "  promote: {revision: 2222222}\n")
	clean := inflight(2, 5, v1alpha1.PhaseProgressing, 0)
	clean.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 1, Failed: 0}}
	if p := Next(input(r, clean, time.Second)); p.Status.Phase != v1alpha1.PhasePromoting {
		t.Errorf("clean checks: %s", p.Status.Phase)
	}
	dirty := clean
	dirty.Checks = []v1alpha1.CheckState{{Name: "ok", Passed: 1, Failed: 1}}
	if p := Next(input(r, dirty, time.Second)); p.Status.Phase == v1alpha1.PhasePromoting {
		t.Error("promoted with a failed check and no force")
	}
}

func TestRollingKeepsAnotherAbortedVersion(t *testing.T) {
	r := release(t, "    rolling: {}", "")
	st := v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseRolledBack, Stable: rev(stableRev, "s"), AbortedDigest: "x", AbortedRevision: "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
	in := Input{Spec: r, HeadRevision: newerRev, HeadDigest: "n", Replicas: 1, Status: st, Observed: Observed{StableDigest: "s", StableReady: true}, Now: t0}
	p := Next(in)
	if p.Status.Canary == nil || p.Status.AbortedDigest != "x" {
		t.Errorf("a new version forgot the aborted one: %+v", p.Status)
	}
}

func TestRememberPromotedHasNoDuplicates(t *testing.T) {
	r := release(t, canarySteps, "")
	st := inflight(8, 100, v1alpha1.PhasePromoting, 0)
	st.Promoted = []v1alpha1.Revision{*rev("0000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "s0"), *rev(stableRev, "s")}
	in := input(r, st, v1alpha1.DefaultScaleDownDelay+time.Second)
	in.Observed.StableDigest = "c"
	p := Next(in)
	var got []string
	for _, pr := range p.Status.Promoted {
		got = append(got, pr.Digest)
	}
	if strings.Join(got, ",") != "s,s0" {
		t.Errorf("window %v, want [s s0]", got)
	}
}

func TestRouteShapeFollowsTheStepsDone(t *testing.T) {
	r := release(t, canarySteps, "")
	// Step 1 (after setWeight 5): no header route (step 3) and no mirror
	// (step 4) yet.
	p := Current(input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), 0))
	if len(p.Route.HeaderRoutes) != 0 || p.Route.MirrorPercent != 0 || p.Route.Weight != 5 {
		t.Errorf("route at step 1: %+v", p.Route)
	}
	p = Current(input(r, inflight(5, 5, v1alpha1.PhaseProgressing, 0), 0))
	if len(p.Route.HeaderRoutes) != 1 || p.Route.MirrorPercent != 20 {
		t.Errorf("route at step 5: %+v", p.Route)
	}
}

func TestCanaryScaleFollowsTheStepsDone(t *testing.T) {
	r := release(t, "    canary: {steps: [{setWeight: 10}, {setCanaryScale: {replicas: 1}}, {setWeight: 50}, {setCanaryScale: {percent: 50}}, {setWeight: 60}]}", "")
	for _, tc := range []struct {
		step int32
		want int32
	}{{0, 4}, {1, 4}, {2, 1}, {3, 1}, {4, 2}} {
		in := input(r, inflight(tc.step, 10, v1alpha1.PhaseProgressing, 0), 0)
		if p := Current(in); p.CanaryReplicas != tc.want {
			t.Errorf("step %d: canary replicas %d, want %d", tc.step, p.CanaryReplicas, tc.want)
		}
	}
}

func TestCeilShare(t *testing.T) {
	for _, tc := range []struct{ n, pct, want int32 }{{3, 0, 0}, {1, 1, 1}, {4, 50, 2}, {3, 10, 1}, {10, 100, 10}, {0, 50, 1}} {
		if got := ceilShare(tc.n, tc.pct); got != tc.want {
			t.Errorf("ceilShare(%d, %d) = %d, want %d", tc.n, tc.pct, got, tc.want)
		}
	}
}

func TestObjectsCarryTheTransformedRoute(t *testing.T) {
	r := release(t, canarySteps, "")
	head, stable := renderApp(t, r, "app:head"), renderApp(t, r, "app:stable")
	st := inflight(1, 30, v1alpha1.PhasePaused, 0)
	p := Current(input(r, st, 0))
	objs, err := Objects(r, head, stable, p, "h")
	if err != nil {
		t.Fatal(err)
	}
	routes, services := 0, 0
	for _, o := range objs {
		switch o.GetKind() {
		case "HTTPRoute":
			routes++
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			refs, _, _ := unstructured.NestedSlice(rules[1].(map[string]any), "backendRefs") // the rule naming app
			if len(refs) != 2 || refs[1].(map[string]any)["weight"] != int64(30) {
				t.Errorf("route not transformed: %v", refs)
			}
		case "Service":
			services++
		}
	}
	if routes != 1 || services != 2 {
		t.Errorf("%d routes and %d services, want 1 and 2 (stable, canary)", routes, services)
	}
}

func TestTransformRouteKeepsOtherFilters(t *testing.T) {
	route := routeObj(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: shop}
spec:
  rules:
  - backendRefs: [{name: app, port: 80}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}]}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: app-canary, port: 80}, percent: 10}}
`)
	out, err := TransformRoute(route, "shop", "app", RouteState{Canary: true, Weight: 10, HeaderRoutes: []v1alpha1.HeaderRoute{{Name: "q", Match: v1alpha1.RouteMatch{QueryParams: []v1alpha1.HeaderMatch{{Name: "canary", Value: "1"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(out.Object, "spec", "rules")
	main := rules[1].(map[string]any)
	filters := main["filters"].([]any)
	if len(filters) != 1 || filters[0].(map[string]any)["type"] != "RequestHeaderModifier" {
		t.Errorf("filters %v: the user's filter must stay, the old canary mirror go", filters)
	}
	match := rules[0].(map[string]any)["matches"].([]any)[0].(map[string]any)
	if _, ok := match["headers"]; ok {
		t.Errorf("a query-only header route got a headers match: %v", match)
	}
}

// objYAML decodes an object as the renderer does (through JSON, so
// numbers are int64).
func objYAML(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCanaryAutoscaler(t *testing.T) {
	hpa := objYAML(t, `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: app, namespace: shop, resourceVersion: "7", uid: x}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  minReplicas: 2
  maxReplicas: 5
`)
	for _, tc := range []struct {
		replicas, wantMin, wantMax int64
	}{{3, 3, 5}, {8, 8, 8}, {0, 1, 5}, {5, 5, 5}} {
		c, err := CanaryAutoscaler(hpa, int32(tc.replicas))
		if err != nil {
			t.Fatal(err)
		}
		target, _, _ := unstructured.NestedString(c.Object, "spec", "scaleTargetRef", "name")
		minR, _, _ := unstructured.NestedInt64(c.Object, "spec", "minReplicas")
		maxR, _, _ := unstructured.NestedInt64(c.Object, "spec", "maxReplicas")
		if c.GetName() != "app-canary" || target != "app-canary" || minR != tc.wantMin || maxR != tc.wantMax ||
			c.GetLabels()[TrackLabel] != TrackCanary || c.GetResourceVersion() != "" {
			t.Errorf("replicas %d: %s → %s min %d max %d labels %v rv %q", tc.replicas, c.GetName(), target, minR, maxR, c.GetLabels(), c.GetResourceVersion())
		}
	}
	if name, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "name"); name != "app" || hpa.GetName() != "app" {
		t.Error("the user's HPA was changed")
	}
}

func TestSizeFollowsTheAutoscaler(t *testing.T) {
	r := release(t, canarySteps, "")
	head := renderApp(t, r, "app:head") // replicas: 3, no HPA
	if got := Size(head, Observed{StableReplicas: 7}); got != 3 {
		t.Errorf("without an HPA the size is Git's: %d", got)
	}
	scaled := *head
	scaled.Autoscaler = routeObj(t, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: app}\n")
	if got := Size(&scaled, Observed{StableReplicas: 7}); got != 7 {
		t.Errorf("with an HPA the size is the live one: %d", got)
	}
	if got := Size(&scaled, Observed{}); got != 3 {
		t.Errorf("with an HPA and nothing live yet: %d", got)
	}
}

// With an HPA on the workload, replicas are left out of the stable and
// canary workloads (the HPAs own them); without one they are applied.
func TestReplicasLeftToTheAutoscaler(t *testing.T) {
	r := release(t, canarySteps, "")
	head, stable := renderApp(t, r, "app:head"), renderApp(t, r, "app:stable")
	p := Current(input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), 0))
	has := func(objs []*unstructured.Unstructured, name string) bool {
		for _, o := range objs {
			if o.GetKind() == "Deployment" && o.GetName() == name {
				_, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
				return found
			}
		}
		t.Fatalf("no Deployment %s", name)
		return false
	}
	objs, err := Objects(r, head, stable, p, "h")
	if err != nil {
		t.Fatal(err)
	}
	if !has(objs, "app") || !has(objs, "app-canary") {
		t.Error("replicas left out with no autoscaler")
	}
	scaled := *head
	scaled.Autoscaler = objYAML(t, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: app}\nspec: {scaleTargetRef: {kind: Deployment, name: app}, maxReplicas: 5}\n")
	if objs, err = Objects(r, &scaled, stable, p, "h"); err != nil {
		t.Fatal(err)
	}
	if has(objs, "app") || has(objs, "app-canary") {
		t.Error("replicas applied over the autoscaler's")
	}
}

// Every object of a track carries its label where selection happens, and
// nothing else is labelled.
func TestTrackLabels(t *testing.T) {
	r := release(t, canarySteps, "")
	head, stable := renderApp(t, r, "app:head"), renderApp(t, r, "app:stable")
	objs, err := Objects(r, head, stable, Current(input(r, inflight(1, 5, v1alpha1.PhasePaused, 0), 0)), "h")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Deployment/app": TrackStable, "Deployment/app-canary": TrackCanary, "Service/app": TrackStable, "Service/app-canary": TrackCanary}
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		var paths [][]string
		switch o.GetKind() {
		case "Deployment":
			paths = [][]string{{"spec", "selector", "matchLabels"}, {"spec", "template", "metadata", "labels"}}
		case "Service":
			paths = [][]string{{"spec", "selector"}}
		default:
			if _, ok := o.GetLabels()[TrackLabel]; ok {
				t.Errorf("%s labelled", id)
			}
			continue
		}
		for _, p := range paths {
			m, _, _ := unstructured.NestedStringMap(o.Object, p...)
			if m[TrackLabel] != want[id] {
				t.Errorf("%s %v: track %q, want %q", id, p, m[TrackLabel], want[id])
			}
		}
	}
	// A Service with no selector gets one holding the track.
	svc := objYAML(t, "apiVersion: v1\nkind: Service\nmetadata: {name: app}\nspec: {ports: [{port: 80}]}\n")
	if err := addTrack(svc, TrackStable, "spec", "selector"); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector"); m[TrackLabel] != TrackStable {
		t.Errorf("selector %v", m)
	}
	// Only the named apps/v1 workload is the workload.
	for _, y := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		"apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: app}\n",
	} {
		if isWorkload(objYAML(t, y), &r.Spec) {
			t.Errorf("taken for the workload:\n%s", y)
		}
	}
}

// The workload's own progressDeadlineSeconds bounds the wait, whether or
// not the controller reports the deadline.
func TestWorkloadProgressDeadline(t *testing.T) {
	r := release(t, "    rolling: {}", "")
	st := v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseProgressing, Stable: rev(stableRev, "s"), Canary: rev(canaryRev, "c"), StepStartedAt: at(0)}
	in := Input{Spec: r, HeadRevision: canaryRev, HeadDigest: "c", Replicas: 3, Status: st, Observed: Observed{StableDigest: "c"}, Now: t0.Add(4 * time.Second), ProgressDeadline: 3 * time.Second}
	if p := Next(in); p.Status.Phase != v1alpha1.PhaseRolledBack {
		t.Errorf("rolling past its 3 s deadline: %s", p.Status.Phase)
	}
	in.ProgressDeadline = 0
	if p := Next(in); p.Status.Phase == v1alpha1.PhaseRolledBack {
		t.Error("rolled back after 4 s with the default 10 min deadline")
	}
	c := release(t, canarySteps, "")
	cin := input(c, inflight(0, 0, v1alpha1.PhaseProgressing, 0), 4*time.Second)
	cin.Observed.CanaryReady, cin.ProgressDeadline = false, 3*time.Second
	if p := Next(cin); p.Status.Phase != v1alpha1.PhaseAborted {
		t.Errorf("canary past its 3 s deadline: %s", p.Status.Phase)
	}
}
