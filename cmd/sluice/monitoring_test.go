package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// ruleTests are promtool unit tests of deploy/monitoring's alerts: recorded
// series in, the alerts that must (and must not) fire out.
const ruleTests = `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'sluice_release_phase{namespace="shop",name="cart",phase="Failed"}'
    values: '1x20'
  - series: 'sluice_release_phase{namespace="shop",name="web",phase="Failed"}'
    values: '0x20'
  - series: 'sluice_git_last_poll_success_timestamp_seconds{instance="a"}'
    values: '0x20'
  - series: 'sluice_leader{instance="a"}'
    values: '1x20'
  - series: 'sluice_status_push_errors_total{reason="error"}'
    values: '0 0 1 1 1'
  alert_rule_test:
  - eval_time: 10m
    alertname: SluiceReleaseFailed
    exp_alerts:
    - exp_labels: {severity: warning, namespace: shop, name: cart, phase: Failed}
      exp_annotations:
        summary: "Release shop/cart is Failed"
        description: "Its spec or render is invalid, or its apply is refused; the last good version keeps serving. sluice status shop/cart says why."
  - eval_time: 12m
    alertname: SluiceAgentNotPolling
    exp_alerts:
    - exp_labels: {severity: critical, instance: a}
      exp_annotations: {summary: "sluice has not heard from Git for 12m 0s"}
  - eval_time: 3m
    alertname: SluiceStatusPushErrors
    exp_alerts:
    - exp_labels: {severity: warning, reason: error}
      exp_annotations: {summary: "sluice cannot push status commits: check the token's push access to the status branch"}
- interval: 1m
  input_series:
  - series: 'sluice_release_step{namespace="shop",name="cart"}'
    values: '2x200'
  - series: 'sluice_release_step_started_timestamp_seconds{namespace="shop",name="cart"}'
    values: '0x200'
  - series: 'sluice_release_phase{namespace="shop",name="cart",phase="Progressing"}'
    values: '1x200'
  - series: 'sluice_release_step{namespace="shop",name="web"}'
    values: '1x60 2x60 3x79'
  - series: 'sluice_release_step_started_timestamp_seconds{namespace="shop",name="web"}'
    values: '0x60 3660x60 7260x79'
  - series: 'sluice_release_phase{namespace="shop",name="web",phase="Progressing"}'
    values: '1x200'
  alert_rule_test:
  - eval_time: 100m
    alertname: SluiceCanaryStuck
  - eval_time: 160m
    alertname: SluiceCanaryStuck
    exp_alerts:
    - exp_labels: {severity: warning, namespace: shop, name: cart}
      exp_annotations:
        summary: "The canary of shop/cart has not moved from step 2 for two hours"
        description: "It is not waiting at a gate (that is Paused): its track may not become ready, or its checks not conclude."
`

// TestMonitoringPack: deploy/monitoring's alerting rules pass promtool's
// check and its evaluation against recorded series; the dashboard is JSON
// whose queries name only series the agent exports; kustomize builds it.
func TestMonitoringPack(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian's prometheus package) is needed: make testdeps installs it: %v", err)
	}
	b, err := os.ReadFile("../../deploy/monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	rules, err := yaml.JSONToYAML(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644)
	os.WriteFile(filepath.Join(dir, "rules_test.yaml"), []byte(ruleTests), 0o644)
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "rules_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err = os.ReadFile("../../deploy/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	metricsDoc, _ := os.ReadFile("../../docs/agent.md")
	series := regexp.MustCompile(`sluice_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range series.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if !strings.Contains(string(metricsDoc), "`"+base+"`") {
					t.Errorf("panel %q queries %s, which the agent does not export (docs/agent.md)", p.Title, name)
				}
			}
		}
	}
	kubectl, err := testcluster.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", "../../deploy/monitoring/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kind: PrometheusRule") || !strings.Contains(string(out), "grafana_dashboard: \"1\"") {
		t.Errorf("kubectl kustomize deploy/monitoring/: %v\n%s", err, out)
	}
}
