package judge

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func samples(r *rand.Rand, n int, mean, sd float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = mean + sd*r.NormFloat64()
	}
	return v
}

func TestJudge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := samples(r, 30, 0.001, 0.0005)
	errorsUp := samples(r, 30, 0.021, 0.003)
	same := samples(r, 30, 0.001, 0.0005)
	slower := samples(r, 30, 0.150, 0.01)
	fast := samples(r, 30, 0.100, 0.01)
	tests := []struct {
		name    string
		metrics []Metric
		want    Verdict
		classes []Class
	}{
		{"errors up 2pp", []Metric{{Name: "errors", Baseline: base, Canary: errorsUp, Direction: Increase, Tolerance: 0.005}}, VerdictFail, []Class{High}},
		{"same behaviour", []Metric{{Name: "errors", Baseline: base, Canary: same, Direction: Increase, Tolerance: 0.005}}, VerdictPass, []Class{Pass}},
		{"significant but within tolerance", []Metric{{Name: "errors", Baseline: base, Canary: errorsUp, Direction: Increase, Tolerance: 0.05}}, VerdictPass, []Class{Pass}},
		{"better is not bad", []Metric{{Name: "latency", Baseline: slower, Canary: fast, Direction: Increase, Tolerance: 0.01}}, VerdictPass, []Class{Low}},
		{"either direction", []Metric{{Name: "latency", Baseline: slower, Canary: fast, Direction: Either, Tolerance: 0.01}}, VerdictFail, []Class{Low}},
		{"one of two fails", []Metric{
			{Name: "errors", Baseline: base, Canary: same, Direction: Increase, Tolerance: 0.005},
			{Name: "latency", Baseline: fast, Canary: slower, Direction: Increase, Tolerance: 0.02},
		}, VerdictFail, []Class{Pass, High}},
		{"too few samples", []Metric{{Name: "errors", Baseline: base[:2], Canary: errorsUp[:2], Direction: Increase}}, VerdictInconclusive, []Class{NoData}},
		{"one passes, one has no data yet: no pass", []Metric{
			{Name: "errors", Baseline: base[:2], Canary: same[:2], Direction: Increase, Tolerance: 0.005},
			{Name: "latency", Baseline: fast, Canary: fast, Direction: Increase, Tolerance: 0.02},
		}, VerdictInconclusive, []Class{NoData, Pass}},
		{"one fails, one has no data yet: a failure", []Metric{
			{Name: "errors", Baseline: base[:2], Canary: same[:2], Direction: Increase, Tolerance: 0.005},
			{Name: "latency", Baseline: fast, Canary: slower, Direction: Increase, Tolerance: 0.02},
		}, VerdictFail, []Class{NoData, High}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Judge(Config{}, tt.metrics)
			if res.Verdict != tt.want {
				t.Errorf("verdict %s, want %s: %s", res.Verdict, tt.want, res)
			}
			for i, c := range tt.classes {
				if res.Metrics[i].Class != c {
					t.Errorf("%s: %s, want %s", res.Metrics[i].Name, res.Metrics[i].Class, c)
				}
			}
		})
	}
}

func TestJudgeMarginal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ms []Metric
	for i := range 8 {
		c := samples(r, 20, 1, 0.1)
		if i == 0 {
			c = samples(r, 20, 2, 0.1) // one of eight: 87.5, marginal
		}
		ms = append(ms, Metric{Name: "m", Baseline: samples(r, 20, 1, 0.1), Canary: c, Direction: Increase, Tolerance: 0.2})
	}
	res := Judge(Config{}, ms)
	if res.Verdict != VerdictMarginal || res.Score != 87.5 || !strings.HasPrefix(res.String(), "score 88 marginal: m High") {
		t.Errorf("%s", res)
	}
}
