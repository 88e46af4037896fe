package render

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TemplateDir is the checks/ directory a release's check templates are
// read from: the nearest among the release's directory and its ancestors
// up to the repository root ("" when there is none).
func TemplateDir(fsys filesys.FileSystem, root, releaseFile string) string {
	for dir := path.Dir(releaseFile); ; dir = path.Dir(dir) {
		d := path.Join(dir, v1alpha1.TemplatesDir)
		if fsys.IsDir(path.Join(root, d)) {
			return d
		}
		if dir == "." || dir == "/" || dir == "" {
			return ""
		}
	}
}

// resolveTemplates replaces each check of the release that names a
// template by the check the template makes with its args. Errors name the
// release file for missing or unknown args and the template file for
// anything wrong in it.
func resolveTemplates(fsys filesys.FileSystem, root string, p *v1alpha1.Parsed) error {
	var errs v1alpha1.ErrorList
	var dir string
	parsed := map[string]*v1alpha1.ParsedTemplate{}
	for i := range p.Release.Spec.Checks {
		c := &p.Release.Spec.Checks[i]
		if c.Template.Name == "" {
			continue
		}
		field := fmt.Sprintf("spec.checks[%d]", i)
		if dir == "" {
			if dir = TemplateDir(fsys, root, p.File); dir == "" {
				errs = append(errs, p.Errorf(field+".template", "no %s/ directory beside the release or above it to hold template %s", v1alpha1.TemplatesDir, c.Template.Name))
				continue
			}
		}
		pt, ok := parsed[c.Template.Name]
		if !ok {
			file := path.Join(dir, c.Template.Name+".yaml")
			data, err := fsys.ReadFile(path.Join(root, file))
			if err != nil {
				errs = append(errs, p.Errorf(field+".template", "template %s: %s", c.Template.Name, strings.TrimPrefix(err.Error(), root)))
				continue
			}
			t, err := v1alpha1.ParseCheckTemplate(file, data)
			if err != nil {
				errs = append(errs, asList(err)...)
				continue
			}
			pt, parsed[c.Template.Name] = t, t
		}
		check, list := pt.Instantiate(p, field, c.Name, c.TemplateArgs())
		if len(list) > 0 {
			errs = append(errs, list...)
			continue
		}
		*c = check
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

func asList(err error) v1alpha1.ErrorList {
	var l v1alpha1.ErrorList
	if errors.As(err, &l) {
		return l
	}
	return v1alpha1.ErrorList{{Message: err.Error()}}
}
