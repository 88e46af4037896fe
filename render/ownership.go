package render

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// placeObjectError points an ownership error about a rendered object at
// the line that makes it: the object's metadata.namespace (or its kind,
// for a cluster-scoped one) in the YAML file under the release's directory
// that holds it. An object made elsewhere (a base outside the directory, a
// generator) keeps the release file.
func placeObjectError(fsys filesys.FileSystem, root, dir string, e *v1alpha1.FieldError, kind, name string) *v1alpha1.FieldError {
	_ = fsys.Walk(path.Join(root, dir), func(p string, info fs.FileInfo, err error) error {
		if err != nil || info.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) || info.Size() > 1<<20 {
			return nil
		}
		data, err := fsys.ReadFile(p)
		if err != nil {
			return nil
		}
		field, line := findObject(data, kind, name)
		if line == 0 {
			return nil
		}
		e = &v1alpha1.FieldError{File: repoPath(root, p), Line: line, Field: field, Message: e.Message}
		return fs.SkipAll
	})
	return e
}

// findObject finds the document of kind and name in a YAML stream and
// returns the line of its metadata.namespace, else of its kind.
func findObject(data []byte, kind, name string) (string, int) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return "", 0 // the end, or YAML the render read otherwise
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		k, meta := value(m, "kind"), value(m, "metadata")
		if k == nil || k.Value != kind || meta == nil {
			continue
		}
		if n := value(meta, "name"); n == nil || n.Value != name {
			continue
		}
		if ns := value(meta, "namespace"); ns != nil {
			return "metadata.namespace", ns.Line
		}
		return "kind", k.Line
	}
}

// value is a mapping's value for key, nil if absent.
func value(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
