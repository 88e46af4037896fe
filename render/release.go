package render

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// ReleaseFile is the name of a release's spec file.
const ReleaseFile = "release.yaml"

// StatusFile is the name of a release's status file on the status branch.
const StatusFile = "status.yaml"

// FindReleases returns the repository-relative paths of the release files
// at or below dir (repository-relative), sorted.
func FindReleases(fsys filesys.FileSystem, root, dir string) ([]string, error) {
	return findNamed(fsys, root, dir, ReleaseFile)
}

// FindStatuses returns the repository-relative paths of the status files
// at or below dir, sorted: on the status branch, the releases the agent
// manages.
func FindStatuses(fsys filesys.FileSystem, root, dir string) ([]string, error) {
	return findNamed(fsys, root, dir, StatusFile)
}

// SkippedPath is an entry under the scanned directory that could not be
// read (a symlink leaving the repository or looping, a submodule): it is
// left out and the rest is read.
type SkippedPath struct {
	Path   string
	Reason string
}

// SkippedPaths comes back, as the error, with the files found when some
// entries were skipped: one bad entry stops only itself.
type SkippedPaths []SkippedPath

func (s SkippedPaths) Error() string {
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = p.Path + ": " + p.Reason
	}
	return "skipped: " + strings.Join(parts, "; ")
}

func findNamed(fsys filesys.FileSystem, root, dir, name string) ([]string, error) {
	var files []string
	var skipped SkippedPaths
	start := path.Join(root, dir)
	err := fsys.Walk(start, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			if path.Clean(filepath.ToSlash(p)) == path.Clean(start) {
				return err // the directory itself
			}
			skipped = append(skipped, SkippedPath{Path: repoPath(root, filepath.ToSlash(p)), Reason: strings.TrimPrefix(err.Error(), root)})
			if info != nil && info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() && info.Name() == ".git" {
			return filepath.SkipDir
		}
		if !info.IsDir() && info.Name() == name {
			files = append(files, repoPath(root, filepath.ToSlash(p)))
		}
		return nil
	})
	sort.Strings(files)
	if err == nil && len(skipped) > 0 {
		err = skipped
	}
	return files, err
}

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
	_, err := findNamed(fsys, root, dir, ReleaseFile)
	var skipped SkippedPaths
	if !errors.As(err, &skipped) {
		return nil // an unreadable directory is the render's to report
	}
	list := make(v1alpha1.ErrorList, len(skipped))
	for i, s := range skipped {
		list[i] = &v1alpha1.FieldError{File: s.Path, Message: "unreadable entry in the release's directory: " + strings.TrimPrefix(s.Reason, ": ")}
	}
	return list
}
