package strategy

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"text/template"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/strategy/judge"
)

// TrackContext is what a compare metric's query sees for one track:
// {{.Track}} (stable or canary), {{.Service}} and {{.Workload}} of that
// track, {{.Namespace}} and {{.Release}}.
type TrackContext struct {
	Release   string
	Namespace string
	Track     string
	Service   string
	Workload  string
}

// Compare check defaults.
const (
	DefaultCompareWindow = time.Minute
	DefaultCompareStep   = 5 * time.Second
)

// compare measures a compare check: each metric's samples over the window
// for both tracks, judged (strategy/judge). A score at or above the pass
// threshold passes, below the marginal one fails, between them is
// inconclusive; a metric with too few samples on a track is no verdict.
func (r *Runner) compare(ctx context.Context, c *v1alpha1.Check, cc CheckContext) Measurement {
	m := Measurement{Check: c.Name, Outcome: Inconclusive}
	cmp := c.Compare
	window, step := DefaultCompareWindow, DefaultCompareStep
	if cmp.Window != nil {
		window = cmp.Window.Duration
	}
	if cmp.Step != nil {
		step = cmp.Step.Duration
	}
	api, err := r.promAPI(ctx, cmp.Address, cmp.Auth, cc.Namespace)
	if err != nil {
		m.Value = err.Error()
		return m
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	end := time.Now()
	rng := promv1.Range{Start: end.Add(-window), End: end, Step: step}
	tracks := []TrackContext{
		{Release: cc.Release, Namespace: cc.Namespace, Track: TrackStable, Service: cc.Stable.Service, Workload: cc.Stable.Workload},
		{Release: cc.Release, Namespace: cc.Namespace, Track: TrackCanary, Service: cc.Canary.Service, Workload: cc.Canary.Workload},
	}
	if b := cc.Baseline; b != nil {
		// Like with like: the stable version at the canary's size and
		// share, started with it.
		tracks[0] = TrackContext{Release: cc.Release, Namespace: cc.Namespace, Track: TrackBaseline, Service: b.Service, Workload: b.Workload}
	}
	var metrics []judge.Metric
	for _, mt := range cmp.Metrics {
		var samples [2][]float64
		// Samples of this version only: the Services keep their names
		// from one canary to the next, and each sample's own range
		// reaches back too.
		r := rng
		if first := firstSample(cc, lookback(mt.Query)); first.After(r.Start) {
			r.Start = first
		}
		for i, tc := range tracks {
			if !r.Start.Before(end) {
				break // no sample yet: NoData
			}
			v, why := series(ctx, api, mt, tc, r)
			if why != "" {
				m.Value = fmt.Sprintf("%s (%s): %s", mt.Name, tc.Track, why)
				return m
			}
			samples[i] = v
		}
		metrics = append(metrics, judge.Metric{Name: mt.Name, Baseline: samples[0], Canary: samples[1],
			Direction: judge.Direction(mt.Direction), Tolerance: mt.Tolerance})
	}
	cfg := judge.Config{}
	if c.MinSamples != nil {
		cfg.MinSamples = int(*c.MinSamples)
	}
	if cmp.Alpha != nil {
		cfg.Alpha = *cmp.Alpha
	}
	if cmp.Pass != nil {
		cfg.Pass = *cmp.Pass
	}
	if cmp.Marginal != nil {
		cfg.Marginal = *cmp.Marginal
	}
	res := judge.Judge(cfg, metrics)
	m.Value = res.String()
	m.Compare = &v1alpha1.CompareResult{Score: res.Score, Verdict: string(res.Verdict), Against: tracks[0].Track}
	for _, r := range res.Metrics {
		m.Compare.Metrics = append(m.Compare.Metrics, v1alpha1.MetricResult{Name: r.Name, Verdict: string(r.Class), U: r.U, P: r.P,
			CanaryMedian: r.Canary, BaselineMedian: r.Baseline, CanarySamples: int32(r.NCanary), BaselineSamples: int32(r.NBase)})
	}
	if cc.Baseline != nil {
		m.Value += " (against the baseline track)"
	}
	switch res.Verdict {
	case judge.VerdictPass:
		m.Outcome = Pass
	case judge.VerdictFail:
		m.Outcome = Fail
	case judge.VerdictInconclusive:
		m.Outcome = TooFew
	}
	return m
}

// series is one metric's values for one track over the range: the query
// must give at most one series (none is no samples); NaN values (0/0 when
// there was no traffic) are left out.
func series(ctx context.Context, api promv1.API, mt v1alpha1.CompareMetric, tc TrackContext, rng promv1.Range) ([]float64, string) {
	tmpl, err := template.New(mt.Name).Option("missingkey=error").Parse(mt.Query)
	if err != nil {
		return nil, "bad query template: " + err.Error()
	}
	var q bytes.Buffer
	if err := tmpl.Execute(&q, tc); err != nil {
		return nil, "query template: " + err.Error()
	}
	val, _, _, err := api.QueryRange(ctx, q.String(), rng)
	if err != nil {
		return nil, "query failed: " + err.Error()
	}
	matrix, ok := val.(model.Matrix)
	if !ok {
		return nil, "unsupported result type " + val.Type().String()
	}
	switch len(matrix) {
	case 0:
		return nil, ""
	case 1:
	default:
		return nil, fmt.Sprintf("%d series; the query must return one", len(matrix))
	}
	var out []float64
	for _, p := range matrix[0].Values {
		if f := float64(p.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
			out = append(out, f)
		}
	}
	return out, ""
}
