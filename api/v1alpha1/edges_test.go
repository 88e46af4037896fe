package v1alpha1

import (
	"fmt"
	"strings"
	"testing"
)

// edgeRelease is a canary release with the strategy and extra spec given.
func edgeRelease(strategy, extra string) string {
	return `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: shop}
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
` + strategy + `
  checks:
  - name: ok
    webhook: {url: "https://smoke.example/run"}
` + extra
}

// TestValidationEdges: each limit the validator enforces, on both sides of
// its boundary (docs/testing.md: the mutation run asks for these).
func TestValidationEdges(t *testing.T) {
	many := func(n int, f func(i int) string) string {
		var parts []string
		for i := range n {
			parts = append(parts, f(i))
		}
		return strings.Join(parts, ", ")
	}
	header := func(i int) string { return fmt.Sprintf("{name: H%d, value: v}", i) }
	query := func(i int) string { return fmt.Sprintf("{name: q%d, value: v}", i) }
	tests := []struct {
		name, strategy, extra, want string // want "" means valid
	}{
		{"window -1", "    canary: {steps: [{setWeight: 5}]}\n    rollbackWindow: {revisions: -1}", "", "spec.strategy.rollbackWindow.revisions"},
		{"window 0", "    canary: {steps: [{setWeight: 5}]}\n    rollbackWindow: {revisions: 0}", "", ""},
		{"window 20", "    canary: {steps: [{setWeight: 5}]}\n    rollbackWindow: {revisions: 20}", "", ""},
		{"window 21", "    canary: {steps: [{setWeight: 5}]}\n    rollbackWindow: {revisions: 21}", "", "spec.strategy.rollbackWindow.revisions"},
		{"shadow 0", "    shadow: {percent: 0}", "", "spec.strategy.shadow.percent"},
		{"shadow 1", "    shadow: {percent: 1}", "", ""},
		{"shadow 100", "    shadow: {percent: 100}", "", ""},
		{"shadow 101", "    shadow: {percent: 101}", "", "spec.strategy.shadow.percent"},
		{"mirror -1", "    canary: {steps: [{setMirror: {percent: -1}}]}", "", "setMirror"},
		{"mirror 0", "    canary: {steps: [{setMirror: {percent: 0}}]}", "", ""},
		{"mirror 100", "    canary: {steps: [{setMirror: {percent: 100}}]}", "", ""},
		{"mirror 101", "    canary: {steps: [{setMirror: {percent: 101}}]}", "", "setMirror"},
		{"a step after the first step's 100", "    canary: {steps: [{setWeight: 100}, {setWeight: 5}]}", "", "steps[1]: no step may follow setWeight: 100 (steps[0])"},
		{"16 headers", "    abTest: {match: {headers: [" + many(16, header) + "]}}", "", ""},
		{"17 headers", "    abTest: {match: {headers: [" + many(17, header) + "]}}", "", "at most 16 header matches"},
		{"16 query params", "    abTest: {match: {queryParams: [" + many(16, query) + "]}}", "", ""},
		{"17 query params", "    abTest: {match: {queryParams: [" + many(17, query) + "]}}", "", "at most 16 query parameter matches"},
		{"header name 256", "    abTest: {match: {headers: [{name: " + strings.Repeat("h", 256) + ", value: v}]}}", "", ""},
		{"header name 257", "    abTest: {match: {headers: [{name: " + strings.Repeat("h", 257) + ", value: v}]}}", "", "headers[0].name"},
		{"header value 4096", "    abTest: {match: {headers: [{name: h, value: " + strings.Repeat("v", 4096) + "}]}}", "", ""},
		{"header value 4097", "    abTest: {match: {headers: [{name: h, value: " + strings.Repeat("v", 4097) + "}]}}", "", "headers[0].value"},
		{"empty preview match", "    blueGreen: {previewMatch: {}}", "", "previewMatch"},
		{"no preview match", "    blueGreen: {}", "", ""},
		{"autoPromote and gate", "    blueGreen: {autoPromote: true, gate: qa}", "", "cannot be set with autoPromote"},
		{"gate without autoPromote", "    blueGreen: {gate: qa}", "", ""},
		{"autoPromote without gate", "    blueGreen: {autoPromote: true}", "", ""},
		{"surge 0 unavailable 0", "    rolling: {maxSurge: 0, maxUnavailable: 0}", "", "spec.strategy.rolling"},
		{"surge 0 unavailable 1", "    rolling: {maxSurge: 0, maxUnavailable: 1}", "", ""},
		{"surge 1 unavailable 0", "    rolling: {maxSurge: 1, maxUnavailable: 0}", "", ""},
		{"surge 0 alone", "    rolling: {maxSurge: 0}", "", ""},
		{"surge 0%", "    rolling: {maxSurge: 0%}", "", ""},
		{"surge 100%", "    rolling: {maxSurge: 100%}", "", ""},
		{"surge 101%", "    rolling: {maxSurge: 101%}", "", "maxSurge"},
		{"count 0", "    canary: {steps: [{check: [ok]}]}", "    count: 0\n", "count: must be at least 1"},
		{"count 1", "    canary: {steps: [{check: [ok]}]}", "    count: 1\n", ""},
		{"failureLimit 0", "    canary: {steps: [{check: [ok]}]}", "    failureLimit: 0\n", ""},
		{"failureLimit -1", "    canary: {steps: [{check: [ok]}]}", "    failureLimit: -1\n", "failureLimit: must be at least 0"},
		{"minSamples on a webhook", "    canary: {steps: [{check: [ok]}]}", "    minSamples: 10\n", "minSamples: counts samples with prometheus.countQuery"},
		{"prometheus with a count", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus: {address: \"http://p:9090\", query: q, countQuery: n}\n    successCondition: \">= 0.99\"\n    minSamples: 300\n    samplesTimeout: 5m\n    onTooFewSamples: pause\n", ""},
		{"minSamples 0", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus: {address: \"http://p:9090\", query: q, countQuery: n}\n    successCondition: \">= 0.99\"\n    minSamples: 0\n", "minSamples: must be at least 1"},
		{"onTooFewSamples wait", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus: {address: \"http://p:9090\", query: q, countQuery: n}\n    successCondition: \">= 0.99\"\n    onTooFewSamples: wait\n", `onTooFewSamples: must be fail or pause, got "wait"`},
		{"bad count template", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus: {address: \"http://p:9090\", query: q, countQuery: \"{{\"}\n    successCondition: \">= 0.99\"\n", "prometheus.countQuery: invalid template"},
		{"compare", "    canary: {steps: [{check: [cmp]}]}", fmt.Sprintf("  - name: cmp\n    compare:\n      address: \"http://p:9090\"\n      metrics: [{name: errors, query: \"q{{.Service}}\", direction: %s, tolerance: %s}]\n", "increase", "0.01"), ""},
		{"compare direction", "    canary: {steps: [{check: [cmp]}]}", fmt.Sprintf("  - name: cmp\n    compare:\n      address: \"http://p:9090\"\n      metrics: [{name: errors, query: \"q{{.Service}}\", direction: %s, tolerance: %s}]\n", "up", "0"), `direction: must be increase, decrease or either`},
		{"compare tolerance", "    canary: {steps: [{check: [cmp]}]}", fmt.Sprintf("  - name: cmp\n    compare:\n      address: \"http://p:9090\"\n      metrics: [{name: errors, query: \"q{{.Service}}\", direction: %s, tolerance: %s}]\n", "either", "-1"), `tolerance: must not be negative`},
		{"compare and webhook", "    canary: {steps: [{check: [cmp]}]}", fmt.Sprintf("  - name: cmp\n    compare:\n      address: \"http://p:9090\"\n      metrics: [{name: errors, query: \"q{{.Service}}\", direction: %s, tolerance: %s}]\n", "increase", "0") + "    webhook: {url: \"http://x\"}\n", "set exactly one provider"},
		{"compare without metrics", "    canary: {steps: [{check: [cmp]}]}", "  - name: cmp\n    compare: {address: \"http://p:9090\", metrics: []}\n", "compare.metrics: names no metric"},
		{"compare marginal above pass", "    canary: {steps: [{check: [cmp]}]}", "  - name: cmp\n    compare: {address: \"http://p:9090\", pass: 80, marginal: 90, metrics: [{name: e, query: q, direction: increase}]}\n", "compare.marginal: must not be above pass"},
		{"auth", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus:\n      address: \"https://p:9090\"\n      query: q\n      auth: {bearerToken: {secret: prom, key: token}, headers: {X-Scope-OrgID: a}, ca: {secret: prom, key: ca.crt}}\n    successCondition: \">= 0.99\"\n", ""},
		{"auth both", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus:\n      address: \"https://p:9090\"\n      query: q\n      auth: {bearerToken: {secret: prom, key: token}, basic: {username: u, password: {secret: prom, key: pw}}}\n    successCondition: \">= 0.99\"\n", "set bearerToken or basic, not both"},
		{"auth Authorization header", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus:\n      address: \"https://p:9090\"\n      query: q\n      auth: {headers: {Authorization: Bearer x}}\n    successCondition: \">= 0.99\"\n", "headers.Authorization: set auth.bearerToken or auth.basic instead"},
		{"auth bad header", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus:\n      address: \"https://p:9090\"\n      query: q\n      auth: {headers: {\"a b\": x}}\n    successCondition: \">= 0.99\"\n", "is not an HTTP header name"},
		{"auth no key", "    canary: {steps: [{setWeight: 5}]}", "  - name: rate\n    prometheus:\n      address: \"https://p:9090\"\n      query: q\n      auth: {bearerToken: {secret: prom}}\n    successCondition: \">= 0.99\"\n", "bearerToken.key"},
		{"pause 0s", "    canary: {steps: [{pause: {duration: 0s}}]}", "", "must be positive"},
		{"pause 1ns", "    canary: {steps: [{pause: {duration: 1ns}}]}", "", ""},
		{"scaleDownDelay 0s", "    canary: {steps: [{setWeight: 5}]}\n    scaleDownDelay: 0s", "", ""},
		{"scaleDownDelay 24h", "    canary: {steps: [{setWeight: 5}]}\n    scaleDownDelay: 24h", "", ""},
		{"scaleDownDelay 24h1s", "    canary: {steps: [{setWeight: 5}]}\n    scaleDownDelay: 24h0m1s", "", "spec.strategy.scaleDownDelay: must be 0s to 24h0m0s"},
		{"scaleDownDelay -1s", "    canary: {steps: [{setWeight: 5}]}\n    scaleDownDelay: -1s", "", "scaleDownDelay"},
		{"pause 0s still refused", "    canary: {steps: [{pause: {duration: 0s}}]}\n    scaleDownDelay: 0s", "", "must be positive"},
		{"one header route name in two steps", "    canary: {steps: [{setHeaderRoute: {name: ff, match: {headers: [{name: a, value: b}]}}}, {setWeight: 5}, {setHeaderRoute: {name: ff, match: {headers: [{name: a, value: c}]}}}]}", "", `"ff" is already used by steps[0]`},
		{"ftp webhook", "    canary: {steps: [{setWeight: 5}]}", "  - name: ftp\n    webhook: {url: \"ftp://x/y\"}\n", "webhook.url"},
		{"http webhook", "    canary: {steps: [{setWeight: 5}]}", "  - name: plain\n    webhook: {url: \"http://x/y\"}\n", ""},
		{"webhook without a host", "    canary: {steps: [{setWeight: 5}]}", "  - name: nohost\n    webhook: {url: \"http:///y\"}\n", "webhook.url"},
		{"webhook body and headers", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"http://x/y\", headers: {X-Team: shop}, body: '{\"app\": {{json .Release}}}'}\n", ""},
		{"webhook body unparsable", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"http://x/y\", body: '{{.Release'}\n", "spec.checks[1].webhook.body: invalid template"},
		{"webhook Authorization header", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"http://x/y\", headers: {Authorization: x}}\n", "webhook.headers.Authorization: set auth.bearerToken"},
		{"webhook timeout 0s", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"http://x/y\", timeout: 0s}\n", "webhook.timeout: must be positive"},
		{"client cert without key", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"https://x/y\", auth: {cert: {secret: s, key: tls.crt}}}\n", "set cert and key together"},
		{"client cert and key", "    canary: {steps: [{setWeight: 5}]}", "  - name: cab\n    webhook: {url: \"https://x/y\", auth: {cert: {secret: s, key: tls.crt}, key: {secret: s, key: tls.key}}}\n", ""},
		{"confirm gate", "    canary: {steps: [{setWeight: 5}, {pause: {gate: ship}}]}", "  gates: {confirm: [{gate: ship, check: ok}]}\n", ""},
		{"confirm unknown gate", "    canary: {steps: [{setWeight: 5}, {pause: {gate: ship}}]}", "  gates: {confirm: [{gate: shop, check: ok}]}\n", `spec.gates.confirm[0].gate: no pause step names the gate "shop"`},
		{"confirm undefined check", "    canary: {steps: [{setWeight: 5}, {pause: {gate: ship}}]}", "  gates: {confirm: [{gate: ship, check: cab}]}\n", `spec.gates.confirm[0].check: check "cab" is not defined`},
		{"confirm a gate twice", "    canary: {steps: [{setWeight: 5}, {pause: {gate: ship}}]}", "  gates: {confirm: [{gate: ship, check: ok}, {gate: ship, check: ok}]}\n", "already confirmed by spec.gates.confirm[0]"},
		{"preRollout and postRollout", "    canary: {steps: [{setWeight: 5}]}", "  analysis: {preRollout: [ok], postRollout: [ok]}\n", ""},
		{"preRollout undefined", "    canary: {steps: [{setWeight: 5}]}", "  analysis: {preRollout: [cab]}\n", `spec.analysis.preRollout[0]: check "cab" is not defined`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRelease("r.yaml", []byte(edgeRelease(tc.strategy, tc.extra)))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A run of steps after a final setWeight 100 is reported once.
func TestStepsAfterTheFinalWeightReportedOnce(t *testing.T) {
	_, err := ParseRelease("r.yaml", []byte(edgeRelease("    canary: {steps: [{setWeight: 5}, {setWeight: 100}, {setWeight: 5}, {setWeight: 6}]}", "")))
	if err == nil || strings.Count(err.Error(), "no step may follow") != 1 {
		t.Errorf("err = %v, want exactly one report", err)
	}
}

func TestConditionEquality(t *testing.T) {
	for _, tc := range []struct {
		cond string
		v    float64
		want bool
	}{{">= 0.99", 0.99, true}, {"> 0.99", 0.99, false}, {"<= 0.5", 0.5, true}, {"< 0.5", 0.5, false}, {"== 1", 1, true}, {"!= 1", 1, false}} {
		c, err := ParseCondition(tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Holds(tc.v); got != tc.want {
			t.Errorf("%q holds for %v = %v", tc.cond, tc.v, got)
		}
	}
}

func TestBoolSpellings(t *testing.T) {
	for _, v := range []string{"true", "True", "TRUE"} {
		p, err := ParseRelease("r.yaml", []byte(edgeRelease("    canary: {steps: [{setWeight: 5}]}", "  suspend: "+v+"\n")))
		if err != nil || !p.Release.Spec.Suspend {
			t.Errorf("suspend: %s gave %v, %v", v, err, err == nil && p.Release.Spec.Suspend)
		}
	}
}

func TestFileSizeLimit(t *testing.T) {
	base := edgeRelease("    canary: {steps: [{setWeight: 5}]}", "")
	pad := func(n int) []byte { return []byte(base + "#" + strings.Repeat("x", n-len(base)-2) + "\n") }
	if _, err := ParseRelease("r.yaml", pad(MaxReleaseFileSize)); err != nil {
		t.Errorf("a file of exactly the limit: %v", err)
	}
	if _, err := ParseRelease("r.yaml", pad(MaxReleaseFileSize+1)); err == nil {
		t.Error("a file over the limit parsed")
	}
}

func TestErrorFormatAndOrder(t *testing.T) {
	if got := (&FieldError{File: "f.yaml", Message: "m"}).Error(); got != "f.yaml: m" {
		t.Errorf("no line: %q", got)
	}
	if got := (&FieldError{File: "f.yaml", Line: 1, Message: "m"}).Error(); got != "f.yaml:1: m" {
		t.Errorf("line 1: %q", got)
	}
	l := ErrorList{{File: "b", Line: 1}, {File: "a", Line: 9}, {File: "a", Line: 2}, {File: "a", Line: 2, Message: "second"}}
	l.Sort()
	var got []string
	for _, e := range l {
		got = append(got, fmt.Sprintf("%s%d%s", e.File, e.Line, e.Message))
	}
	if strings.Join(got, " ") != "a2 a2second a9 b1" {
		t.Errorf("order %v", got)
	}
}

func TestSameRevisionEdges(t *testing.T) {
	full := "abcdef0123456789abcdef0123456789abcdef01"
	for _, tc := range []struct {
		short string
		want  bool
	}{{"abcdef0", true}, {"abcdef", false}, {full, true}, {full + "0", false}, {"", false}, {"abcdef1", false}} {
		if got := SameRevision(tc.short, full); got != tc.want {
			t.Errorf("SameRevision(%q) = %v", tc.short, got)
		}
	}
	if SameRevision("", "") {
		t.Error("two empty revisions are the same revision")
	}
}

func TestABTestSteps(t *testing.T) {
	plain, err := ParseRelease("r.yaml", []byte(edgeRelease("    abTest: {match: {headers: [{name: h, value: v}]}}", "")))
	if err != nil {
		t.Fatal(err)
	}
	steps := plain.Release.Spec.Strategy.Steps()
	if *steps[0].SetHeaderRoute.Weight != 100 {
		t.Errorf("default A/B weight %d", *steps[0].SetHeaderRoute.Weight)
	}
	for _, s := range steps {
		if s.Check != nil || s.Kind() == "" {
			t.Errorf("a step that is no step, or a check step without checks: %+v", s)
		}
	}
	weighted, err := ParseRelease("r.yaml", []byte(edgeRelease("    abTest: {match: {headers: [{name: h, value: v}]}, weight: 30, checks: [ok]}", "")))
	if err != nil {
		t.Fatal(err)
	}
	steps = weighted.Release.Spec.Strategy.Steps()
	hasCheck := false
	for _, s := range steps {
		hasCheck = hasCheck || s.Check != nil
	}
	if *steps[0].SetHeaderRoute.Weight != 30 || !hasCheck {
		t.Errorf("weighted A/B steps %+v", steps)
	}
}

func TestSourceDir(t *testing.T) {
	p, err := ParseRelease("releases/shop/app/release.yaml", []byte(edgeRelease("    canary: {steps: [{setWeight: 5}]}", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.SourceDir(); got != "releases/shop/app" {
		t.Errorf("default source dir %q", got)
	}
	p.Release.Spec.Source.Path = "../../../apps/cart"
	if got := p.SourceDir(); got != "apps/cart" {
		t.Errorf("source dir %q", got)
	}
}

// Traffic on a rolling release is optional and each name checked alone.
func TestRollingTraffic(t *testing.T) {
	for _, tc := range []struct{ traffic, want string }{
		{"{route: app}", ""}, {"{service: app}", ""},
		{"{route: Bad_Name}", "spec.traffic.route"}, {"{service: Bad_Name}", "spec.traffic.service"},
	} {
		y := strings.Replace(edgeRelease("    rolling: {}", ""), "  traffic: {route: app, service: app}\n", "  traffic: "+tc.traffic+"\n", 1)
		_, err := ParseRelease("r.yaml", []byte(y))
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("traffic %s: %v, want %q", tc.traffic, err, tc.want)
		}
	}
}
