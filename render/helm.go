package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
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

// chartFiles reads the chart's files through fsys (so they are confined
// to the repository and charged to the build's budgets), as helm's LoadDir
// does: .helmignore and its defaults applied, a UTF-8 BOM dropped.
func chartFiles(fsys filesys.FileSystem, dir string) ([]*archive.BufferedFile, error) {
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
	return files, nil
}

// helmValues reads the values files and set values a Helm source names,
// checking each as the render will use it, so an error is located in the
// release's files.
func helmValues(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed) ([][]byte, [][2]string, v1alpha1.ErrorList) {
	h := p.Release.Spec.Source.Helm
	var files [][]byte
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
		if err := sigsyaml.Unmarshal(data, &map[string]any{}); err != nil {
			errs = append(errs, &v1alpha1.FieldError{File: repoPath(root, full), Message: "values: " + err.Error()})
			continue
		}
		files = append(files, data)
	}
	var set [][2]string
	for _, k := range slices.Sorted(maps.Keys(h.Set)) {
		if err := strvals.ParseInto(setArg(k, h.Set[k]), map[string]any{}); err != nil {
			errs = append(errs, p.Errorf("spec.source.helm.set", "%s: %v", k, err))
		}
		set = append(set, [2]string{k, h.Set[k]})
	}
	return files, set, errs
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
	files, err := chartFiles(fsys, dir)
	if err != nil {
		return nil, v1alpha1.ErrorList{{File: repoPath(root, dir), Message: "chart: " + trimRoot(err, root)}}
	}
	values, set, errs := helmValues(fsys, root, p)
	if len(errs) > 0 {
		return nil, errs
	}
	caps := r.capabilities()
	if caps.KubeVersion == "" {
		caps.KubeVersion = DefaultKubeVersion
	}
	budgets = budgets.withDefaults()
	out, err := runHelmChild(&helmRequest{
		Files: files, ValuesFiles: values, Set: set,
		ReleaseName: h.Name(p.Release.Metadata.Name), Namespace: p.Release.Metadata.Namespace,
		IncludeCRDs: h.IncludeCRDs, KubeVersion: caps.KubeVersion, APIVersions: caps.APIVersions,
		MaxMemory: budgets.MaxChartMemory,
	}, budgets.MaxTime)
	if err != nil {
		return nil, v1alpha1.ErrorList{{File: repoPath(root, dir), Message: "helm template: " + err.Error()}}
	}
	if out.Error != "" {
		msg := trimRoot(errors.New(out.Error), root)
		switch {
		case out.ChartError:
			msg = "chart: " + msg
		case out.Budget:
			msg = fmt.Sprintf("helm template: %v: %s", ErrBudget, msg)
		default:
			msg = "helm template: " + msg
		}
		return nil, v1alpha1.ErrorList{{File: repoPath(root, dir), Message: msg}}
	}
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
