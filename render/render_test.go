package render

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGoldenExamples renders every example and compares the YAML with
// testdata/golden/<name>.yaml.
func TestGoldenExamples(t *testing.T) {
	fsys, err := NewDiskFS("../examples")
	if err != nil {
		t.Fatal(err)
	}
	files, err := v1alpha1.FindReleases(fsys, fsys.Root(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 7 {
		t.Fatalf("found %d example releases, want 7: %v", len(files), files)
	}
	var r Renderer
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		t.Run(name, func(t *testing.T) {
			p, res, err := r.Load(context.Background(), fsys, fsys.Root(), f, "")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".yaml", res.YAML)
			if res.Workload == nil || res.Workload.GetName() != p.Release.Spec.Workload.Name {
				t.Errorf("workload not located")
			}
			if p.Release.Spec.Traffic != nil && (res.Route == nil || res.Service == nil) {
				t.Errorf("route or service not located")
			}
			if !strings.HasPrefix(res.Digest, "sha256:") || !strings.HasPrefix(res.VersionDigest, "sha256:") || res.Digest == res.VersionDigest {
				t.Errorf("digests %q %q", res.Digest, res.VersionDigest)
			}
		})
	}
}

// checkGolden compares a render with testdata/golden/name (rewritten with
// -update).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("render (-golden +got):\n%s", diff)
	}
}

// repo writes files (path → content) under a temp dir and returns it.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const release = `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: app, namespace: shop}
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
    canary:
      steps:
      - setWeight: 10
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: app
        image: app:1
        envFrom: [{configMapRef: {name: app-config}}]
`

const service = `apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{port: 80}]
`

const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  rules:
  - backendRefs: [{name: app, port: 80}]
`

const config = `apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {GREETING: hello}
`

const other = `apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
data: {A: b}
`

func appRepo(overrides map[string]string) map[string]string {
	files := map[string]string{
		"releases/shop/app/release.yaml":       release,
		"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml]\nnamespace: shop\n",
		"releases/shop/app/deployment.yaml":    deployment,
		"releases/shop/app/service.yaml":       service,
		"releases/shop/app/route.yaml":         route,
		"releases/shop/app/config.yaml":        config,
		"releases/shop/app/other.yaml":         other,
	}
	for k, v := range overrides {
		if v == "" {
			delete(files, k)
		} else {
			files[k] = v
		}
	}
	return files
}

func load(t *testing.T, r *Renderer, dir, key string) (*Result, error) {
	t.Helper()
	fsys, err := NewDiskFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/shop/app/release.yaml", key)
	return res, err
}

// TestRefused covers inputs that must not render, each with the message
// that says why and where.
func TestRefused(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"traversal in resources", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [../../../../../../etc/passwd]\n",
		}, "kustomize build failed"},
		{"absolute resource", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [/etc/hostname]\n",
		}, `resources[0]: source "/etc/hostname" refused: it is absolute`},
		{"remote base", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources:\n- deployment.yaml\n- github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1\n",
		}, `releases/shop/app/kustomization.yaml:3: resources[1]: source "github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1" refused`},
		{"remote file", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources:\n- https://example.com/app.yaml\n",
		}, `releases/shop/app/kustomization.yaml:2: resources[0]: source "https://example.com/app.yaml" refused: it names a URL`},
		{"remote base in a local base", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [../../../base]\n",
			"base/kustomization.yaml":              "resources: [git@github.com:org/repo.git]\n",
		}, `base/kustomization.yaml:1: resources[0]: source "git@github.com:org/repo.git" refused`},
		{"helm", map[string]string{
			"releases/shop/app/kustomization.yaml": "helmCharts:\n- name: x\n",
		}, "releases/shop/app/kustomization.yaml:1: helmCharts: Helm chart inflation is disabled"},
		{"missing workload", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [service.yaml, route.yaml]\n",
		}, `releases/shop/app/release.yaml:5: spec.workload.name: Deployment "app" is not in the render of releases/shop/app (found: none)`},
		{"missing route", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
		}, `releases/shop/app/release.yaml:6: spec.traffic.route: no HTTPRoute or GRPCRoute "app" in the render of releases/shop/app (found: none)`},
		{"missing service", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, route.yaml]\n",
		}, `releases/shop/app/release.yaml:6: spec.traffic.service: Service "app" is not in the render of releases/shop/app`},
		{"route without the service", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "name: app, port", "name: other, port", 1),
		}, `spec.traffic.service: HTTPRoute "app" has no backendRef to Service "app"`},
		{"route match not an object", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "  - backendRefs:", "  - matches: [\"x\"]\n    backendRefs:", 1),
		}, `spec.traffic.route: HTTPRoute "app": spec.rules.matches: want an object, got string`},
		{"route filters not a list", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "  - backendRefs:", "  - filters: {type: RequestMirror}\n    backendRefs:", 1),
		}, `spec.rules.filters: want a list, got object`},
		{"route rule not an object", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "  - backendRefs: [{name: app, port: 80}]", "  - 42", 1),
		}, `spec.rules: want an object, got number`},
		{"route field unknown to the Gateway API types", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "  - backendRefs:", "  - retryBudget: 3\n    backendRefs:", 1),
		}, `spec.traffic.route: HTTPRoute "app": unknown field "spec.rules[0].retryBudget"`},
		{"service in another namespace", map[string]string{
			"releases/shop/app/route.yaml": strings.Replace(route, "{name: app, port: 80}", "{name: app, namespace: other, port: 80}", 1),
		}, `spec.traffic.service: HTTPRoute "app" has no backendRef to Service "app" in namespace shop`},
		{"header route on a header the route matches", map[string]string{
			"releases/shop/app/release.yaml": strings.Replace(release, "      - setWeight: 10\n",
				"      - setHeaderRoute: {name: beta, match: {headers: [{name: x-beta, value: \"1\"}]}}\n      - setWeight: 10\n", 1),
			"releases/shop/app/route.yaml": strings.Replace(route, "  - backendRefs:", "  - matches: [{headers: [{name: X-Beta, value: \"0\"}]}]\n    backendRefs:", 1),
		}, `spec.traffic.route: HTTPRoute "app" after step 1 of 2 (setHeaderRoute): spec.rules[0].matches[0].headers: "X-Beta" and "x-beta" are the same header`},
		{"header routes past 16 rules", map[string]string{
			"releases/shop/app/release.yaml": strings.Replace(release, "      - setWeight: 10\n",
				"      - setHeaderRoute: {name: beta, match: {headers: [{name: x-beta, value: \"1\"}]}}\n      - setWeight: 10\n", 1),
			"releases/shop/app/route.yaml": route + strings.Repeat("  - backendRefs: [{name: app, port: 80}]\n", 8),
		}, `after step 1 of 2 (setHeaderRoute): spec.rules: 18 rules; the Gateway API allows 16`},
		{"no kustomization", map[string]string{
			"releases/shop/app/kustomization.yaml": "",
		}, `spec.source.path: releases/shop/app holds no kustomization.yaml`},
		{"kustomize error", map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [nothere.yaml]\n",
		}, `releases/shop/app/kustomization.yaml: kustomize build failed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Renderer
			_, err := load(t, &r, repo(t, appRepo(tt.files)), "")
			if err == nil {
				t.Fatal("rendered without error")
			}
			var list v1alpha1.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not located: %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := repo(t, appRepo(map[string]string{
		"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, link.yaml]\n",
	}))
	if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(dir, "releases/shop/app/link.yaml")); err != nil {
		t.Fatal(err)
	}
	var r Renderer
	_, err := load(t, &r, dir, "")
	if err == nil || !strings.Contains(err.Error(), "leaves the repository") {
		t.Fatalf("symlink out of the repository: err = %v", err)
	}

	// A symlink inside the repository is fine.
	if err := os.Remove(filepath.Join(dir, "releases/shop/app/link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("other.yaml", filepath.Join(dir, "releases/shop/app/link.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, &r, dir, ""); err != nil {
		t.Fatalf("symlink inside the repository: %v", err)
	}

	// A symlinked source directory that leaves the repository.
	dir2 := repo(t, map[string]string{"releases/shop/app/release.yaml": strings.Replace(release, "spec:\n", "spec:\n  source: {path: src}\n", 1)})
	if err := os.Symlink(outside, filepath.Join(dir2, "releases/shop/app/src")); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, &r, dir2, ""); err == nil {
		t.Fatal("symlinked source directory outside the repository rendered")
	}
}

func TestObjectLimit(t *testing.T) {
	r := Renderer{MaxObjects: 3}
	_, err := load(t, &r, repo(t, appRepo(nil)), "")
	if err == nil || !strings.Contains(err.Error(), "renders 5 objects, over the limit of 3") {
		t.Fatalf("err = %v", err)
	}
}

func TestDigests(t *testing.T) {
	var r Renderer
	base, err := load(t, &r, repo(t, appRepo(nil)), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Config) != 1 || base.Config[0].GetName() != "app-config" {
		t.Fatalf("referenced config = %v", base.Config)
	}
	tests := []struct {
		name        string
		files       map[string]string
		sameDigest  bool
		sameVersion bool
	}{
		{"same input", nil, true, true},
		{"objects reordered", map[string]string{"releases/shop/app/kustomization.yaml": "resources: [other.yaml, config.yaml, route.yaml, service.yaml, deployment.yaml]\nnamespace: shop\n"}, true, true},
		{"image changed", map[string]string{"releases/shop/app/deployment.yaml": strings.Replace(deployment, "app:1", "app:2", 1)}, false, false},
		{"referenced config changed", map[string]string{"releases/shop/app/config.yaml": strings.Replace(config, "hello", "bye", 1)}, false, false},
		{"replicas changed", map[string]string{"releases/shop/app/deployment.yaml": strings.Replace(deployment, "replicas: 2", "replicas: 5", 1)}, false, true},
		{"unrelated object changed", map[string]string{"releases/shop/app/other.yaml": strings.Replace(other, "A: b", "A: c", 1)}, false, true},
		{"weights changed", map[string]string{"releases/shop/app/release.yaml": strings.Replace(release, "setWeight: 10", "setWeight: 20", 1)}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := load(t, &r, repo(t, appRepo(tt.files)), "")
			if err != nil {
				t.Fatal(err)
			}
			if (res.Digest == base.Digest) != tt.sameDigest {
				t.Errorf("digest same = %v, want %v", res.Digest == base.Digest, tt.sameDigest)
			}
			if (res.VersionDigest == base.VersionDigest) != tt.sameVersion {
				t.Errorf("version same = %v, want %v", res.VersionDigest == base.VersionDigest, tt.sameVersion)
			}
		})
	}
}

func TestCache(t *testing.T) {
	var r Renderer
	dir := repo(t, appRepo(nil))
	first, err := load(t, &r, dir, "tree-1")
	if err != nil {
		t.Fatal(err)
	}
	// Change the files but keep the key: the cache answers.
	if err := os.WriteFile(filepath.Join(dir, "releases/shop/app/deployment.yaml"), []byte(strings.Replace(deployment, "app:1", "app:2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := load(t, &r, dir, "tree-1")
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Digest != first.Digest || r.Hits() != 1 {
		t.Fatalf("cache miss: cached=%v hits=%d", second.Cached, r.Hits())
	}
	// The cache keeps JSON and decodes it for each hit: the same objects,
	// numbers as int64 as the build made them, and the caller's own.
	if !reflect.DeepEqual(objectMaps(first.Objects), objectMaps(second.Objects)) || second.Workload == nil {
		t.Fatalf("a cached render differs from the build:\n%v\n%v", objectMaps(first.Objects), objectMaps(second.Objects))
	}
	if n, _, _ := unstructured.NestedInt64(second.Workload.Object, "spec", "replicas"); n == 0 {
		t.Fatal("spec.replicas did not come back as an int64")
	}
	second.Workload.SetName("changed-by-the-caller")
	again, err := load(t, &r, dir, "tree-1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Workload.GetName() == "changed-by-the-caller" {
		t.Fatal("a caller's change to a cached render reached the next caller")
	}
	third, err := load(t, &r, dir, "tree-2")
	if err != nil {
		t.Fatal(err)
	}
	if third.Cached || third.VersionDigest == first.VersionDigest {
		t.Fatal("a new key did not render anew")
	}
}

func objectMaps(objs []*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		out = append(out, o.Object)
	}
	return out
}

// TestConcurrentRenders renders in parallel; with -race it proves the
// build lock and the cache are sound.
func TestConcurrentRenders(t *testing.T) {
	var r Renderer
	dir := repo(t, appRepo(nil))
	var wg sync.WaitGroup
	digests := make([]string, 8)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := load(t, &r, dir, []string{"", "k"}[i%2])
			if err != nil {
				t.Error(err)
				return
			}
			digests[i] = res.Digest
		}()
	}
	wg.Wait()
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("digests differ: %v", digests)
		}
	}
}
