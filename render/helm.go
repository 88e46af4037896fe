package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Capabilities are what a chart's .Capabilities says of the cluster: the
// live cluster's when the agent renders, flags' for `sluice render`, and
// Helm's defaults (as `helm template` has them) when empty.
type Capabilities struct {
	// KubeVersion is the cluster's version, e.g. v1.34.1.
	KubeVersion string
	// APIVersions are the served group/versions and group/version/Kinds
	// beyond Helm's built-in list.
	APIVersions []string
}

// DefaultKubeVersion is what a chart sees as .Capabilities.KubeVersion
// when nothing says otherwise: the `helm` binary of the SDK's version
// says the same (Helm derives it from its client-go; its test builds say
// v1.20.0, so sluice keeps it here, and a parity test keeps it true).
const DefaultKubeVersion = "v1.37.0"

// key identifies the capabilities in a cache key.
func (c Capabilities) key() string {
	return c.KubeVersion + "|" + strings.Join(c.APIVersions, ",")
}

// helmChart is a release's chart, located and loaded.
type helmChart struct {
	// dir is the chart's directory in the FS; chart its loaded form.
	dir   string
	chart *chart.Chart
}

// HelmDirs lists the FS directories a release's Helm source reads: the
// chart's and those of its values files. Their content identifies the
// render, as SourceDirs' does for kustomize.
func HelmDirs(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed) []string {
	h := p.Release.Spec.Source.Helm
	if h == nil {
		return nil
	}
	var dirs []string
	if d, ok := findHelmPath(fsys, root, p, h.Chart, true); ok {
		dirs = append(dirs, d)
	}
	for _, f := range h.Values {
		if d, ok := findHelmPath(fsys, root, p, f, false); ok {
			dirs = append(dirs, path.Dir(d))
		}
	}
	return dirs
}

// findHelmPath finds a chart directory (dir) or a values file the Helm
// source names: beside release.yaml, else from the repository's root.
func findHelmPath(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed, name string, dir bool) (string, bool) {
	for _, c := range p.HelmPaths(name) {
		full := path.Join(root, c)
		if fsys.Exists(full) && fsys.IsDir(full) == dir {
			return full, true
		}
	}
	return "", false
}

// loadChart reads the chart's files through fsys (so they are confined to
// the repository and charged to the build's budgets), as helm's LoadDir
// does: .helmignore and its defaults applied, a UTF-8 BOM dropped.
func loadChart(fsys filesys.FileSystem, dir string) (*chart.Chart, error) {
	rules := ignore.Empty()
	if data, err := fsys.ReadFile(path.Join(dir, ignore.HelmIgnore)); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%s: %w", ignore.HelmIgnore, err)
		}
	}
	rules.AddDefaults()
	var files []*archive.BufferedFile
	err := fsys.Walk(dir, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		n := strings.TrimPrefix(filepath.ToSlash(p), strings.TrimSuffix(dir, "/")+"/")
		if n == filepath.ToSlash(p) || n == "" {
			return nil // the chart's directory itself
		}
		if fi.IsDir() {
			if rules.Ignore(n, fi) {
				return filepath.SkipDir
			}
			return nil
		}
		if rules.Ignore(n, fi) {
			return nil
		}
		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return fmt.Errorf("%s: not a regular file", n)
		}
		data, err := fsys.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: n, Data: bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

// helmValues merges the values files in order and then the set values, as
// `helm template -f ... --set ...` does.
func helmValues(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed) (map[string]any, v1alpha1.ErrorList) {
	h := p.Release.Spec.Source.Helm
	vals := map[string]any{}
	var errs v1alpha1.ErrorList
	for i, f := range h.Values {
		field := fmt.Sprintf("spec.source.helm.values[%d]", i)
		full, ok := findHelmPath(fsys, root, p, f, false)
		if !ok {
			errs = append(errs, p.Errorf(field, "%s: no such file beside release.yaml or from the repository's root", f))
			continue
		}
		data, err := fsys.ReadFile(full)
		if err != nil {
			errs = append(errs, p.Errorf(field, "%s: %v", f, err))
			continue
		}
		current := map[string]any{}
		if err := sigsyaml.Unmarshal(data, &current); err != nil {
			errs = append(errs, &v1alpha1.FieldError{File: repoPath(root, full), Message: "values: " + err.Error()})
			continue
		}
		vals = mergeValues(vals, current)
	}
	keys := make([]string, 0, len(h.Set))
	for k := range h.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// --set's escaping: a comma in a value is literal only escaped.
		v := strings.NewReplacer(`\`, `\\`, ",", `\,`).Replace(h.Set[k])
		if err := strvals.ParseInto(k+"="+v, vals); err != nil {
			errs = append(errs, p.Errorf("spec.source.helm.set", "%s: %v", k, err))
		}
	}
	return vals, errs
}

// mergeValues merges b over a, maps recursively, as helm merges values
// files.
func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmTemplate renders the release's chart as `helm template` does, with
// no cluster, no network and sluice's template functions: the objects'
// YAML stream, hooks treated as the release says.
func (r *Renderer) helmTemplate(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed, budgets Budgets) ([]byte, error) {
	h := p.Release.Spec.Source.Helm
	dir, ok := findHelmPath(fsys, root, p, h.Chart, true)
	if !ok {
		return nil, v1alpha1.ErrorList{p.Errorf("spec.source.helm.chart", "%s: no chart directory beside release.yaml or from the repository's root", h.Chart)}
	}
	ch, err := loadChart(fsys, dir)
	if err != nil {
		return nil, v1alpha1.ErrorList{{File: repoPath(root, dir), Message: "chart: " + trimRoot(err, root)}}
	}
	// What the helm command checks before it installs: an application
	// chart, every dependency present.
	chartErr := func(err error) error {
		return v1alpha1.ErrorList{{File: repoPath(root, dir), Message: "chart: " + trimRoot(err, root)}}
	}
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return nil, chartErr(fmt.Errorf("%s charts are not installable", t))
	}
	if req := ch.Metadata.Dependencies; len(req) > 0 {
		deps := make([]ci.Dependency, len(req))
		for i, d := range req {
			deps[i] = d
		}
		if err := action.CheckDependencies(ch, deps); err != nil {
			return nil, chartErr(fmt.Errorf("%w: vendor them under charts/ (helm dependency build, then commit)", err))
		}
	}
	vals, errs := helmValues(fsys, root, p)
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	funcs, work := templateFuncs()
	cfg.CustomTemplateFuncs = funcs
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = h.Name(p.Release.Metadata.Name)
	install.Namespace = p.Release.Metadata.Namespace
	install.IncludeCRDs = h.IncludeCRDs
	caps := r.capabilities()
	if caps.KubeVersion == "" {
		caps.KubeVersion = DefaultKubeVersion
	}
	kv, err := common.ParseKubeVersion(caps.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", caps.KubeVersion, err)
	}
	install.KubeVersion = kv
	install.APIVersions = common.VersionSet(caps.APIVersions)
	rel, err := runBounded(budgets.withDefaults().MaxTime, func() (any, error) { return install.Run(ch, vals) })
	if err != nil {
		msg := trimRoot(err, root)
		if work.exceeded() {
			msg = fmt.Sprintf("%v: %s", ErrBudget, msg)
		}
		return nil, v1alpha1.ErrorList{{File: repoPath(root, dir), Message: "helm template: " + msg}}
	}
	out := rel.(*helmrelease.Release)
	var b bytes.Buffer
	b.WriteString(strings.TrimSpace(out.Manifest))
	var refused []string
	for _, hook := range out.Hooks {
		switch {
		case isTestHook(hook):
		case h.Policy() == v1alpha1.HooksInclude:
			fmt.Fprintf(&b, "\n---\n# Source: %s\n%s", hook.Path, strings.TrimSpace(hook.Manifest))
		case h.Policy() == v1alpha1.HooksRefuse:
			refused = append(refused, fmt.Sprintf("%s (%s/%s)", hook.Path, hook.Kind, hook.Name))
		}
	}
	if len(refused) > 0 {
		return nil, v1alpha1.ErrorList{p.Errorf("spec.source.helm.hooks", "the chart has hooks, which sluice does not run in phases: %s; set hooks: include to apply them with the other objects, or exclude to leave them out", strings.Join(refused, ", "))}
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

// isTestHook: `helm test` hooks are never part of a release's objects.
func isTestHook(h *helmrelease.Hook) bool {
	for _, e := range h.Events {
		if e == helmrelease.HookTest {
			return true
		}
	}
	return false
}

// trimRoot drops the FS root from an error's text, so paths read as the
// repository's.
func trimRoot(err error, root string) string {
	msg := err.Error()
	if root != "/" && root != "" {
		msg = strings.ReplaceAll(msg, strings.TrimSuffix(root, "/")+"/", "")
	}
	return msg
}

// runBounded runs fn, giving up after limit: a template that loops for
// long fails its release instead of holding the pass. (The goroutine runs
// on to its end; the template functions' work budget bounds how long.)
func runBounded(limit time.Duration, fn func() (any, error)) (any, error) {
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panicked: %v", p)}
			}
		}()
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(limit):
		return nil, fmt.Errorf("%w: the chart took longer than %s to render", ErrBudget, limit)
	}
}

var errNondeterministic = errors.New("not deterministic: the render would differ on every pass and start a new version each time; generate the value once and commit it (encrypted with SOPS if secret)")
