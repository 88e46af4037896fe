package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// helmTemplate renders charts/sluice with the Helm SDK as `helm template
// sluice charts/sluice -n sluice-system` does: client-only, no cluster.
func helmTemplate(t *testing.T, values map[string]any) (string, error) {
	t.Helper()
	ch, err := loader.Load("../../charts/sluice")
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace, install.Replace = "sluice", "sluice-system", true
	rel, err := install.Run(ch, values)
	if err != nil {
		return "", err
	}
	return rel.(*release.Release).Manifest, nil
}

// TestHelmChart: charts/sluice renders, with the Helm SDK, the objects
// deploy/ builds for each mode and credential kind (modulo labels and the
// ConfigMap's hash suffix), and the API server accepts them.
func TestHelmChart(t *testing.T) {
	c, kubectl := installCluster(t)
	for _, tc := range []struct {
		dir    string
		values map[string]any
	}{
		{"../../deploy/", map[string]any{"createNamespace": true}},
		{"../../deploy/ssh/", map[string]any{"createNamespace": true, "git": map[string]any{"repo": "ssh://git@git.example.com/org/deploy.git"}}},
		{"../../deploy/tenancy/", map[string]any{"createNamespace": true, "mode": "tenancy"}},
	} {
		chart, err := helmTemplate(t, tc.values)
		if err != nil {
			t.Fatalf("%s: helm template: %v", tc.dir, err)
		}
		built, err := exec.Command(kubectl, "kustomize", tc.dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", tc.dir, err)
		}
		// The generated ConfigMap's name carries a hash; the chart's
		// carries none (a checksum annotation rolls its pods instead).
		hashed := regexp.MustCompile(`name: (sluice-[a-z0-9]{10})\n`).FindSubmatch(built)
		if hashed == nil {
			t.Fatalf("%s: no generated ConfigMap", tc.dir)
		}
		built = []byte(strings.ReplaceAll(string(built), string(hashed[1]), "sluice"))
		want, got := comparable(t, built), comparable(t, []byte(chart))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("charts/sluice with %v differs from %s (-kustomize +helm):\n%s", tc.values, tc.dir, diff)
		}
		if !strings.Contains(chart, "checksum/config: ") {
			t.Errorf("%v: the pods carry no checksum of their config", tc.values)
		}
		apply := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-")
		apply.Stdin = strings.NewReader(chart)
		if out, err := apply.CombinedOutput(); err != nil {
			t.Errorf("%v: the API server refuses the chart: %v\n%s", tc.values, err, out)
		}
	}
	// Settings reach the ConfigMap; a bad one is refused by name.
	chart, err := helmTemplate(t, map[string]any{"namespaces": []any{"shop", "web"}, "config": map[string]any{"SLUICE_VERIFY_COMMITS": "head"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`SLUICE_NAMESPACES: "shop,web"`, `SLUICE_VERIFY_COMMITS: "head"`} {
		if !strings.Contains(chart, want) {
			t.Errorf("the chart's ConfigMap lacks %s", want)
		}
	}
	for field, values := range map[string]map[string]any{
		"mode":          {"mode": "everything"},
		"config.verify": {"config": map[string]any{"verify": "head"}},
	} {
		if _, err := helmTemplate(t, values); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("values %v: want an error naming %s, got %v", values, field, err)
		}
	}
}

// comparable keys the objects of a manifest stream by kind/namespace/name,
// with what may differ between the chart and deploy/ taken out: labels
// other than sluice's own and Pod Security's, annotations, and selectors
// (each install's selectors must match its own pods, checked here).
func comparable(t *testing.T, manifests []byte) map[string]map[string]any {
	t.Helper()
	objs, err := testcluster.DecodeYAML(manifests)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, o := range objs {
		if sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels"); sel != nil {
			pods, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			for k, v := range sel {
				if pods != nil && pods[k] != v {
					t.Errorf("%s/%s: selector %s=%s does not match its pods", o.GetKind(), o.GetName(), k, v)
				}
			}
		}
		labels := map[string]string{}
		for k, v := range o.GetLabels() {
			if strings.HasPrefix(k, "sluice.dev/") || strings.HasPrefix(k, "pod-security.kubernetes.io/") {
				labels[k] = v
			}
		}
		o.SetLabels(labels)
		o.SetAnnotations(nil)
		for _, path := range [][]string{{"spec", "selector"}, {"spec", "podSelector"}, {"spec", "template", "metadata"}} {
			unstructured.RemoveNestedField(o.Object, path...)
		}
		out[fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())] = o.Object
	}
	return out
}
