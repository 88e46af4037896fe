package judge

import (
	"fmt"
	"strings"
)

// Direction says which change of a metric is bad.
type Direction string

// Directions.
const (
	Increase Direction = "increase" // higher is worse (errors, latency)
	Decrease Direction = "decrease" // lower is worse (throughput, success)
	Either   Direction = "either"
)

// Class is a metric's classification.
type Class string

// Classes.
const (
	Pass   Class = "Pass"
	High   Class = "High"
	Low    Class = "Low"
	NoData Class = "NoData"
)

// Metric is one metric's samples from both tracks and what counts as bad.
type Metric struct {
	Name     string
	Baseline []float64
	Canary   []float64
	// Direction is the change that is bad.
	Direction Direction
	// Tolerance is the largest difference of the medians (canary minus
	// baseline, in the metric's unit) that does not matter, however
	// significant.
	Tolerance float64
}

// Config holds the judge's thresholds.
type Config struct {
	// Alpha is the significance level of each test (default 0.05).
	Alpha float64
	// MinSamples is the fewest samples per track a metric needs to be
	// judged (default 8); below it the metric has no data. Fewer than 4
	// per track could never reach p < 0.05 (two-sided), so a bad canary
	// would pass for want of data.
	MinSamples int
	// Pass and Marginal are score thresholds in percent (defaults 95 and
	// 75, Kayenta's): a score at or above Pass passes, below Marginal fails,
	// between them the run is marginal.
	Pass, Marginal float64
}

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = 0.05
	}
	if c.MinSamples == 0 {
		c.MinSamples = 8
	}
	if c.Pass == 0 {
		c.Pass = 95
	}
	if c.Marginal == 0 {
		c.Marginal = 75
	}
	return c
}

// MetricResult is one metric's judgement.
type MetricResult struct {
	Name           string
	Class          Class
	Failed         bool // classified in the bad direction
	U, P           float64
	Method         Method
	Baseline       float64 // median
	Canary         float64 // median
	NBase, NCanary int
}

// Verdict of a run.
type Verdict string

// Verdicts.
const (
	VerdictPass         Verdict = "pass"
	VerdictMarginal     Verdict = "marginal"
	VerdictFail         Verdict = "fail"
	VerdictInconclusive Verdict = "inconclusive" // no metric had data
)

// Result is a run's judgement: each metric, the score (the percentage of
// the metrics with data that did not fail) and the verdict.
type Result struct {
	Metrics []MetricResult
	Score   float64
	Verdict Verdict
}

// Judge classifies each metric and scores the run.
func Judge(cfg Config, metrics []Metric) Result {
	cfg = cfg.withDefaults()
	var res Result
	judged, passed := 0, 0
	for _, m := range metrics {
		r := MetricResult{Name: m.Name, NBase: len(m.Baseline), NCanary: len(m.Canary), Class: NoData}
		if len(m.Baseline) >= cfg.MinSamples && len(m.Canary) >= cfg.MinSamples {
			u := MannWhitneyU(m.Canary, m.Baseline)
			r.U, r.P, r.Method = u.U, u.P, u.Method
			r.Baseline, r.Canary = median(m.Baseline), median(m.Canary)
			diff := r.Canary - r.Baseline
			switch {
			case u.P < cfg.Alpha && diff > m.Tolerance:
				r.Class = High
			case u.P < cfg.Alpha && diff < -m.Tolerance:
				r.Class = Low
			default:
				r.Class = Pass
			}
			r.Failed = (r.Class == High && m.Direction != Decrease) || (r.Class == Low && m.Direction != Increase)
			judged++
			if !r.Failed {
				passed++
			}
		}
		res.Metrics = append(res.Metrics, r)
	}
	switch {
	case judged == 0:
		res.Verdict = VerdictInconclusive
		return res
	default:
		res.Score = 100 * float64(passed) / float64(judged)
	}
	switch {
	case res.Score >= cfg.Pass:
		res.Verdict = VerdictPass
	case res.Score >= cfg.Marginal:
		res.Verdict = VerdictMarginal
	default:
		res.Verdict = VerdictFail
	}
	if judged < len(metrics) && res.Verdict != VerdictFail {
		// Enough data or no verdict: a pass needs every metric judged; a
		// failure may already be certain on some.
		res.Verdict = VerdictInconclusive
	}
	return res
}

// String is the run in one line, for status messages and commit
// trailers: "score 50 fail: errors High (U=870 p=1e-09, canary 0.021 vs
// baseline 0.001, n=30/30), latency Pass (…)".
func (r Result) String() string {
	var parts []string
	for _, m := range r.Metrics {
		if m.Class == NoData {
			parts = append(parts, fmt.Sprintf("%s NoData (n=%d/%d)", m.Name, m.NCanary, m.NBase))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (U=%g p=%.2g, canary %.4g vs baseline %.4g, n=%d/%d)", m.Name, m.Class, m.U, m.P, m.Canary, m.Baseline, m.NCanary, m.NBase))
	}
	return fmt.Sprintf("score %.0f %s: %s", r.Score, r.Verdict, strings.Join(parts, ", "))
}
