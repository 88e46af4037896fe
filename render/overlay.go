package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// ChartResource is the file name a Helm source's render takes among the
// release's kustomization's resources.
const ChartResource = "helm-chart.sluice.yaml"

// withChartResource lays the chart's render over the release's source
// directory as one more resource of its kustomization (a kustomization of
// that one resource when the directory has none), so patches, images,
// labels and name changes apply to the chart's objects as to any others.
// Nothing is written: the files exist only for the build.
func withChartResource(fsys filesys.FileSystem, dir string, manifest []byte) (filesys.FileSystem, string, error) {
	res := path.Join(dir, ChartResource)
	if fsys.Exists(res) {
		return nil, "", fmt.Errorf("%s is the name the chart's render takes; rename the file", ChartResource)
	}
	kf := kustomizationFile(fsys, dir)
	var k *kyaml.RNode
	if kf == "" {
		kf = path.Join(dir, "kustomization.yaml")
		k = kyaml.MustParse("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	} else {
		data, err := fsys.ReadFile(kf)
		if err != nil {
			return nil, "", err
		}
		if k, err = kyaml.Parse(string(data)); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path.Base(kf), err)
		}
	}
	list, err := k.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "resources"))
	if err != nil {
		return nil, "", fmt.Errorf("%s: resources: %w", path.Base(kf), err)
	}
	if err := list.PipeE(kyaml.Append(kyaml.NewScalarRNode(ChartResource).YNode())); err != nil {
		return nil, "", err
	}
	text, err := k.String()
	if err != nil {
		return nil, "", err
	}
	return &overlayFS{FileSystem: fsys, files: map[string][]byte{kf: []byte(text), res: manifest}}, kf, nil
}

// overlayFS is a file system with some files replaced or added, in memory.
type overlayFS struct {
	filesys.FileSystem
	files map[string][]byte
}

func (o *overlayFS) get(p string) ([]byte, bool) {
	data, ok := o.files[path.Clean(p)]
	return data, ok
}

// ReadFile returns an overlaid file, or the inner one.
func (o *overlayFS) ReadFile(p string) ([]byte, error) {
	if data, ok := o.get(p); ok {
		return bytes.Clone(data), nil
	}
	return o.FileSystem.ReadFile(p)
}

// Open opens an overlaid file, or the inner one.
func (o *overlayFS) Open(p string) (filesys.File, error) {
	if data, ok := o.get(p); ok {
		return &budgetFile{Reader: bytes.NewReader(data), name: path.Base(p), size: int64(len(data))}, nil
	}
	return o.FileSystem.Open(p)
}

// Exists is true for overlaid files.
func (o *overlayFS) Exists(p string) bool {
	if _, ok := o.get(p); ok {
		return true
	}
	return o.FileSystem.Exists(p)
}

// IsDir is false for overlaid files.
func (o *overlayFS) IsDir(p string) bool {
	if _, ok := o.get(p); ok {
		return false
	}
	return o.FileSystem.IsDir(p)
}

// CleanedAbs resolves an overlaid file by its directory, which exists.
func (o *overlayFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, ok := o.get(p); ok {
		d, _, err := o.FileSystem.CleanedAbs(path.Dir(path.Clean(p)))
		return d, path.Base(p), err
	}
	return o.FileSystem.CleanedAbs(p)
}

// decodeManifest reads a chart's render as kustomize would read it as the
// only resource of a kustomization with nothing else: each non-empty
// document an object, an ID twice refused. (Running kustomize for that
// alone costs more than the chart's render.)
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	seen := map[string]bool{}
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" || string(t) == "{}" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		// A List's items are the objects, as kustomize reads them.
		items := []*unstructured.Unstructured{obj}
		if obj.IsList() {
			items = nil
			if err := obj.EachListItem(func(o runtime.Object) error {
				items = append(items, o.(*unstructured.Unstructured))
				return nil
			}); err != nil {
				return nil, err
			}
		}
		for _, o := range items {
			if o.GetName() == "" {
				return nil, fmt.Errorf("%s with no metadata.name", o.GetKind())
			}
			id := ObjectID(o)
			if seen[id] {
				return nil, fmt.Errorf("%s twice", id)
			}
			seen[id] = true
			objs = append(objs, o)
		}
	}
}
