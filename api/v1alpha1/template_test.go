package v1alpha1

import "testing"

// TestInstantiateTwice: filling one check's args leaves the template as
// written for the next.
func TestInstantiateTwice(t *testing.T) {
	pt, err := ParseCheckTemplate("checks/rate.yaml", []byte(`apiVersion: sluice.dev/v1alpha1
kind: CheckTemplate
metadata: {name: rate}
spec:
  args: [{name: url}]
  check:
    webhook: {url: $(args.url)}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := &Parsed{Release: &Release{}, File: "r.yaml"}
	a, errs := pt.Instantiate(p, "spec.checks[0]", "a", map[string]string{"url": "http://a/x"})
	b, errs2 := pt.Instantiate(p, "spec.checks[1]", "b", map[string]string{"url": "http://b/x"})
	if len(errs)+len(errs2) > 0 || a.Webhook.URL != "http://a/x" || b.Webhook.URL != "http://b/x" || pt.Template.Spec.Check.Webhook.URL != "$(args.url)" {
		t.Fatalf("a %+v b %+v template %+v (%v %v)", a.Webhook, b.Webhook, pt.Template.Spec.Check.Webhook, errs, errs2)
	}
}
