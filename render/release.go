package render

import (
	"context"
	"errors"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Load parses the release file (repository-relative) and renders it: every
// check the agent runs before applying anything.
func (r *Renderer) Load(ctx context.Context, fsys filesys.FileSystem, root, file, cacheKey string) (*v1alpha1.Parsed, *Result, error) {
	data, err := fsys.ReadFile(path.Join(root, file))
	if err != nil {
		return nil, nil, v1alpha1.ErrorList{{File: file, Message: strings.TrimPrefix(err.Error(), root)}}
	}
	p, err := v1alpha1.ParseRelease(file, data)
	if err != nil {
		return nil, nil, err
	}
	if errs := p.CheckPlace(r.Tenancy); len(errs) > 0 {
		return p, nil, errs
	}
	if err := badEntries(fsys, root, path.Dir(file)); err != nil {
		return p, nil, err
	}
	if err := resolveTemplates(fsys, root, p); err != nil {
		return p, nil, err
	}
	res, err := r.Render(ctx, Input{FS: fsys, Root: root, Release: p, CacheKey: cacheKey})
	if err != nil {
		return p, nil, err
	}
	var errs v1alpha1.ErrorList
	for _, o := range res.Objects {
		if e := p.CheckObject(r.Tenancy, o.GroupVersionKind().Group, o.GetKind(), o.GetName(), o.GetNamespace()); e != nil {
			errs = append(errs, placeObjectError(fsys, root, path.Dir(file), e, o.GetKind(), o.GetName()))
		}
	}
	if len(errs) > 0 {
		return p, nil, errs
	}
	return p, res, nil
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
