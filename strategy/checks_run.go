package strategy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/egress"
)

// Target names one track's objects for check templates.
type Target struct {
	Service  string
	Workload string
}

// CheckContext is what a check's query template and webhook body see:
// {{.Release}}, {{.Namespace}}, {{.Canary.Service}}, {{.Stable.Workload}}...
type CheckContext struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Revision  string `json:"revision"`
	Step      int32  `json:"step"`
	Check     string `json:"check"`
	// Phase is how the rollout ended, for post-rollout checks (Succeeded,
	// Aborted, RolledBack); empty otherwise.
	Phase  string `json:"phase,omitempty"`
	Stable Target `json:"stable"`
	Canary Target `json:"canary"`
	// Since is when the version measured began (status.canaryStartedAt;
	// zero if unknown): no sample is older.
	Since time.Time `json:"-"`
	// Released is when the track's previous version stopped serving
	// (status.trackReleasedAt; zero if never): no query's range reaches
	// back past it.
	Released time.Time `json:"-"`
	// Baseline is the baseline track while one runs
	// (spec.analysis.baseline); compare checks judge the canary against it.
	Baseline *Target `json:"baseline,omitempty"`
}

// NewCheckContext fills the context for a release and its status.
func NewCheckContext(r *v1alpha1.Release, st *v1alpha1.ReleaseStatus) CheckContext {
	cc := CheckContext{Release: r.ID(), Namespace: r.Metadata.Namespace, Step: st.Step,
		Stable: Target{Workload: r.Spec.Workload.Name}, Canary: Target{Workload: v1alpha1.CanaryName(r.Spec.Workload.Name)}}
	if r.Spec.Traffic != nil {
		cc.Stable.Service = r.Spec.Traffic.Service
		cc.Canary.Service = v1alpha1.CanaryName(r.Spec.Traffic.Service)
	}
	if st.Canary != nil {
		cc.Revision = st.Canary.Revision
	}
	if st.CanaryStartedAt != nil {
		cc.Since = *st.CanaryStartedAt
	}
	if st.TrackReleasedAt != nil {
		cc.Released = *st.TrackReleasedAt
	}
	if BaselineOn(&r.Spec, st) && r.Spec.Traffic != nil {
		cc.Baseline = &Target{Service: v1alpha1.BaselineName(r.Spec.Traffic.Service), Workload: v1alpha1.BaselineName(r.Spec.Workload.Name)}
	}
	return cc
}

// Runner measures checks. The zero value uses http.DefaultClient's
// transport.
type Runner struct {
	// Client is used for webhooks and Prometheus; nil means a default.
	Client *http.Client
	// Secrets reads the credentials of checks (prometheus.auth,
	// compare.auth) from the release's namespace; nil refuses them.
	Secrets Secrets
	// PrometheusAddress serves the prometheus and compare checks that
	// name no address (the agent's --prometheus-address).
	PrometheusAddress string
}

// address is a check's Prometheus address, or the runner's default.
func (r *Runner) address(a string) (string, error) {
	switch {
	case a != "":
		return a, nil
	case r.PrometheusAddress != "":
		return r.PrometheusAddress, nil
	}
	return "", fmt.Errorf("no Prometheus address: set the check's address or the agent's --prometheus-address")
}

// Run measures one check once. It never returns an error: a provider that
// cannot answer yields an inconclusive measurement saying why.
func (r *Runner) Run(ctx context.Context, c *v1alpha1.Check, cc CheckContext) Measurement {
	cc.Check = c.Name
	switch {
	case c.Prometheus != nil:
		return r.prometheus(ctx, c, cc)
	case c.Webhook != nil:
		return r.webhook(ctx, c, cc)
	case c.Compare != nil:
		return r.compare(ctx, c, cc)
	}
	return Measurement{Check: c.Name, Outcome: Inconclusive, Value: "no provider"}
}

func (r *Runner) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return &http.Client{Transport: egress.Transport()}
}

func (r *Runner) prometheus(ctx context.Context, c *v1alpha1.Check, cc CheckContext) Measurement {
	m := Measurement{Check: c.Name, Outcome: Inconclusive}
	cond, err := v1alpha1.ParseCondition(c.SuccessCondition)
	if err != nil {
		m.Value = err.Error()
		return m
	}
	api, err := r.promAPI(ctx, c.Prometheus.Address, c.Prometheus.Auth, cc.Namespace)
	if err != nil {
		m.Value = err.Error()
		return m
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	if why := tooEarly(cc, now, c.Prometheus.Query, c.Prometheus.CountQuery); why != "" {
		m.Outcome, m.Value = TooFew, why
		return m
	}
	v, why := instant(ctx, api, c.Name, c.Prometheus.Query, cc, now)
	min := c.Samples()
	if why != "" && (min == 0 || (why != "empty result" && why != "NaN")) {
		m.Value = why
		return m
	}
	m.Value = strconv.FormatFloat(v, 'g', 4, 64)
	if min > 0 {
		// The samples the value rests on, at the same instant.
		n, cwhy := instant(ctx, api, c.Name, c.Prometheus.CountQuery, cc, now)
		if cwhy != "" && cwhy != "empty result" {
			m.Value = "count query: " + cwhy
			return m
		}
		if why != "" {
			// No value (no series yet, or 0/0): no data is too few data,
			// unless the count says there were samples.
			if n >= float64(min) {
				m.Value = why
				return m
			}
			m.Outcome = TooFew
			m.Value = fmt.Sprintf("%s on %.0f samples, fewer than %d", why, n, min)
			return m
		}
		if n < float64(min) {
			// Too few to pass; a failure may already be certain: if even
			// good samples up to the minimum could not bring the rate
			// within the condition, it fails now.
			if best, ok := bestCase(v, n, float64(min), cond); ok && !cond.Holds(best) {
				m.Outcome = Fail
				m.Value = fmt.Sprintf("%s on %.0f samples (%.4g at best on %d)", m.Value, n, best, min)
				return m
			}
			m.Outcome = TooFew
			m.Value = fmt.Sprintf("%s on %.0f samples, fewer than %d", m.Value, n, min)
			return m
		}
	}
	if cond.Holds(v) {
		m.Outcome = Pass
	} else {
		m.Outcome = Fail
	}
	return m
}

// rangeSelector finds the ranges of PromQL range selectors and
// subqueries: [1m], [30s:5s].
var rangeSelector = regexp.MustCompile(`\[\s*([0-9][0-9smhdwy]*)\s*(?::[^\]]*)?\]`)

// lookback is the longest range the queries select: how far before its
// evaluation time a query's value reaches.
func lookback(queries ...string) time.Duration {
	var longest time.Duration
	for _, q := range queries {
		for _, m := range rangeSelector.FindAllStringSubmatch(q, -1) {
			if d, err := model.ParseDuration(m[1]); err == nil {
				longest = max(longest, time.Duration(d))
			}
		}
	}
	return longest
}

// tooEarly says why a measurement at now would rest on requests from
// before the version began (the queries' ranges reach back past
// cc.Since), "" when it would not. The Service names stay the same from
// one canary to the next, so a window reaching back would judge this
// version on the last one's requests.
func tooEarly(cc CheckContext, now time.Time, queries ...string) string {
	lb := lookback(queries...)
	if ready := firstSample(cc, lb); now.Before(ready) {
		return fmt.Sprintf("the query's %s window reaches back to the previous version's requests; first measurement of %s in %s", lb, shortRev(cc.Revision), ready.Sub(now).Round(time.Second))
	}
	return ""
}

// firstSample is the earliest time a query with ranges up to lb may be
// evaluated for the version: not before it began, nor before its range
// has passed since the track's previous version stopped serving.
func firstSample(cc CheckContext, lb time.Duration) time.Time {
	first := cc.Since
	if !cc.Released.IsZero() && cc.Released.Add(lb).After(first) {
		first = cc.Released.Add(lb)
	}
	return first
}

func shortRev(rev string) string {
	if rev == "" {
		return "this version"
	}
	return short(rev)
}

// bestCase is the best a rate v measured on n samples can become once
// there are min: every missing sample good (a success rate rises toward 1,
// an error rate falls toward 0). Only rates between 0 and 1 under a
// condition on a rate have one.
func bestCase(v, n, min float64, cond v1alpha1.Condition) (float64, bool) {
	if v < 0 || v > 1 || n < 0 || cond.Threshold <= 0 || cond.Threshold >= 1 {
		return 0, false
	}
	switch cond.Op {
	case ">=", ">":
		return (v*n + (min - n)) / min, true
	case "<=", "<":
		return v * n / min, true
	}
	return 0, false
}

// instant evaluates a query template at t; why says what went wrong.
func instant(ctx context.Context, api promv1.API, name, query string, cc CheckContext, t time.Time) (float64, string) {
	tmpl, err := template.New(name).Option("missingkey=error").Parse(query)
	if err != nil {
		return 0, "bad query template: " + err.Error()
	}
	var q bytes.Buffer
	if err := tmpl.Execute(&q, cc); err != nil {
		return 0, "query template: " + err.Error()
	}
	val, _, _, err := api.Query(ctx, q.String(), t)
	if err != nil {
		return 0, "query failed: " + err.Error()
	}
	v, ok, why := single(val)
	if !ok {
		return 0, why
	}
	return v, ""
}

// single reads a scalar or a one-sample vector; empty, NaN or several
// series are inconclusive.
func single(v model.Value) (float64, bool, string) {
	var f float64
	switch x := v.(type) {
	case *model.Scalar:
		f = float64(x.Value)
	case model.Vector:
		switch len(x) {
		case 0:
			return 0, false, "empty result"
		case 1:
			f = float64(x[0].Value)
		default:
			return 0, false, fmt.Sprintf("%d series; the query must return one", len(x))
		}
	default:
		return 0, false, "unsupported result type " + v.Type().String()
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, "NaN"
	}
	return f, true, ""
}

func (r *Runner) webhook(ctx context.Context, c *v1alpha1.Check, cc CheckContext) Measurement {
	m := Measurement{Check: c.Name, Outcome: Fail}
	w := c.Webhook
	timeout := 10 * time.Second
	if w.Timeout != nil {
		timeout = w.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := webhookBody(c.Name, w.Body, cc)
	if err != nil {
		return Measurement{Check: c.Name, Outcome: Inconclusive, Value: err.Error()}
	}
	client := r.client()
	if w.Auth != nil {
		if client, err = r.authClient(ctx, w.Auth, cc.Namespace); err != nil {
			return Measurement{Check: c.Name, Outcome: Inconclusive, Value: err.Error()}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		m.Value = err.Error()
		return m
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			m.Value = "timeout after " + timeout.String()
		} else {
			m.Value = strings.TrimSpace(err.Error())
		}
		return m
	}
	resp.Body.Close()
	m.Value = strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		m.Outcome = Pass
	}
	return m
}

// webhookBody is the JSON a webhook sends: its body template executed over
// the check's context, or the whole context.
func webhookBody(name, body string, cc CheckContext) ([]byte, error) {
	if body == "" {
		return json.Marshal(cc)
	}
	tmpl, err := template.New(name).Funcs(v1alpha1.BodyFuncs).Option("missingkey=error").Parse(body)
	if err != nil {
		return nil, fmt.Errorf("bad body template: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, cc); err != nil {
		return nil, fmt.Errorf("body template: %w", err)
	}
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("body template made no valid JSON (quote values with {{json .X}}): %.200s", b.String())
	}
	return b.Bytes(), nil
}
