package traffic

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/loadgen"
	"github.com/sluice-dev/sluice/internal/promtest"
)

func release(strategy string, extra string) string {
	return `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: NAMESPACE}
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
` + strategy + extra
}

// TestBlueGreenSwitch: the new version runs at full size with no traffic
// (a preview header reaches it), then one switch moves every request at
// once, and no request fails during the switch, the promotion or the
// drain of the track traffic left.
func TestBlueGreenSwitch(t *testing.T) {
	t.Parallel()
	s := newStory(t, appFiles(release(`    scaleDownDelay: 5s
    blueGreen:
      previewMatch: {headers: [{name: X-Preview, value: "true"}]}
      gate: promote
`, "")))
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	preview := loadgen.Profile{Name: "preview", Share: 0.1, Headers: map[string]string{"X-Preview": "true"}}
	stop := s.load(100, preview)
	time.Sleep(3 * time.Second)
	bump := s.bump("6.7.0", "6.7.1")
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhasePaused })
	time.Sleep(6 * time.Second) // previewing, through the data plane
	approved := time.Now()
	s.approve("promote", bump)
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhasePromoting })
	switched := time.Now()
	s.waitStatus(id, 120*time.Second, func(st v1alpha1.ReleaseStatus) bool {
		return st.Phase == v1alpha1.PhaseSucceeded && st.Stable != nil && st.Canary == nil && st.DrainUntil != nil
	})
	promoted := time.Now()
	time.Sleep(10 * time.Second) // past the drain and the data plane's lag
	recs := stop()

	users := loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Profile == "default" })
	previews := loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Profile == "preview" })
	// The switch: the last user request answered by 6.7.0 and the first by
	// 6.7.1, and how many of each came in between.
	var lastOld, firstNew time.Time
	for _, r := range users {
		if r.Version == "6.7.0" {
			lastOld = r.At
		}
		if r.Version == "6.7.1" && firstNew.IsZero() {
			firstNew = r.At
		}
	}
	mixed := loadgen.Between(users, firstNew, lastOld.Add(time.Nanosecond))
	t.Logf("switch: first user request on 6.7.1 at %s, last on 6.7.0 at %s (%d requests in between)", firstNew.Format("15:04:05.000"), lastOld.Format("15:04:05.000"), len(mixed))
	if firstNew.IsZero() || lastOld.Sub(firstNew) > 500*time.Millisecond {
		t.Errorf("the switch was not at once: versions mixed for %s", lastOld.Sub(firstNew))
	}
	if first, ok := firstFrom(previews, time.Time{}, "6.7.1"); !ok || !first.Before(firstNew.Add(-time.Second)) {
		t.Errorf("the preview header did not reach the new version before the switch (first preview answer from it at %s)", first.Format("15:04:05.000"))
	}
	if share, n := loadgen.Share(loadgen.Between(previews, firstNew.Add(-time.Second), firstNew), "6.7.1"); share != 1 || n == 0 {
		t.Errorf("while previewing, 6.7.1 answered %.2f of %d preview requests, want all", share, n)
	}
	noFailures(t, "blue-green", recs, map[string]time.Time{"approved": approved, "switched": switched, "promoted": promoted})
}

// exampleCheck is the canary example's success-rate check on Traefik's
// per-Service counter (its query and its count of samples), the window
// shortened to the story's: the check users copy is the one proven here on
// real metrics.
func exampleCheck(t testing.TB, window string) (query, count string) {
	b, err := os.ReadFile("../../examples/releases/demo/canary/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := v1alpha1.ParseRelease("release.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	flat := func(q string) string {
		return strings.ReplaceAll(strings.Join(strings.Fields(q), " "), "[1m]", "["+window+"]")
	}
	for _, c := range p.Release.Spec.Checks {
		if c.Name == "success-rate" && c.Prometheus != nil && c.Prometheus.CountQuery != "" {
			return flat(c.Prometheus.Query), flat(c.Prometheus.CountQuery)
		}
	}
	t.Fatal("the canary example has no success-rate check on Prometheus with a countQuery")
	return "", ""
}

// successRateCheck is the check of the stories below.
func successRateCheck(t *testing.T, prom, window, extra string) string {
	query, count := exampleCheck(t, window)
	return fmt.Sprintf(`  checks:
  - name: success-rate
    prometheus:
      address: %s
      query: '%s'
      countQuery: '%s'
%s`, prom, query, count, extra)
}

// badCanary is a story's outcome: a version failing at a rate was pushed
// under load, with a canary (setWeight 10, the check, setWeight 50) whose
// success-rate check is the example's; it ends when the canary is aborted
// or has moved past 10%.
type badCanary struct {
	s               *story
	status          v1alpha1.ReleaseStatus
	recs            []loadgen.Record
	pushed, aborted time.Time
}

// runBadCanary runs it: version fails errorRate of its requests, under
// rate requests/s; window and check are the check's query window and
// settings; after waits that long past the abort before the load stops.
func runBadCanary(t *testing.T, version, errorRate string, rate float64, window, check string, after time.Duration) badCanary {
	prom := promtest.Start(t, cluster.Gateway.MetricsTarget)
	s := newStory(t, appFiles(release(`    scaleDownDelay: 5s
    canary:
      steps:
      - setWeight: 10
      - check: [success-rate]
      - setWeight: 50
`, successRateCheck(t, prom.URL, window, check))))
	s.env[version] = `[{name: ERROR_RATE, value: "` + errorRate + `"}]`
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	stop := s.load(rate)
	time.Sleep(3 * time.Second)
	b := badCanary{s: s, pushed: time.Now()}
	s.bump("6.7.0", version)
	b.status = s.waitStatus(id, 150*time.Second, func(st v1alpha1.ReleaseStatus) bool {
		return st.Phase == v1alpha1.PhaseAborted || st.Weight > 10
	})
	b.aborted = time.Now()
	time.Sleep(after)
	b.recs = stop()
	return b
}

// TestBadVersionIsAborted: a version failing half of its requests gets
// 10% of 50 requests/s; the success-rate check on Traefik's own metrics
// fails, the canary is aborted, and traffic returns to the stable version
// with no failure other than the bad version's own answers.
func TestBadVersionIsAborted(t *testing.T) {
	t.Parallel()
	b := runBadCanary(t, "6.6.6", "0.5", 50, "5s", `    successCondition: ">= 0.95"
    interval: 2s
    count: 10
    failureLimit: 0
    inconclusiveLimit: 5
`, 10*time.Second)
	st, recs, aborted := b.status, b.recs, b.aborted
	if st.Phase != v1alpha1.PhaseAborted {
		t.Fatalf("a version failing half its requests was not aborted at 10%%: %s %q", st.Phase, st.Message)
	}
	if !strings.Contains(st.Message, "success-rate") {
		t.Errorf("abort message: %s", st.Message)
	}
	bad := loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Version == "6.6.6" })
	badFailed := loadgen.Failed(bad)
	report.bad(len(bad))
	t.Logf("the bad version answered %d requests (%d of them 500) before traffic left it; aborted with %q", len(bad), badFailed, st.Message)
	if len(bad) == 0 || badFailed == 0 {
		t.Fatalf("the bad version answered %d requests, %d failed: the story proves nothing", len(bad), badFailed)
	}
	late := loadgen.Filter(loadgen.Between(recs, aborted.Add(3*time.Second), time.Now()), func(r loadgen.Record) bool { return r.Version != "6.7.0" })
	if len(late) > 0 {
		t.Errorf("%d requests not answered by 6.7.0 from 3 s after the abort", len(late))
	}
	others := loadgen.Failed(recs) - badFailed
	report.failures("abort", others)
	if others != 0 {
		t.Errorf("%d requests failed besides the bad version's own answers", others)
	}
}

// TestRevertTraffic: a canary at 40% waits at a gate; `git revert` of the
// bump sends every request back to the old version. Measured from the
// push to the last response from the new version.
func TestRevertTraffic(t *testing.T) {
	t.Parallel()
	s := newStory(t, appFiles(release(`    scaleDownDelay: 5s
    canary:
      steps:
      - setWeight: 40
      - pause: {gate: qa}
`, "")))
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	stop := s.load(100)
	time.Sleep(3 * time.Second)
	bump := s.bump("6.7.0", "6.7.1")
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhasePaused && st.Weight == 40 })
	time.Sleep(4 * time.Second) // the data plane carries the 40%
	gitserver.Git(t, s.repo.Work, "revert", "--no-edit", bump)
	s.repo.Push(t)
	pushed := time.Now()
	s.waitStatus(id, 30*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseRolledBack })
	time.Sleep(8 * time.Second)
	recs := stop()
	before := loadgen.Between(recs, pushed.Add(-3*time.Second), pushed)
	if share, _ := loadgen.Share(before, "6.7.1"); share < 0.2 {
		t.Fatalf("before the revert 6.7.1 answered only %.2f: the story proves nothing", share)
	}
	var last time.Time
	for _, r := range loadgen.Between(recs, pushed, time.Now()) {
		if r.Version == "6.7.1" {
			last = r.At
		}
	}
	took := last.Sub(pushed)
	report.reverted(took)
	t.Logf("revert->all-old: the last response from 6.7.1 came %s after the push of the revert", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("revert took %s to reach every request", took)
	}
	noFailures(t, "revert", recs, map[string]time.Time{"pushed": pushed})
}

// TestRollingAndRecreate: what users see during each. A rolling update
// (maxUnavailable 0, pods with a preStop sleep so the data plane stops
// sending them requests before they exit, as real pods should) fails no
// request; recreate stops every old pod before the new ones start, so
// users see a gap: measured, and asserted to exist. (kwok removes a
// deleted pod's object at once, so a preStop sleep would not hold
// Recreate back as a real cluster does; the recreate pods have none.)
func TestRollingAndRecreate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, strategy string }{
		{"rolling", "    rolling: {maxSurge: 1, maxUnavailable: 0}\n"},
		{"recreate", "    recreate: {}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := appFiles(release(tc.strategy, ""))
			files["releases/NAMESPACE/app/deployment.yaml"] = strings.Replace(files["releases/NAMESPACE/app/deployment.yaml"],
				"      containers:\n", "      terminationGracePeriodSeconds: 10\n      containers:\n", 1)
			if tc.name == "rolling" {
				// Recreate's old pods stop at once: that gap is what it means.
				files["releases/NAMESPACE/app/deployment.yaml"] = strings.Replace(files["releases/NAMESPACE/app/deployment.yaml"],
					"        ports:", "        lifecycle: {preStop: {sleep: {seconds: 3}}}\n        ports:", 1)
			}
			s := newStory(t, files)
			id := s.ns + "/app"
			s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
			stop := s.load(100)
			time.Sleep(2 * time.Second)
			pushed := time.Now()
			rev := s.bump("6.7.0", "6.7.1")
			s.waitStatus(id, 120*time.Second, func(st v1alpha1.ReleaseStatus) bool {
				return st.Phase == v1alpha1.PhaseSucceeded && st.Stable != nil && st.Stable.Revision == rev
			})
			time.Sleep(6 * time.Second)
			recs := stop()
			failed := loadgen.Failed(recs)
			after := loadgen.Between(recs, time.Now().Add(-3*time.Second), time.Now())
			if share, n := loadgen.Share(after, "6.7.1"); share != 1 || n == 0 {
				t.Errorf("after the rollout 6.7.1 answered %.2f of %d", share, n)
			}
			switch tc.name {
			case "rolling":
				noFailures(t, "rolling", recs, map[string]time.Time{"pushed": pushed})
			case "recreate":
				var first, last time.Time
				for _, r := range recs {
					if !r.OK() {
						if first.IsZero() {
							first = r.At
						}
						last = r.At
					}
				}
				t.Logf("recreate: %d requests, %d failed, a gap of %s with no version serving", len(recs), failed, last.Sub(first).Round(time.Millisecond))
				if failed == 0 {
					t.Errorf("recreate showed no gap: the story does not see what users see")
				}
			}
		})
	}
}

// TestShadowGuard: Traefik cannot mirror through the Gateway API (it
// accepts the filter, then answers 500 to every request on the rule: see
// TestGatewayFacts). Its GatewayClass leaves HTTPRouteRequestMirror out of
// status.supportedFeatures, so the shadow's setMirror step is refused
// before any filter is written: the canary is aborted with the reason, no
// request fails, and the route never carries a RequestMirror.
func TestShadowGuard(t *testing.T) {
	t.Parallel()
	s := newStory(t, appFiles(release(`    scaleDownDelay: 5s
    shadow: {percent: 20, duration: 10s}
`, "")))
	id := s.ns + "/app"
	s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	stop := s.load(50)
	mirrored := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		seen := false
		defer func() { mirrored <- seen }()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			out, _ := kubectl("get", "httproute", "-n", s.ns, "app", "-o", "jsonpath={.spec.rules[*].filters[*].type}")
			seen = seen || strings.Contains(out, "RequestMirror")
		}
	}()
	s.bump("6.7.0", "6.7.1")
	st := s.waitStatus(id, 90*time.Second, func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseAborted })
	time.Sleep(3 * time.Second)
	close(done)
	recs := stop()
	t.Logf("shadow on Traefik: %s", st.Message)
	if !strings.Contains(st.Message, "HTTPRouteRequestMirror") {
		t.Errorf("abort message does not say why: %s", st.Message)
	}
	if <-mirrored {
		t.Error("a RequestMirror filter reached the route")
	}
	noFailures(t, "shadow", recs, nil)
	if share, n := loadgen.Share(recs, "6.7.0"); share != 1 || n == 0 {
		t.Errorf("users reached the shadow version: 6.7.0 answered %.3f of %d", share, n)
	}
}

// TestFewRequestsNeverPass: a version failing 5% of its requests at 10%
// of 100 requests/s, under the canary example's success-rate check
// (">= 0.99", so at least 299 requests before a pass). Measurements on
// fewer requests are no verdict; a failure becomes certain after a few
// failed requests, and the canary is aborted without ever leaving 10%.
func TestFewRequestsNeverPass(t *testing.T) {
	t.Parallel()
	b := runBadCanary(t, "6.6.5", "0.05", 100, "30s", `    successCondition: ">= 0.99"
    interval: 2s
    count: 3
    samplesTimeout: 2m
`, 0)
	s, st, recs, pushed, aborted := b.s, b.status, b.recs, b.pushed, b.aborted
	if st.Phase != v1alpha1.PhaseAborted || !strings.Contains(st.Message, "success-rate failed") {
		t.Fatalf("a version failing 5%% was not stopped at 10%%: %s %q", st.Phase, st.Message)
	}
	bad := loadgen.Filter(recs, func(r loadgen.Record) bool { return r.Version == "6.6.5" })
	hist := gitserver.Git(t, s.repo.Bare, "log", "--format=%s", "sluice/status")
	if strings.Contains(hist, "checks passed") || strings.Contains(hist, "setWeight 50") {
		t.Errorf("the check passed or the canary moved on:\n%s", hist)
	}
	t.Logf("5%%-failing version aborted %.1fs after the push, after answering %d requests (%d failed): %q",
		aborted.Sub(pushed).Seconds(), len(bad), loadgen.Failed(bad), st.Message)
}
