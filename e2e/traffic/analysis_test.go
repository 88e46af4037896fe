package traffic

import (
	"context"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/loadgen"
	"github.com/sluice-dev/sluice/internal/promtest"
)

// latencyJudge is a compare check on mean latency per track.
func latencyJudge(prom string) string { return judgeCheck(prom, latencyMetric) }

// TestBaselineTrack: with analysis.baseline the stable version also runs
// as <app>-baseline at the canary's size, taking the canary's share out
// of the stable's (20/20/60 at setWeight 20); the compare judge measures
// the canary against it and stops a version 50 ms slower, and the
// baseline goes with the canary.
func TestBaselineTrack(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t, cluster.Gateway.MetricsTarget)
	s := newStory(t, appFiles(release(`    scaleDownDelay: 0s
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 5m}
      - setWeight: 100
`, latencyJudge(prom.URL)+"  analysis: {baseline: true, checks: [judge]}\n")))
	s.env["6.6.4"] = `[{name: LATENCY, value: 50ms}]`
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	stop := s.load(50)
	s.bump("6.7.0", "6.6.4")
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Step == 1 || st.Phase == v1alpha1.PhaseAborted })
	weights, _ := kubectl("get", "httproute", "-n", s.ns, "app", "-o", `jsonpath={range .spec.rules[*].backendRefs[*]}{.name}={.weight} {end}`)
	if strings.TrimSpace(weights) != "app=60 app-canary=20 app-baseline=20" {
		t.Errorf("route at setWeight 20 with a baseline: %q, want app=60 app-canary=20 app-baseline=20", weights)
	}
	image, _ := kubectl("get", "deployment", "-n", s.ns, "app-baseline", "-o", `jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}`)
	if image != "4 ghcr.io/sluice-dev/podinfo:6.7.0" {
		t.Errorf("baseline Deployment: %q, want the stable version at the canary's size (4 ghcr.io/sluice-dev/podinfo:6.7.0)", image)
	}
	st := s.waitStatus(id, 3*time.Minute, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseAborted || st.Weight > 20 })
	time.Sleep(3 * time.Second)
	recs := stop()
	if st.Phase != v1alpha1.PhaseAborted || !strings.Contains(st.Message, "latency High") || !strings.Contains(st.Message, "against the baseline track") {
		t.Fatalf("a version 50 ms slower was not stopped against the baseline: %s %q", st.Phase, st.Message)
	}
	bad := loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Version == "6.6.4" })
	t.Logf("stopped after %d requests to the slow version: %s", len(bad), st.Message)
	// The baseline Service answered its share, counted by the data plane.
	c, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(context.Background(), `sum(increase(traefik_service_requests_total{service=~"`+s.ns+`-app-baseline-http-.*"}[10m]))`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value < 50 {
		t.Errorf("requests answered by the baseline track: %v", v)
	}
	// And it goes with the canary.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := kubectl("get", "deployment,service", "-n", s.ns, "app-baseline", "--ignore-not-found", "-o", "name")
		if err == nil && strings.TrimSpace(out) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the baseline track is still there 30 s after the abort: %s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// parallelRoute is a route of the app's own (not the release's traffic
// route) sending shadow.HOST to the canary Service: the parallel run's
// second copy of the requests, where the Gateway cannot mirror.
const parallelRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app-parallel}
spec:
  parentRefs: [{name: public, namespace: gateway-system}]
  hostnames: [shadow.HOST]
  rules:
  - backendRefs: [{name: app-canary, port: 80}]
`

// TestParallelRun: the compare judge on the same requests sent to both
// versions (seed 002's parallel run). Traefik cannot mirror through the
// Gateway API, so the load generator sends each request stream twice —
// to the stable version through the release's route, and to the canary,
// which serves no user (weight 0), through a second host. A version
// behaving like the stable one passes three judgements and is promoted;
// one 50 ms slower is stopped before any user request reached it.
func TestParallelRun(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t, cluster.Gateway.MetricsTarget)
	// A 5 s drain: the canary track is reused by the next version, and
	// Traefik applies a route change up to 2 s after it reports it taken.
	files := appFiles(release(`    scaleDownDelay: 5s
    canary:
      steps:
      - check: [judge]
      - setWeight: 100
`, latencyJudge(prom.URL)+"    count: 3\n"))
	files["releases/NAMESPACE/app/parallel.yaml"] = parallelRoute
	files["releases/NAMESPACE/app/kustomization.yaml"] = strings.Replace(files["releases/NAMESPACE/app/kustomization.yaml"], "route.yaml]", "route.yaml, parallel.yaml]", 1)
	s := newStory(t, files)
	s.env["6.6.7"] = `[{name: LATENCY, value: 50ms}]`
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	users := s.load(40)
	for _, c := range []struct {
		from, to string
		bad      bool
	}{{"6.7.0", "6.7.1", false}, {"6.7.1", "6.6.7", true}} {
		rev := s.bump(c.from, c.to)
		s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Canary != nil && st.Canary.Revision == rev })
		waitOK(t, "shadow."+s.host)
		parallel := s.loadOn("shadow."+s.host, 40)
		st := s.waitStatus(id, 3*time.Minute, func(st v1alpha1.ReleaseStatus) bool {
			return st.Phase == v1alpha1.PhaseAborted || st.Phase == v1alpha1.PhaseSucceeded
		})
		copies := parallel()
		if n := len(loadgen.Filter(copies, func(r loadgen.Record) bool { return r.Version == c.to })); n < 100 {
			t.Fatalf("%s: the canary answered %d parallel requests; the judge saw too little to mean anything", c.to, n)
		}
		switch {
		case c.bad && (st.Phase != v1alpha1.PhaseAborted || !strings.Contains(st.Message, "latency High")):
			t.Fatalf("%s, 50 ms slower on the same requests, was not stopped: %s %q", c.to, st.Phase, st.Message)
		case !c.bad && st.Phase != v1alpha1.PhaseSucceeded:
			t.Fatalf("%s, the same behaviour on the same requests, was stopped: %q", c.to, st.Message)
		}
		t.Logf("%s: %s %s\n%s", c.to, st.Phase, st.Message, gitserver.Git(t, s.repo.Bare, "log", "-3", "--format=%s%n%b", "sluice/status"))
	}
	hist := gitserver.Git(t, s.repo.Bare, "log", "--format=%s%n%b", "sluice/status")
	if !strings.Contains(hist, "checks passed: judge=score 100 pass") {
		t.Errorf("the good version was not judged a pass on the same requests:\n%s", hist)
	}
	recs := users()
	if n := len(loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Version == "6.6.7" })); n != 0 {
		t.Errorf("%d user requests reached the slow version during its parallel run", n)
	}
}
