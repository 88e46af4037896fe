package render

import (
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// KustomizationPath is dir's kustomization file, or dir/kustomization.yaml
// when it has none yet (where one would be written).
func KustomizationPath(fsys filesys.FileSystem, dir string) string {
	if f := kustomizationFile(fsys, dir); f != "" {
		return f
	}
	return path.Join(dir, kustomizationNames[0])
}

// kustomizationFile returns the kustomization file of dir, or "".
func kustomizationFile(fsys filesys.FileSystem, dir string) string {
	for _, n := range kustomizationNames {
		if p := path.Join(dir, n); fsys.Exists(p) && !fsys.IsDir(p) {
			return p
		}
	}
	return ""
}

// refusedKinds are inline generator/transformer kinds that fetch or run
// something.
var refusedKinds = map[string]string{
	"HelmChartInflationGenerator": "Helm chart inflation is disabled",
}

// pathKeys are the keys of inline generator and transformer configs whose
// values kustomize loads as files (and so could load from a URL).
var pathKeys = map[string]bool{
	"path": true, "paths": true, "files": true, "envs": true, "env": true, "envFiles": true,
	"resources": true, "components": true, "crds": true, "configurations": true,
	"valuesFile": true, "valuesFiles": true, "additionalValuesFiles": true, "chartHome": true, "repo": true,
}

// RemoteReason says why a path from a kustomization is not a file in this
// repository, or "" when it is a plain relative path. It is deliberately
// wider than what kustomize would fetch: any scheme or colon (URLs,
// scp-like user@host:path, go-getter git::), any user info, a query
// (?ref=), the // of a repository subpath, a .git repository, the hosts
// kustomize completes to GitHub URLs, absolute and home paths. Case does
// not matter.
func RemoteReason(p string) string {
	s := strings.TrimSpace(p)
	lower := strings.ToLower(s)
	switch {
	case s == "":
		return "empty"
	case strings.ContainsAny(s, "\x00\r\n\t"):
		return "holds control characters"
	case strings.Contains(s, ":"):
		return "names a URL or host (it holds a colon)"
	case strings.Contains(s, "@"):
		return "names a user at a host"
	case strings.Contains(s, "?"):
		return "has a query (a remote ref)"
	case strings.HasPrefix(s, "/"), strings.HasPrefix(s, `\`), strings.HasPrefix(s, "~"):
		return "is absolute"
	case strings.Contains(s, `\`):
		return "holds a backslash"
	case strings.Contains(strings.TrimPrefix(path.Clean("/"+s), "/"), "//"), strings.Contains(s, "//"):
		return "names a repository subpath (//)"
	case strings.HasSuffix(lower, ".git") || strings.Contains(lower, ".git/") || strings.Contains(lower, "_git/"):
		return "names a Git repository"
	}
	for _, h := range []string{"github.com", "gitlab.com", "bitbucket.org", "gh/"} {
		if strings.HasPrefix(lower, h) {
			return "names a Git host"
		}
	}
	return ""
}

// checkSources walks the kustomizations reachable from dir and refuses
// every path that is not a file in this repository, and Helm, before krusty
// gets a chance to fetch or execute anything. display maps an FS path to
// the path shown in errors.
func checkSources(fsys filesys.FileSystem, dir string, display func(string) string) error {
	_, err := walkSources(fsys, dir, display)
	return err
}

// SourceDirs lists the directories (FS paths) whose kustomizations a
// render of dir reads: dir and every local base and component it reaches.
// Their content identifies the render, so callers key caches on it.
func SourceDirs(fsys filesys.FileSystem, dir string) []string {
	dirs, _ := walkSources(fsys, dir, func(p string) string { return p })
	return dirs
}

// walkSources walks the kustomizations reachable from dir, returning the
// directories visited in order and the problems found. Each kustomization
// is decoded as kustomize decodes it (types.Kustomization.Unmarshal: YAML
// to JSON, so aliases, tags, escapes and the case of keys are resolved as
// kustomize resolves them), and every path-bearing field is checked.
func walkSources(fsys filesys.FileSystem, dir string, display func(string) string) ([]string, error) {
	var errs v1alpha1.ErrorList
	var dirs []string
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		dirs = append(dirs, dir)
		kf := kustomizationFile(fsys, dir)
		if kf == "" {
			return
		}
		data, err := fsys.ReadFile(kf)
		if err != nil {
			errs = append(errs, &v1alpha1.FieldError{File: display(kf), Message: err.Error()})
			return
		}
		var k types.Kustomization
		if err := k.Unmarshal(data); err != nil {
			return // krusty reports the error with its own words
		}
		lines := scalarLines(data)
		refuse := func(field, value, why string) {
			errs = append(errs, &v1alpha1.FieldError{File: display(kf), Line: lines[value], Field: field,
				Message: fmt.Sprintf("source %q refused: it %s; only relative paths to files in this repository are rendered", value, why)})
		}
		check := func(field, value string) {
			if why := RemoteReason(value); why != "" {
				refuse(field, value, why)
			}
		}
		for field, why := range map[string]bool{"helmCharts": len(k.HelmCharts) > 0, "helmChartInflationGenerator": len(k.HelmChartInflationGenerator) > 0, "helmGlobals": k.HelmGlobals != nil} {
			if why {
				errs = append(errs, &v1alpha1.FieldError{File: display(kf), Line: keyLine(data, field), Field: field, Message: "Helm chart inflation is disabled"})
			}
		}
		for _, l := range []struct {
			field string
			paths []string
			base  bool
		}{
			{"resources", k.Resources, true}, {"bases", k.Bases, true}, {"components", k.Components, true},
			{"crds", k.Crds, false}, {"configurations", k.Configurations, false},
		} {
			for i, p := range l.paths {
				check(fmt.Sprintf("%s[%d]", l.field, i), p)
			}
			if !l.base {
				continue
			}
			for _, p := range l.paths {
				if sub := path.Join(dir, p); RemoteReason(p) == "" && fsys.IsDir(sub) {
					walk(sub)
				}
			}
		}
		for _, l := range []struct {
			field   string
			entries []string
		}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
			for i, e := range l.entries {
				field := fmt.Sprintf("%s[%d]", l.field, i)
				if configs, inline := inlineConfigs(e); inline {
					for _, c := range configs {
						checkInline(field, c, refuse, func(kind string) {
							errs = append(errs, &v1alpha1.FieldError{File: display(kf), Line: lines[e], Field: field, Message: refusedKinds[kind]})
						})
					}
					continue
				}
				check(field, e)
			}
		}
		if p, ok := k.OpenAPI["path"]; ok {
			check("openapi.path", p)
		}
		for i, p := range k.PatchesStrategicMerge {
			if !strings.Contains(string(p), "\n") { // a path, not an inline patch
				check(fmt.Sprintf("patchesStrategicMerge[%d]", i), string(p))
			}
		}
		for _, l := range []struct {
			field   string
			patches []types.Patch
		}{{"patches", k.Patches}, {"patchesJson6902", k.PatchesJson6902}} {
			for i, p := range l.patches {
				if p.Path != "" {
					check(fmt.Sprintf("%s[%d].path", l.field, i), p.Path)
				}
			}
		}
		for i, r := range k.Replacements {
			if r.Path != "" {
				check(fmt.Sprintf("replacements[%d].path", i), r.Path)
			}
		}
		for i, g := range k.ConfigMapGenerator {
			checkKV(fmt.Sprintf("configMapGenerator[%d]", i), g.KvPairSources, check)
		}
		for i, g := range k.SecretGenerator {
			checkKV(fmt.Sprintf("secretGenerator[%d]", i), g.KvPairSources, check)
		}
	}
	walk(dir)
	errs.Sort()
	return dirs, errs.Err()
}

// checkKV checks a generator's files ("key=path" or "path") and env files.
func checkKV(field string, kv types.KvPairSources, check func(field, value string)) {
	for i, f := range kv.FileSources {
		if _, p, ok := strings.Cut(f, "="); ok {
			f = p
		}
		check(fmt.Sprintf("%s.files[%d]", field, i), f)
	}
	for i, e := range kv.EnvSources {
		check(fmt.Sprintf("%s.envs[%d]", field, i), e)
	}
	if kv.EnvSource != "" {
		check(field+".env", kv.EnvSource)
	}
}

// inlineConfigs reports whether a generators/transformers/validators entry
// is inline configuration (as kustomize decides: it parses as objects) and
// returns those objects.
func inlineConfigs(entry string) ([]map[string]any, bool) {
	var out []map[string]any
	for _, doc := range strings.Split(entry, "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil || m == nil {
			return nil, false
		}
		out = append(out, m)
	}
	return out, len(out) > 0
}

// checkInline refuses the fetching kinds and checks every path-bearing key
// of an inline config, at any depth.
func checkInline(field string, v any, refuse func(field, value, why string), refuseKind func(kind string)) {
	switch x := v.(type) {
	case map[string]any:
		if kind, _ := x["kind"].(string); refusedKinds[kind] != "" {
			refuseKind(kind)
		}
		for k, val := range x {
			f := field + "." + k
			if pathKeys[k] {
				for _, s := range stringValues(val) {
					if _, p, ok := strings.Cut(s, "="); ok && k == "files" {
						s = p
					}
					if why := RemoteReason(s); why != "" {
						refuse(f, s, why)
					}
				}
			}
			checkInline(f, val, refuse, refuseKind)
		}
	case []any:
		for i, e := range x {
			checkInline(fmt.Sprintf("%s[%d]", field, i), e, refuse, refuseKind)
		}
	}
}

// stringValues is v when it is a string, its strings when it is a list.
func stringValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// scalarLines maps each string scalar of a YAML file to the line it first
// appears on, so errors found on the decoded kustomization can point at
// the file (0 when the value only exists after decoding, e.g. an escape).
func scalarLines(data []byte) map[string]int {
	lines := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return lines
	}
	var visit func(n *yaml.Node)
	visit = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			if _, ok := lines[n.Value]; !ok {
				lines[n.Value] = n.Line
			}
		}
		for _, c := range n.Content {
			visit(c)
		}
	}
	visit(&doc)
	return lines
}

// keyLine is the line of a top-level key, matched as kustomize matches
// keys (case-insensitively), or 0.
func keyLine(data []byte, key string) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i].Line
		}
	}
	return 0
}
