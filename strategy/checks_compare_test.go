//go:build !mutation

package strategy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/promtest"
)

// TestCompareCheck judges canary against stable on a real Prometheus
// scraping a process whose two services answer: alike, the canary passes;
// once the canary fails a fifth of its requests, it fails; with no
// samples yet, it is no verdict.
func TestCompareCheck(t *testing.T) {
	app := promtest.StartApp(t, "app", "app-canary")
	prom := promtest.Start(t, app.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			app.Serve("app", 20)
			app.Serve("app-canary", 20)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	window := v1alpha1.Duration{Duration: 8 * time.Second}
	step := v1alpha1.Duration{Duration: 500 * time.Millisecond}
	check := &v1alpha1.Check{Name: "compare", Compare: &v1alpha1.CompareCheck{Address: prom.URL, Window: &window, Step: &step,
		Metrics: []v1alpha1.CompareMetric{{Name: "errors", Direction: "increase", Tolerance: 0.01,
			Query: `sum(rate(http_requests_total{service="{{.Service}}",code="500"}[2s])) / sum(rate(http_requests_total{service="{{.Service}}"}[2s]))`}}}}
	r := release(t, canarySteps, "")
	cc := NewCheckContext(r, &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c")})
	var runner Runner

	// Before any scrape: no samples, no verdict.
	none := *check
	none.Compare = &v1alpha1.CompareCheck{Address: prom.URL, Window: &window, Step: &step,
		Metrics: []v1alpha1.CompareMetric{{Name: "nothing", Direction: "increase", Query: `sum(rate(nothing_total{service="{{.Service}}"}[2s]))`}}}
	if m := runner.Run(ctx, &none, cc); m.Outcome != TooFew || !strings.Contains(m.Value, "nothing NoData (n=0/0)") {
		t.Fatalf("no samples: %+v", m)
	}
	measure := func(want Outcome, within time.Duration) Measurement {
		t.Helper()
		deadline := time.Now().Add(within)
		var m Measurement
		for time.Now().Before(deadline) {
			if m = runner.Run(ctx, check, cc); m.Outcome == want {
				return m
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Fatalf("want %s within %s, last %+v", want, within, m)
		return m
	}
	m := measure(Pass, 20*time.Second)
	t.Logf("alike: %s", m.Value)
	app.SetErrorPercent("app-canary", 20)
	m = measure(Fail, 20*time.Second)
	if !strings.Contains(m.Value, "errors High") || !strings.HasPrefix(m.Value, "score 0 fail") {
		t.Errorf("failing canary: %s", m.Value)
	}
	// The judgement is kept whole for the status, metric by metric.
	if c := m.Compare; c == nil || c.Score != 0 || c.Verdict != "fail" || c.Against != "stable" || len(c.Metrics) != 1 ||
		c.Metrics[0].Verdict != "High" || c.Metrics[0].P >= 0.05 || c.Metrics[0].CanaryMedian <= c.Metrics[0].BaselineMedian || c.Metrics[0].CanarySamples < 8 {
		t.Errorf("structured judgement: %+v", m.Compare)
	}
	st := v1alpha1.ReleaseStatus{}
	(checkRun{d: &decision{in: Input{Results: []Measurement{m}}}, states: &st.Checks}).record([]string{"compare"})
	if len(st.Checks) != 1 || st.Checks[0].Compare != m.Compare {
		t.Errorf("status check state: %+v", st.Checks)
	}
	t.Logf("canary failing 20%%: %s", m.Value)
}
