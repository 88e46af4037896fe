//go:build !mutation

package strategy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/promtest"
)

// TestPrometheusChecks queries a real Prometheus scraping a real process
// whose canary service starts failing.
func TestPrometheusChecks(t *testing.T) {
	app := promtest.StartApp(t, "app", "app-canary")
	prom := promtest.Start(t, app.Addr)
	app.Serve("app", 100)
	app.Serve("app-canary", 100)

	check := func(query, cond string) *v1alpha1.Check {
		return &v1alpha1.Check{Name: "success-rate", SuccessCondition: cond,
			Prometheus: &v1alpha1.PrometheusCheck{Address: prom.URL, Query: query}}
	}
	rate := `sum(http_requests_total{service="{{.Canary.Service}}",code!~"5.."}) / sum(http_requests_total{service="{{.Canary.Service}}"})`
	r := release(t, canarySteps, "")
	cc := NewCheckContext(r, &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c")})
	var runner Runner
	ctx := context.Background()

	// Wait until the first scrape has landed.
	deadline := time.Now().Add(20 * time.Second)
	var m Measurement
	for time.Now().Before(deadline) {
		if m = runner.Run(ctx, check(rate, ">= 0.99"), cc); m.Outcome != Inconclusive {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m.Outcome != Pass || m.Value != "1" {
		t.Fatalf("healthy canary: %+v", m)
	}

	// The canary starts failing half of its requests.
	app.SetErrorPercent("app-canary", 50)
	app.Serve("app-canary", 200) // canary now 100 ok + 100 ok + 100 failed = 200/300
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m = runner.Run(ctx, check(rate, ">= 0.99"), cc); m.Outcome == Fail {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m.Outcome != Fail || !strings.HasPrefix(m.Value, "0.66") {
		t.Fatalf("failing canary: %+v", m)
	}

	tests := []struct {
		name  string
		query string
		cond  string
		want  Outcome
		value string
	}{
		{"scalar below a limit", `scalar(sum(http_requests_total{service="app",code="500"}))`, "< 1", Pass, "0"},
		{"empty result is inconclusive", `http_requests_total{service="nope"}`, ">= 1", Inconclusive, "empty result"},
		{"several series are inconclusive", `http_requests_total{service="app"}`, ">= 1", Inconclusive, "2 series; the query must return one"},
		{"NaN is inconclusive", `scalar(vector(0)) / 0 - scalar(vector(0)) / 0`, ">= 1", Inconclusive, "NaN"},
		{"bad PromQL is inconclusive", `sum(`, ">= 1", Inconclusive, ""},
		{"template sees the stable service", `sum(http_requests_total{service="{{.Stable.Service}}"})`, "== 100", Pass, "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := runner.Run(ctx, check(tt.query, tt.cond), cc)
			if m.Outcome != tt.want || (tt.value != "" && m.Value != tt.value) {
				t.Errorf("got %+v, want %s %q", m, tt.want, tt.value)
			}
		})
	}
	// With a count of the samples the value rests on: too few is no verdict.
	count := `sum(http_requests_total{service="{{.Canary.Service}}"})`
	for _, tt := range []struct {
		min   *int32
		want  Outcome
		value string
	}{
		{ptr(int32(1000)), Fail, "0.6667 on 300 samples (0.9 at best on 1000)"}, // already certain to fail
		{ptr(int32(400)), Fail, "0.6667 on 300 samples (0.75 at best on 400)"},
		{ptr(int32(100000)), TooFew, "0.6667 on 300 samples, fewer than 100000"}, // 0.999 at best: could still pass
		{nil, Fail, "0.6667"}, // the default for ">= 0.99" is 299
		{ptr(int32(100)), Fail, "0.6667"},
	} {
		c := check(rate, ">= 0.99")
		c.Prometheus.CountQuery, c.MinSamples = count, tt.min
		if m := runner.Run(ctx, c, cc); m.Outcome != tt.want || m.Value != tt.value {
			t.Errorf("minSamples %v: got %+v, want %s %q", tt.min, m, tt.want, tt.value)
		}
	}
	// No series yet is no data, so too few samples, not inconclusive.
	none := check(`sum(http_requests_total{service="nope"})`, ">= 0.99")
	none.Prometheus.CountQuery = `sum(http_requests_total{service="nope"})`
	if m := runner.Run(ctx, none, cc); m.Outcome != TooFew || m.Value != "empty result on 0 samples, fewer than 299" {
		t.Errorf("no series yet: %+v", m)
	}
	unreachable := check(rate, ">= 0.99")
	unreachable.Prometheus.Address = "http://127.0.0.1:1"
	if m := runner.Run(ctx, unreachable, cc); m.Outcome != Inconclusive || !strings.Contains(m.Value, "query failed") {
		t.Errorf("unreachable Prometheus: %+v", m)
	}
}

func TestWebhookChecks(t *testing.T) {
	var got CheckContext
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	r := release(t, canarySteps, "")
	cc := NewCheckContext(r, &v1alpha1.ReleaseStatus{Canary: rev(canaryRev, "c"), Step: 3})
	hook := func(path string, timeout time.Duration) *v1alpha1.Check {
		return &v1alpha1.Check{Name: "smoke", Webhook: &v1alpha1.WebhookCheck{URL: srv.URL + path, Timeout: &v1alpha1.Duration{Duration: timeout}}}
	}
	var runner Runner
	ctx := context.Background()
	if m := runner.Run(ctx, hook("/ok", time.Second), cc); m.Outcome != Pass || m.Value != "204" {
		t.Errorf("2xx: %+v", m)
	}
	if got.Release != "shop/app" || got.Revision != canaryRev || got.Step != 3 || got.Check != "smoke" || got.Canary.Service != "app-canary" {
		t.Errorf("webhook body = %+v", got)
	}
	if m := runner.Run(ctx, hook("/fail", time.Second), cc); m.Outcome != Fail || m.Value != "503" {
		t.Errorf("5xx: %+v", m)
	}
	if m := runner.Run(ctx, hook("/slow", 50*time.Millisecond), cc); m.Outcome != Fail || !strings.Contains(m.Value, "timeout") {
		t.Errorf("timeout: %+v", m)
	}
}

func ptr[T any](v T) *T { return &v }
