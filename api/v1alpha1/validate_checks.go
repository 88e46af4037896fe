package v1alpha1

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"

	"golang.org/x/net/http/httpguts"
)

func (v *validator) checks() {
	seen := map[string]int{}
	for i := range v.p.Release.Spec.Checks {
		c := &v.p.Release.Spec.Checks[i]
		p := fmt.Sprintf("spec.checks[%d]", i)
		if v.required(p+".name", c.Name) {
			v.dnsName(p+".name", c.Name, true)
			if prev, dup := seen[c.Name]; dup {
				v.errorf(p+".name", "%q is already defined by spec.checks[%d]", c.Name, prev)
			}
			seen[c.Name] = i
		}
		if c.Template.Name != "" {
			v.templated(p, c)
			continue
		}
		if len(c.Args) > 0 {
			v.errorf(p+".args", "args are for a check from a template: set template")
		}
		v.check(p, c)
	}
}

// check validates one check's fields at path p.
func (v *validator) check(p string, c *Check) {
	{
		providers := 0
		for _, set := range []bool{c.Prometheus != nil, c.Webhook != nil, c.Compare != nil} {
			if set {
				providers++
			}
		}
		switch {
		case providers > 1:
			v.errorf(p, "set exactly one provider: prometheus, webhook or compare")
		case c.Compare != nil:
			v.compare(p+".compare", c.Compare)
		case c.Prometheus != nil:
			v.optionalURL(p+".prometheus.address", c.Prometheus.Address)
			if v.required(p+".prometheus.query", c.Prometheus.Query) {
				if _, err := template.New("q").Option("missingkey=error").Parse(c.Prometheus.Query); err != nil {
					v.errorf(p+".prometheus.query", "invalid template: %v", err)
				}
			}
			if c.SuccessCondition == "" {
				v.errorf(p+".successCondition", "required for a prometheus check, e.g. \">= 0.99\"")
			}
			v.auth(p+".prometheus.auth", c.Prometheus.Auth)
			if q := c.Prometheus.CountQuery; q != "" {
				if _, err := template.New("q").Option("missingkey=error").Parse(q); err != nil {
					v.errorf(p+".prometheus.countQuery", "invalid template: %v", err)
				}
			}
		case c.Webhook != nil:
			v.webhook(p+".webhook", c.Webhook)
		default:
			v.errorf(p, "set exactly one provider: prometheus, webhook or compare")
		}
		if c.SuccessCondition != "" {
			if _, err := ParseCondition(c.SuccessCondition); err != nil {
				v.errorf(p+".successCondition", "%v", err)
			}
		}
		for _, n := range []struct {
			field string
			val   *int32
			min   int32
		}{{"count", c.Count, 1}, {"failureLimit", c.FailureLimit, 0}, {"inconclusiveLimit", c.InconclusiveLimit, 0}, {"minSamples", c.MinSamples, 1}} {
			if n.val != nil && *n.val < n.min {
				v.errorf(p+"."+n.field, "must be at least %d, got %d", n.min, *n.val)
			}
		}
		if (c.MinSamples != nil || c.SamplesTimeout != nil || c.OnTooFewSamples != "") && (c.Prometheus == nil || c.Prometheus.CountQuery == "") && c.Compare == nil {
			v.errorf(p+".minSamples", "counts samples with prometheus.countQuery: set it, e.g. sum(increase(requests_total{...}[1m]))")
		}
		if c.SamplesTimeout != nil && c.SamplesTimeout.Duration <= 0 {
			v.errorf(p+".samplesTimeout", "must be positive, got %s", c.SamplesTimeout)
		}
		if o := c.OnTooFewSamples; o != "" && o != TooFewFail && o != TooFewPause {
			v.errorf(p+".onTooFewSamples", "must be %s or %s, got %q", TooFewFail, TooFewPause, o)
		}
	}
}

func (v *validator) compare(p string, c *CompareCheck) {
	v.optionalURL(p+".address", c.Address)
	v.auth(p+".auth", c.Auth)
	if len(c.Metrics) == 0 {
		v.errorf(p+".metrics", "names no metric")
	}
	seen := map[string]int{}
	for i, m := range c.Metrics {
		mp := fmt.Sprintf("%s.metrics[%d]", p, i)
		if v.required(mp+".name", m.Name) {
			if prev, dup := seen[m.Name]; dup {
				v.errorf(mp+".name", "%q is already the name of metrics[%d]", m.Name, prev)
			}
			seen[m.Name] = i
		}
		if v.required(mp+".query", m.Query) {
			if _, err := template.New("q").Option("missingkey=error").Parse(m.Query); err != nil {
				v.errorf(mp+".query", "invalid template: %v", err)
			}
		}
		switch m.Direction {
		case "increase", "decrease", "either":
		default:
			v.errorf(mp+".direction", "must be increase, decrease or either (the change that is bad), got %q", m.Direction)
		}
		if m.Tolerance < 0 {
			v.errorf(mp+".tolerance", "must not be negative, got %v", m.Tolerance)
		}
	}
	if c.Window != nil && c.Window.Duration <= 0 {
		v.errorf(p+".window", "must be positive, got %s", c.Window)
	}
	if c.Step != nil && c.Step.Duration <= 0 {
		v.errorf(p+".step", "must be positive, got %s", c.Step)
	}
	if c.Alpha != nil && (*c.Alpha <= 0 || *c.Alpha >= 1) {
		v.errorf(p+".alpha", "must be between 0 and 1, got %v", *c.Alpha)
	}
	for _, t := range []struct {
		field string
		val   *float64
	}{{"pass", c.Pass}, {"marginal", c.Marginal}} {
		if t.val != nil && (*t.val < 0 || *t.val > 100) {
			v.errorf(p+"."+t.field, "must be a percentage, 0 to 100, got %v", *t.val)
		}
	}
	if c.Pass != nil && c.Marginal != nil && *c.Marginal > *c.Pass {
		v.errorf(p+".marginal", "must not be above pass (%v), got %v", *c.Pass, *c.Marginal)
	}
}

func (v *validator) webhook(p string, w *WebhookCheck) {
	v.url(p+".url", w.URL)
	v.headers(p+".headers", w.Headers)
	v.auth(p+".auth", w.Auth)
	if w.Body != "" {
		if _, err := template.New("body").Funcs(BodyFuncs).Option("missingkey=error").Parse(w.Body); err != nil {
			v.errorf(p+".body", "invalid template: %v", err)
		}
	}
	if w.Timeout != nil && w.Timeout.Duration <= 0 {
		v.errorf(p+".timeout", "must be positive, got %s", w.Timeout)
	}
}

// BodyFuncs are the functions a webhook's body template may call: json
// quotes a value as JSON.
var BodyFuncs = template.FuncMap{"json": func(x any) (string, error) {
	b, err := json.Marshal(x)
	return string(b), err
}}

// auth checks a Prometheus API's credentials: Secret references in the
// release's namespace, one of bearer token or basic, header names that are
// HTTP tokens and not the Authorization the two set.
func (v *validator) auth(p string, a *HTTPAuth) {
	if a == nil {
		return
	}
	if a.BearerToken != nil && a.Basic != nil {
		v.errorf(p, "set bearerToken or basic, not both")
	}
	key := func(field string, k *SecretKey) {
		if k == nil {
			return
		}
		if v.required(field+".secret", k.Secret) {
			v.dnsName(field+".secret", k.Secret, false)
		}
		v.required(field+".key", k.Key)
	}
	key(p+".bearerToken", a.BearerToken)
	key(p+".ca", a.CA)
	key(p+".cert", a.Cert)
	key(p+".key", a.Key)
	if (a.Cert == nil) != (a.Key == nil) {
		v.errorf(p, "set cert and key together (a client certificate and its private key)")
	}
	if a.Basic != nil {
		v.required(p+".basic.username", a.Basic.Username)
		key(p+".basic.password", &a.Basic.Password)
	}
	v.headers(p+".headers", a.Headers)
}

// headers checks header names: HTTP tokens, and not the Authorization
// bearerToken and basic set from a Secret.
func (v *validator) headers(p string, hs map[string]string) {
	names := make([]string, 0, len(hs))
	for n := range hs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case strings.EqualFold(n, "Authorization"):
			v.errorf(p+"."+n, "set auth.bearerToken or auth.basic instead: they read the secret from a Secret, not from Git")
		case !httpguts.ValidHeaderFieldName(n):
			v.errorf(p, "%q is not an HTTP header name", n)
		}
	}
}

// templated validates a check from a template: the template's name, and
// nothing of the check set beside it (the template holds it all).
func (v *validator) templated(p string, c *Check) {
	v.dnsName(p+".template.name", c.Template.Name, false)
	bare := Check{Name: c.Name, Template: c.Template, Args: c.Args}
	if !reflect.DeepEqual(*c, bare) {
		v.errorf(p, "a check from template %s sets only name, template and args; the template holds the rest", c.Template.Name)
	}
	for k := range c.Template.Args {
		if _, twice := c.Args[k]; twice {
			v.errorf(p+".args."+k, "given both in template.args and beside template")
		}
	}
	for k := range c.TemplateArgs() {
		if !argName.MatchString(k) {
			v.errorf(p+".args", "%q: an argument's name is letters, digits, - and _", k)
		}
	}
}
