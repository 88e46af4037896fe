package render

import (
	"context"
	"errors"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// ReadRelease reads and parses the release file (repository-relative).
func ReadRelease(fsys filesys.FileSystem, root, file string) (*v1alpha1.Parsed, error) {
	data, err := fsys.ReadFile(path.Join(root, file))
	if err != nil {
		return nil, v1alpha1.ErrorList{{File: file, Message: strings.TrimPrefix(err.Error(), root)}}
	}
	return v1alpha1.ParseRelease(file, data)
}

// Load parses the release file (repository-relative) and renders it: every
// check the agent runs before applying anything.
func (r *Renderer) Load(ctx context.Context, fsys filesys.FileSystem, root, file, cacheKey string) (*v1alpha1.Parsed, *Result, error) {
	p, err := ReadRelease(fsys, root, file)
	if err != nil {
		return nil, nil, err
	}
	res, err := r.LoadParsed(ctx, fsys, root, p, cacheKey)
	return p, res, err
}

// LoadParsed is Load of a release already parsed (the caller read it once
// for the pass and hands it down).
func (r *Renderer) LoadParsed(ctx context.Context, fsys filesys.FileSystem, root string, p *v1alpha1.Parsed, cacheKey string) (*Result, error) {
	if errs := p.CheckPlace(r.Tenancy); len(errs) > 0 {
		return nil, errs
	}
	if err := badEntries(fsys, root, p.Dir()); err != nil {
		return nil, err
	}
	if err := resolveTemplates(fsys, root, p); err != nil {
		return nil, err
	}
	res, err := r.Render(ctx, Input{FS: fsys, Root: root, Release: p, CacheKey: cacheKey})
	if err != nil {
		return nil, err
	}
	var errs v1alpha1.ErrorList
	for _, o := range res.Objects {
		if e := p.CheckObject(r.Tenancy, o.GroupVersionKind().Group, o.GetKind(), o.GetName(), o.GetNamespace()); e != nil {
			errs = append(errs, placeObjectError(fsys, root, p.Dir(), e, o.GetKind(), o.GetName()))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return res, nil
}

// badEntries fails a release whose own directory holds an entry that
// cannot be read (a symlink leaving the repository or looping, a
// submodule), whether or not its kustomization names it: the agent,
// validate and render then agree on it, and a release never applies with
// part of its directory unread. Such entries elsewhere are only skipped.
func badEntries(fsys filesys.FileSystem, root, dir string) error {
	_, err := v1alpha1.FindNamed(fsys, root, dir, v1alpha1.ReleaseFile)
	var skipped v1alpha1.SkippedPaths
	if !errors.As(err, &skipped) {
		return nil // an unreadable directory is the render's to report
	}
	list := make(v1alpha1.ErrorList, len(skipped))
	for i, s := range skipped {
		list[i] = &v1alpha1.FieldError{File: s.Path, Message: "unreadable entry in the release's directory: " + strings.TrimPrefix(s.Reason, ": ")}
	}
	return list
}
