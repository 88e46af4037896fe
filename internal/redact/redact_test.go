package redact

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	for _, raw := range []string{
		"https://bot:" + secret + "@git.example.com/org/deploy.git",
		"https://git.example.com/org/deploy.git?access_token=" + secret,
		"http://user:" + secret + "@host:8080/p#" + secret,
	} {
		if got := URL(raw); strings.Contains(got, secret) || !strings.Contains(got, "example.com") && !strings.Contains(got, "host") {
			t.Errorf("URL(%q) = %q", raw, got)
		}
	}
	if got := URL("https://git.example.com/org/deploy.git"); got != "https://git.example.com/org/deploy.git" {
		t.Errorf("a URL without secrets changed: %q", got)
	}
	if got := Endpoint("https://hooks.slack.com/services/T000/B000/" + secret); strings.Contains(got, secret) || got != "https://hooks.slack.com/REDACTED" {
		t.Errorf("Endpoint = %q", got)
	}
	if got := String("fetch failed: auth "+secret+" refused", secret, "", "ab"); strings.Contains(got, secret) || !strings.Contains(got, "refused") {
		t.Errorf("String = %q", got)
	}
}
