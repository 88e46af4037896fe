package render

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

const rateTemplate = `apiVersion: sluice.dev/v1alpha1
kind: CheckTemplate
metadata: {name: success-rate}
spec:
  args:
  - name: prometheus
  - {name: threshold, default: "0.99"}
  check:
    prometheus:
      address: $(args.prometheus)
      query: sum(rate(ok{service="{{.Canary.Service}}"}[1m])) / sum(rate(all{service="{{.Canary.Service}}"}[1m]))
      countQuery: sum(increase(all{service="{{.Canary.Service}}"}[1m]))
    successCondition: ">= $(args.threshold)"
    interval: 10s
`

func templatedRelease(args string) string {
	return strings.Replace(release, "      - setWeight: 10\n", "      - setWeight: 10\n      - check: [rate]\n", 1) +
		"  checks:\n  - name: rate\n    template: success-rate\n    args: " + args + "\n"
}

// TestCheckTemplates: a release's check comes from checks/<name>.yaml in
// the nearest directory above it, its $(args.x) filled (defaults too),
// its Go template for the query left for measurement time; mistakes are
// reported in the file that made them.
func TestCheckTemplates(t *testing.T) {
	var r Renderer
	files := appRepo(map[string]string{
		"releases/shop/app/release.yaml":    templatedRelease(`{prometheus: "http://prom.monitoring:9090"}`),
		"releases/checks/success-rate.yaml": rateTemplate,
		"checks/success-rate.yaml":          "not the nearest: never read\n",
	})
	fsys, err := NewDiskFS(repo(t, files))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := r.Load(t.Context(), fsys, fsys.Root(), "releases/shop/app/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	c := p.Release.Spec.CheckByName("rate")
	if c == nil || c.Prometheus == nil || c.Prometheus.Address != "http://prom.monitoring:9090" || c.SuccessCondition != ">= 0.99" ||
		!strings.Contains(c.Prometheus.Query, "{{.Canary.Service}}") || c.Interval == nil || c.Samples() != 299 {
		t.Fatalf("instantiated check: %+v", c)
	}
	// The long form, args inside template, makes the same check.
	files["releases/shop/app/release.yaml"] = strings.Replace(templatedRelease(""), "    template: success-rate\n    args: \n",
		"    template: {name: success-rate, args: {prometheus: \"http://prom.monitoring:9090\", threshold: \"0.995\"}}\n", 1)
	long, err := NewDiskFS(repo(t, files))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err = r.Load(t.Context(), long, long.Root(), "releases/shop/app/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Release.Spec.CheckByName("rate"); c == nil || c.Prometheus == nil || c.Prometheus.Address != "http://prom.monitoring:9090" || c.SuccessCondition != ">= 0.995" {
		t.Fatalf("from template: {name, args}: %+v", c)
	}

	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"an argument given twice", map[string]string{"releases/shop/app/release.yaml": strings.Replace(templatedRelease(`{prometheus: "http://p:9090"}`), "template: success-rate", "template: {name: success-rate, args: {prometheus: \"http://q:9090\"}}", 1)},
			`spec.checks[0].args.prometheus: given both in template.args and beside template`},
		{"a required argument missing", map[string]string{"releases/shop/app/release.yaml": templatedRelease(`{threshold: "0.9"}`)},
			`releases/shop/app/release.yaml:15: spec.checks[0].args: template success-rate needs argument "prometheus"`},
		{"an argument the template does not have", map[string]string{"releases/shop/app/release.yaml": templatedRelease(`{prometheus: "http://p:9090", treshold: "0.9"}`)},
			`spec.checks[0].args.treshold: template success-rate has no argument "treshold"`},
		{"a bad value, reported in the template", map[string]string{"releases/shop/app/release.yaml": templatedRelease(`{prometheus: "ftp://p"}`)},
			`releases/checks/success-rate.yaml:10: spec.check.prometheus.address: must be an http or https URL, got "ftp://p" (with the args of releases/shop/app/release.yaml:15)`},
		{"an undeclared reference in the template", map[string]string{"releases/checks/success-rate.yaml": strings.Replace(rateTemplate, "$(args.threshold)", "$(args.limit)", 1)},
			`releases/checks/success-rate.yaml:13: spec.check.successCondition: $(args.limit) names no argument in spec.args`},
		{"no such template", map[string]string{"releases/shop/app/release.yaml": strings.Replace(templatedRelease(`{prometheus: "http://p:9090"}`), "template: success-rate", "template: error-rate", 1)},
			`spec.checks[0].template: template error-rate:`},
		{"a template check that sets more", map[string]string{"releases/shop/app/release.yaml": templatedRelease(`{prometheus: "http://p:9090"}`) + "    interval: 5s\n"},
			`spec.checks[0]: a check from template success-rate sets only name, template and args`},
		{"a template named unlike its file", map[string]string{"releases/checks/success-rate.yaml": strings.Replace(rateTemplate, "name: success-rate", "name: rate", 1)},
			`releases/checks/success-rate.yaml:3: metadata.name: must be "success-rate", the file's name, got "rate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := map[string]string{"releases/shop/app/release.yaml": templatedRelease(`{prometheus: "http://p:9090"}`), "releases/checks/success-rate.yaml": rateTemplate}
			for k, v := range tt.files {
				base[k] = v
			}
			var r Renderer
			_, err := load(t, &r, repo(t, appRepo(base)), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var list v1alpha1.ErrorList
			if !errors.As(err, &list) {
				t.Errorf("error %T is not located", err)
			}
		})
	}
}
