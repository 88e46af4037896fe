package render

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizationFile returns the kustomization file of dir, or "".
func kustomizationFile(fsys filesys.FileSystem, dir string) string {
	for _, n := range kustomizationNames {
		if p := path.Join(dir, n); fsys.Exists(p) && !fsys.IsDir(p) {
			return p
		}
	}
	return ""
}

// fileFields are the kustomization fields that name files or directories
// kustomize would load, and so could name a remote URL.
var fileFields = map[string]bool{
	"resources": true, "bases": true, "components": true, "crds": true,
	"configurations": true, "generators": true, "transformers": true,
	"validators": true, "patchesStrategicMerge": true, "patchesJson6902": true,
	"patches": true, "openapi": true, "configMapGenerator": true,
	"secretGenerator": true, "replacements": true,
}

// refusedFields are features that run code or fetch from elsewhere.
var refusedFields = map[string]string{
	"helmCharts":                  "Helm chart inflation is disabled",
	"helmChartInflationGenerator": "Helm chart inflation is disabled",
	"helmGlobals":                 "Helm chart inflation is disabled",
}

// isRemote reports whether a kustomization entry names something outside
// the repository: a URL or a Git repository spec.
func isRemote(s string) bool {
	s = strings.TrimSpace(s)
	for _, p := range []string{"git@", "git::", "github.com/", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.Contains(s, "://") || strings.Contains(s, "?ref=") || strings.Contains(s, ".git//")
}

// checkSources walks the kustomizations reachable from dir and refuses
// remote bases and files, Helm, and any kustomization outside root, before
// krusty gets a chance to fetch or execute anything. display maps an FS path
// to the path shown in errors.
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
// directories visited in order and the problems found.
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
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return // krusty reports the syntax error with its own words
		}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := m.Content[i], m.Content[i+1]
			if why, bad := refusedFields[key.Value]; bad {
				errs = append(errs, &v1alpha1.FieldError{File: display(kf), Line: key.Line, Field: key.Value, Message: why})
				continue
			}
			if !fileFields[key.Value] {
				continue
			}
			eachString(val, key.Value, func(field string, n *yaml.Node) {
				if isRemote(n.Value) {
					errs = append(errs, &v1alpha1.FieldError{File: display(kf), Line: n.Line, Field: field,
						Message: fmt.Sprintf("remote source %q refused: only files in this repository are rendered", n.Value)})
					return
				}
				if key.Value == "resources" || key.Value == "bases" || key.Value == "components" {
					sub := path.Join(dir, n.Value)
					if !strings.HasPrefix(n.Value, "/") && fsys.IsDir(sub) {
						walk(sub)
					}
				}
			})
		}
	}
	walk(dir)
	errs.Sort()
	return dirs, errs.Err()
}

// eachString calls fn for every string scalar under n.
func eachString(n *yaml.Node, field string, fn func(string, *yaml.Node)) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			fn(field, n)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			eachString(c, fmt.Sprintf("%s[%d]", field, i), fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			eachString(n.Content[i+1], field+"."+n.Content[i].Value, fn)
		}
	}
}
