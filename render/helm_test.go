package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// helmCase is one chart rendered by sluice and by `helm template`.
type helmCase struct {
	name string
	// chart is a directory under testdata/charts, or made by make.
	chart string
	make  func(t *testing.T, dir string) // writes the chart into dir
	// values are values files written beside release.yaml.
	values      []string
	set         map[string]string
	releaseName string
	includeCRDs bool
	hooks       v1alpha1.HookPolicy
	caps        Capabilities
	// wantErr: both fail, each saying this (sluice only when helmOnly is
	// false).
	wantErr string
	// sluiceOnly: helm renders it, sluice refuses it with wantErr.
	sluiceOnly bool
}

// created makes a chart the way `helm create` does.
func created(name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		made, err := chartutil.Create(name, filepath.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if made != dir {
			if err := os.Rename(made, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// withPackagedDependency makes a chart with a dependency vendored as a
// .tgz under charts/, as `helm dependency build` leaves it.
func withPackagedDependency(t *testing.T, dir string) {
	created("shop")(t, dir)
	dep := t.TempDir()
	made, err := chartutil.Create("db", dep)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(made)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := chartutil.Save(ch, filepath.Join(dir, "charts")); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "Chart.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "dependencies:\n- name: db\n  version: %s\n", ch.Metadata.Version)
	f.Close()
}

var helmCases = []helmCase{
	{name: "created", make: created("app")},
	{name: "created-values", make: created("app"), values: []string{"autoscaling: {enabled: true, maxReplicas: 7}\ningress: {enabled: true, hosts: [{host: shop.example.com, paths: [{path: /, pathType: Prefix}]}]}\n"}, set: map[string]string{"image.tag": "1.27.3"}},
	{name: "created-httproute", make: created("app"), set: map[string]string{"httpRoute.enabled": "true", "replicaCount": "4"}},
	{name: "created-two-values-files", make: created("app"), values: []string{"replicaCount: 2\npodAnnotations: {a: one}\n", "podAnnotations: {b: two}\nreplicaCount: 5\n"}},
	{name: "created-set-escaping", make: created("app"), set: map[string]string{"podAnnotations.note": "a,b", "tolerations[0].key": "dedicated", "tolerations[0].operator": "Exists"}},
	{name: "created-release-name", make: created("app"), releaseName: "web-frontend"},
	{name: "packaged-dependency", make: withPackagedDependency, set: map[string]string{"db.replicaCount": "3"}},
	{name: "subchart-library-globals", chart: "parent"},
	{name: "subchart-values", chart: "parent", set: map[string]string{"child.greeting": "hi", "global.team": "search", "off.enabled": "true"}},
	// No capabilities given: sluice's DefaultKubeVersion against helm's own.
	{name: "functions", chart: "funcs"},
	{name: "capabilities", chart: "funcs", caps: Capabilities{KubeVersion: "v1.30.2", APIVersions: []string{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"}}},
	{name: "toyaml-list", chart: "funcs", values: []string{"extraEnv:\n- {name: A, value: \"1\"}\n- name: B\n  valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"}, set: map[string]string{"name": "other"}},
	{name: "required", chart: "funcs", set: map[string]string{"name": ""}, wantErr: "name is required"},
	{name: "fail", chart: "funcs", set: map[string]string{"mustFail": "true"}, wantErr: "mustFail is set: this chart refuses to render"},
	{name: "kube-version-too-old", chart: "funcs", caps: Capabilities{KubeVersion: "v1.19.0"}, wantErr: "incompatible with Kubernetes v1.19.0"},
	{name: "crds-and-hooks", chart: "crds-hooks", includeCRDs: true, hooks: v1alpha1.HooksInclude},
	{name: "hooks-excluded", chart: "crds-hooks", hooks: v1alpha1.HooksExclude},
	{name: "hooks-refused", chart: "crds-hooks", wantErr: "templates/migrate.yaml (Job/app-migrate)", sluiceOnly: true},
	{name: "schema", chart: "schema", set: map[string]string{"replicas": "3"}},
	{name: "schema-refused", chart: "schema", set: map[string]string{"replicas": "20"}, wantErr: "maximum"},
	{name: "ranges-tpl-dict", chart: "ranges", set: map[string]string{"services.cache.port": "6379", "services.cache.replicas": "1"}},
	{name: "subdirectories-notes-partials", chart: "subdirs"},
	{name: "capability-gated-old", chart: "gated", caps: Capabilities{KubeVersion: "v1.18.0"}},
	{name: "capability-gated-new", chart: "gated", caps: Capabilities{KubeVersion: "v1.33.1", APIVersions: []string{"networking.k8s.io/v1/Ingress"}}},
	{name: "empty-documents", chart: "emptydocs"},
	{name: "tags-globals-import-values", chart: "globals"},
	{name: "tags-off", chart: "globals", set: map[string]string{"tags.back": "false", "global.region": "us-east-2"}},
}

// helmCaseRepo lays a case out as a repository: the chart under charts/,
// its values files beside releases/shop/app/release.yaml.
func helmCaseRepo(t *testing.T, c helmCase) (dir string, p *v1alpha1.Parsed, valueFiles []string) {
	t.Helper()
	dir = t.TempDir()
	chartDir := filepath.Join(dir, "charts", "c")
	if c.make != nil {
		c.make(t, chartDir)
	} else if err := os.CopyFS(chartDir, os.DirFS(filepath.Join("testdata", "charts", c.chart))); err != nil {
		t.Fatal(err)
	}
	var rel bytes.Buffer
	fmt.Fprintf(&rel, "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: app, namespace: shop}\nspec:\n  source:\n    helm:\n      chart: charts/c\n")
	if len(c.values) > 0 {
		rel.WriteString("      values:\n")
	}
	for i, v := range c.values {
		name := fmt.Sprintf("values-%d.yaml", i)
		full := filepath.Join(dir, "releases", "shop", "app", name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&rel, "      - %s\n", name)
		valueFiles = append(valueFiles, full)
	}
	if len(c.set) > 0 {
		rel.WriteString("      set:\n")
		for k, v := range c.set {
			fmt.Fprintf(&rel, "        %q: %q\n", k, v)
		}
	}
	if c.releaseName != "" {
		fmt.Fprintf(&rel, "      releaseName: %s\n", c.releaseName)
	}
	if c.includeCRDs {
		rel.WriteString("      includeCRDs: true\n")
	}
	if c.hooks != "" {
		fmt.Fprintf(&rel, "      hooks: %s\n", c.hooks)
	}
	rel.WriteString("  workload: {kind: Deployment, name: app}\n  strategy: {rolling: {}}\n")
	file := "releases/shop/app/release.yaml"
	if err := os.MkdirAll(filepath.Join(dir, "releases", "shop", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), rel.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := v1alpha1.ParseRelease(file, rel.Bytes())
	if err != nil {
		t.Fatalf("%s\n%s", err, rel.Bytes())
	}
	return dir, p, valueFiles
}

// helmBinary is the helm built from the Go module proxy into the
// test-binary cache (hack/testbin.sh), used for comparisons only.
func helmBinary(t testing.TB) string {
	t.Helper()
	dir, err := testcluster.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run make testbin", err)
	}
	return bin
}

// documents splits a manifest stream into its documents, sorted, so two
// streams compare whatever order they were printed in.
func documents(s string) []string {
	var out []string
	for _, d := range strings.Split("\n"+strings.TrimSpace(s)+"\n", "\n---\n") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// helmCLI runs `helm template` on a case laid out by helmCaseRepo.
func helmCLI(t *testing.T, helm, dir string, p *v1alpha1.Parsed, c helmCase, valueFiles []string) (stdout []byte, stderr string, err error) {
	t.Helper()
	name := p.Release.Spec.Source.Helm.Name("app")
	args := []string{"template", name, filepath.Join(dir, "charts", "c"), "-n", "shop", "--skip-tests"}
	for _, f := range valueFiles {
		args = append(args, "-f", f)
	}
	for k, v := range c.set {
		args = append(args, "--set", k+"="+strings.NewReplacer(`\`, `\\`, ",", `\,`).Replace(v))
	}
	if c.includeCRDs {
		args = append(args, "--include-crds")
	}
	if c.hooks == v1alpha1.HooksExclude {
		args = append(args, "--no-hooks")
	}
	if c.caps.KubeVersion != "" {
		args = append(args, "--kube-version", c.caps.KubeVersion)
	}
	if len(c.caps.APIVersions) > 0 {
		args = append(args, "--api-versions", strings.Join(c.caps.APIVersions, ","))
	}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	return out, errBuf.String(), err
}

// TestHelmTemplateParity: what sluice renders of a chart is what `helm
// template` prints for the same chart, values, release name, namespace and
// capabilities — document for document, byte for byte — and what helm
// refuses, sluice refuses with the same words.
func TestHelmTemplateParity(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range helmCases {
		t.Run(c.name, func(t *testing.T) {
			dir, p, valueFiles := helmCaseRepo(t, c)
			fsys, err := NewDiskFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			r := &Renderer{Capabilities: func() Capabilities { return c.caps }}
			got, err := r.helmTemplate(newBudgetFS(fsys, Budgets{}, func(p string) string { return p }), fsys.Root(), p, Budgets{})

			want, stderr, helmErr := helmCLI(t, helm, dir, p, c, valueFiles)

			switch {
			case c.wantErr != "" && c.sluiceOnly:
				if helmErr != nil {
					t.Fatalf("helm template: %v\n%s", helmErr, stderr)
				}
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("sluice: want an error saying %q, got %v", c.wantErr, err)
				}
			case c.wantErr != "":
				if helmErr == nil || !strings.Contains(stderr, c.wantErr) {
					t.Errorf("helm template: want an error saying %q, got %v %s", c.wantErr, helmErr, stderr)
				}
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("sluice: want an error saying %q, got %v", c.wantErr, err)
				}
			default:
				if helmErr != nil {
					t.Fatalf("helm template: %v\n%s", helmErr, stderr)
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(documents(string(want)), documents(string(got))); diff != "" {
					t.Errorf("sluice differs from helm template (-helm +sluice):\n%s", diff)
				}
				if len(documents(string(got))) == 0 {
					t.Error("nothing rendered")
				}
			}
		})
	}
}

// TestHelmRenderParity: `sluice render` of a Helm release, through its
// kustomization, holds the objects `helm template` prints, field for field.
func TestHelmRenderParity(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range helmCases {
		if c.wantErr != "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			dir, p, valueFiles := helmCaseRepo(t, c)
			fsys, err := NewDiskFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			r := &Renderer{Capabilities: func() Capabilities { return c.caps }}
			_, res, err := r.Load(context.Background(), fsys, fsys.Root(), p.File, "")
			if err != nil && !strings.Contains(err.Error(), "is not in the render") {
				t.Fatal(err)
			}
			var got []*unstructured.Unstructured
			if res != nil {
				got = res.Objects
				checkGolden(t, "helm-"+c.name+".yaml", res.YAML)
			} else {
				// No Deployment "app" in this chart: render the objects
				// through kustomize all the same.
				manifest, err := r.helmTemplate(fsys, fsys.Root(), p, Budgets{})
				if err != nil {
					t.Fatal(err)
				}
				ofs, _, err := withChartResource(fsys, filepath.Join(fsys.Root(), p.SourceDir()), manifest)
				if err != nil {
					t.Fatal(err)
				}
				if got, _, err = kustomize(ofs, filepath.Join(fsys.Root(), p.SourceDir())); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, err := helmCLI(t, helm, dir, p, c, valueFiles)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr)
			}
			want, err := testcluster.DecodeYAML(out)
			if err != nil {
				t.Fatal(err)
			}
			byID := func(objs []*unstructured.Unstructured) map[string]map[string]any {
				m := map[string]map[string]any{}
				for _, o := range objs {
					// Through JSON: numbers compare as numbers, not as
					// the decoder's int64 or float64.
					var v map[string]any
					b, _ := json.Marshal(o.Object)
					json.Unmarshal(b, &v)
					m[ObjectID(o)] = v
				}
				return m
			}
			if diff := cmp.Diff(byID(want), byID(got)); diff != "" {
				t.Errorf("sluice render differs from helm template (-helm +sluice):\n%s", diff)
			}
		})
	}
}

// TestHelmRelease: a Helm source goes through the release's kustomization
// (patches, images, namespace apply to the chart's objects), the workload
// is found in it, and the version digest follows the chart's values.
func TestHelmRelease(t *testing.T) {
	c := helmCase{name: "kustomized", make: created("app"), set: map[string]string{"httpRoute.enabled": "true"}}
	dir, _, _ := helmCaseRepo(t, c)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "releases", "shop", "app", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "namespace: shop\nimages:\n- {name: nginx, newName: registry.example.com/nginx, newTag: \"1.27\"}\npatches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: app}\n    spec: {template: {metadata: {annotations: {patched: \"yes\"}}}}\n")
	fsys, err := NewDiskFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	var r Renderer
	_, res, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/shop/app/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	y := string(res.YAML)
	for _, want := range []string{"image: registry.example.com/nginx:1.27", "patched: \"yes\"", "namespace: shop", "kind: HTTPRoute"} {
		if !strings.Contains(y, want) {
			t.Errorf("the render lacks %q:\n%s", want, y)
		}
	}
	if res.Workload == nil || res.Workload.GetName() != "app" {
		t.Fatalf("workload not found")
	}
	// A values change that reaches the pod template is a new version; one
	// that does not is the same version.
	first := res.VersionDigest
	version := func(extra string) string {
		t.Helper()
		b, _ := os.ReadFile(filepath.Join(dir, "releases", "shop", "app", "release.yaml"))
		s := strings.Replace(string(b), "      set:\n", "      set:\n"+extra, 1)
		write("release.yaml", s)
		defer write("release.yaml", string(b))
		_, res, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/shop/app/release.yaml", "")
		if err != nil {
			t.Fatal(err)
		}
		return res.VersionDigest
	}
	if v := version("        podAnnotations.release: \"two\"\n"); v == first {
		t.Error("a pod annotation from the values did not change the version")
	}
	if v := version("        service.type: \"NodePort\"\n"); v != first {
		t.Error("a Service type from the values changed the version")
	}
	// A kustomization naming the chart's file itself is refused, not
	// built twice.
	write("helm-chart.sluice.yaml", "kind: ConfigMap\n")
	if _, _, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/shop/app/release.yaml", ""); err == nil || !strings.Contains(err.Error(), ChartResource) {
		t.Errorf("a file named %s: %v", ChartResource, err)
	}
}

// TestHelmListsAndDuplicates: a chart's List is its items, with or
// without a kustomization over the chart (kustomize expands Lists too); an
// object twice is refused either way.
func TestHelmListsAndDuplicates(t *testing.T) {
	list := "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: two}}\n"
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec: {containers: [{name: app, image: app:1}]}\n"
	for _, kustomized := range []bool{false, true} {
		files := map[string]string{
			"charts/c/Chart.yaml":            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
			"charts/c/templates/list.yaml":   list,
			"charts/c/templates/deploy.yaml": deploy,
			"releases/shop/app/release.yaml": "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: app, namespace: shop}\nspec:\n  workload: {kind: Deployment, name: app}\n  strategy: {rolling: {}}\n  source:\n    helm:\n      chart: charts/c\n",
		}
		if kustomized {
			files["releases/shop/app/kustomization.yaml"] = "namespace: shop\n"
		}
		var r Renderer
		res, err := load(t, &r, repo(t, files), "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range res.Objects {
			ids = append(ids, o.GetKind()+"/"+o.GetName())
		}
		sort.Strings(ids)
		if got := strings.Join(ids, " "); got != "ConfigMap/one ConfigMap/two Deployment/app" {
			t.Errorf("kustomized %v: objects %s", kustomized, got)
		}
		files["charts/c/templates/again.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n"
		if _, err := load(t, &r, repo(t, files), ""); err == nil {
			t.Errorf("kustomized %v: ConfigMap/one twice was accepted", kustomized)
		}
	}
}

// TestHelmRefused: charts and Helm sources that must not render, each
// failing its release with a message that says what and where, and never
// the agent.
func TestHelmRefused(t *testing.T) {
	chart := "apiVersion: v2\nname: c\nversion: 0.1.0\n"
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string
		helm    string // the spec.source.helm block's fields
		symlink [2]string
		want    string
	}{
		{"random value", map[string]string{"charts/c/templates/s.yaml": "kind: Secret\napiVersion: v1\nmetadata: {name: s}\nstringData: {p: {{ randAlphaNum 16 }}}\n"}, "chart: charts/c", [2]string{},
			"randAlphaNum is not deterministic"},
		{"the clock", map[string]string{"charts/c/templates/s.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: s, annotations: {at: {{ now | quote }}}}\n"}, "chart: charts/c", [2]string{},
			"now is not deterministic"},
		{"until bomb", map[string]string{"charts/c/templates/s.yaml": "{{ range until 100000 }}{{ range until 100000 }}x{{ end }}{{ end }}\n"}, "chart: charts/c", [2]string{},
			"generated more than 4000000 elements"},
		{"repeat bomb", map[string]string{"charts/c/templates/s.yaml": "{{ repeat 1000000000 \"x\" }}\n"}, "chart: charts/c", [2]string{},
			"generated more than"},
		{"string doubling", map[string]string{"charts/c/templates/s.yaml": "{{ $x := \"aaaaaaaa\" }}{{ range until 40 }}{{ $x = print $x $x }}{{ end }}{{ len $x }}\n"}, "chart: charts/c", [2]string{},
			"ran out of its memory"},
		{"values alias bomb", map[string]string{"charts/c/templates/s.yaml": "", "releases/shop/app/v.yaml": bomb}, "chart: charts/c\n      values: [v.yaml]", [2]string{},
			"releases/shop/app/v.yaml: a YAML document expands to more than"},
		{"chart values alias bomb", map[string]string{"charts/c/values.yaml": bomb}, "chart: charts/c", [2]string{},
			"charts/c/values.yaml: a YAML document expands to more than"},
		{"symlink out of the repository", map[string]string{}, "chart: charts/c", [2]string{"/etc/passwd", "charts/c/templates/passwd.yaml"},
			"leaves the repository"},
		{"missing chart", map[string]string{}, "chart: charts/none", [2]string{},
			"release.yaml:9: spec.source.helm.chart: charts/none: no chart directory"},
		{"missing dependency", map[string]string{"charts/c/Chart.yaml": chart + "dependencies: [{name: db, version: 1.0.0}]\n"}, "chart: charts/c", [2]string{},
			"missing in charts/ directory: db"},
		{"missing values file", map[string]string{}, "chart: charts/c\n      values: [nope.yaml]", [2]string{},
			"spec.source.helm.values[0]: nope.yaml: no such file"},
		{"a remote chart", map[string]string{}, "chart: oci://registry.example.com/charts/c", [2]string{},
			"spec.source.helm.chart: must be a path in this repository"},
		{"leaving the repository", map[string]string{}, "chart: ../../../../elsewhere", [2]string{},
			"spec.source.helm.chart: leaves the repository"},
		{"bad hooks policy", map[string]string{}, "chart: charts/c\n      hooks: run", [2]string{},
			"spec.source.helm.hooks: \"run\": want refuse, include or exclude"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"charts/c/Chart.yaml":            chart,
				"releases/shop/app/release.yaml": "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: app, namespace: shop}\nspec:\n  workload: {kind: Deployment, name: app}\n  strategy: {rolling: {}}\n  source:\n    helm:\n      " + tc.helm + "\n",
			}
			for k, v := range tc.files {
				files[k] = v
			}
			dir := repo(t, files)
			if tc.symlink[0] != "" {
				os.MkdirAll(filepath.Join(dir, filepath.Dir(tc.symlink[1])), 0o755)
				if err := os.Symlink(tc.symlink[0], filepath.Join(dir, tc.symlink[1])); err != nil {
					t.Fatal(err)
				}
			}
			var r Renderer
			_, err := load(t, &r, dir, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
		})
	}
}

// TestHelmRenderTimeLimit: a chart whose templates run for ever (include
// recursion that branches: bounded in depth by Helm, not in calls) is
// killed at the render's time budget; the release fails, the agent goes
// on.
func TestHelmRenderTimeLimit(t *testing.T) {
	dir := repo(t, map[string]string{
		"charts/c/Chart.yaml":            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"charts/c/templates/_r.tpl":      "{{- define \"r\" -}}{{- if gt (int .) 0 -}}{{- include \"r\" (sub (int .) 1) -}}{{- include \"r\" (sub (int .) 1) -}}{{- end -}}{{- end -}}\n",
		"charts/c/templates/cm.yaml":     "{{ include \"r\" 60 }}\n",
		"releases/shop/app/release.yaml": "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: app, namespace: shop}\nspec:\n  workload: {kind: Deployment, name: app}\n  strategy: {rolling: {}}\n  source:\n    helm:\n      chart: charts/c\n",
	})
	r := Renderer{Budgets: Budgets{MaxTime: 2 * time.Second}}
	start := time.Now()
	_, err := load(t, &r, dir, "")
	if err == nil || !strings.Contains(err.Error(), "the chart took longer than 2s to render") {
		t.Fatalf("want the render killed at its time budget, got %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the render returned after %s", took)
	}
}
