package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helmBenchRepo is a release of a chart that renders 200 objects: 50
// services, each a Deployment, a Service, a ConfigMap and an HTTPRoute,
// plus the release's own workload "app".
func helmBenchRepo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	files := map[string]string{
		"charts/fleet/Chart.yaml":  "apiVersion: v2\nname: fleet\nversion: 1.0.0\n",
		"charts/fleet/values.yaml": "count: 50\nimage: registry.example.com/app:1.0\n",
		"charts/fleet/templates/fleet.yaml": `{{- range $i := until (int .Values.count) }}
{{- $name := ternary "app" (printf "svc-%03d" $i) (eq $i 0) }}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ $name }}, labels: {app: {{ $name }}}}
spec:
  replicas: 2
  selector: {matchLabels: {app: {{ $name }}}}
  template:
    metadata: {labels: {app: {{ $name }}}}
    spec:
      containers:
      - name: app
        image: {{ $.Values.image }}
        envFrom: [{configMapRef: {name: {{ $name }}}}]
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: {{ $name }}}
spec:
  selector: {app: {{ $name }}}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ $name }}}
data: {INDEX: {{ $i | quote }}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: {{ $name }}}
spec:
  parentRefs: [{name: public}]
  rules: [{backendRefs: [{name: {{ $name }}, port: 80}]}]
{{- end }}
`,
		"releases/bench/app/release.yaml": "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: app, namespace: bench}\nspec:\n  source: {helm: {chart: charts/fleet}}\n  workload: {kind: Deployment, name: app}\n  strategy: {rolling: {}}\n",
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkHelm200 renders a 200-object chart four ways, side by side:
// sluice uncached (the chart alone; the chart under a kustomization),
// sluice from its cache, and the
// helm binary of the same SDK version (`helm template`, a process per
// render, as kustomize's helmCharts runs it).
func BenchmarkHelm200(b *testing.B) {
	dir := helmBenchRepo(b)
	var r Renderer
	if res := benchLoad(b, &r, dir, ""); len(res.Objects) != 200 {
		b.Fatalf("%d objects, want 200", len(res.Objects))
	}
	b.Run("sluice", func(b *testing.B) {
		for b.Loop() {
			benchLoad(b, &r, dir, "")
		}
	})
	b.Run("sluice-cached", func(b *testing.B) {
		benchLoad(b, &r, dir, "tree")
		for b.Loop() {
			if !benchLoad(b, &r, dir, "tree").Cached {
				b.Fatal("cache miss")
			}
		}
	})
	// With a kustomization over the chart (labels on every object):
	// kustomize's own cost on 200 objects comes on top.
	kdir := helmBenchRepo(b)
	os.WriteFile(filepath.Join(kdir, "releases/bench/app/kustomization.yaml"), []byte("labels:\n- pairs: {team: bench}\n"), 0o644)
	b.Run("sluice-kustomized", func(b *testing.B) {
		for b.Loop() {
			benchLoad(b, &r, kdir, "")
		}
	})
	helm := helmBinary(b)
	b.Run("helm-template", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command(helm, "template", "app", filepath.Join(dir, "charts", "fleet"), "-n", "bench").Output()
			if err != nil || strings.Count(string(out), "\nkind: ") < 200 {
				b.Fatalf("helm template: %v", err)
			}
		}
	})
}
