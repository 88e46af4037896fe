package v1alpha1

import (
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The repository's layout: one directory per release, holding its spec
// file on the spec branch and its status file on the status branch.
const (
	// ReleaseFile is the name of a release's spec file.
	ReleaseFile = "release.yaml"
	// StatusFile is the name of a release's status file on the status
	// branch.
	StatusFile = "status.yaml"
)

// Walker is what finding releases needs of a file system (kustomize's
// filesys.FileSystem, a Git tree, the disk).
type Walker interface {
	Walk(path string, fn filepath.WalkFunc) error
}

// FindReleases returns the repository-relative paths of the release files
// at or below dir (repository-relative), sorted.
func FindReleases(fsys Walker, root, dir string) ([]string, error) {
	return FindNamed(fsys, root, dir, ReleaseFile)
}

// FindStatuses returns the repository-relative paths of the status files
// at or below dir, sorted: on the status branch, the releases the agent
// manages.
func FindStatuses(fsys Walker, root, dir string) ([]string, error) {
	return FindNamed(fsys, root, dir, StatusFile)
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

// FindNamed lists the files called name at or below dir, skipping (and
// reporting) entries it cannot read and the .git directory.
func FindNamed(fsys Walker, root, dir, name string) ([]string, error) {
	var files []string
	var skipped SkippedPaths
	start := path.Join(root, dir)
	err := fsys.Walk(start, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			if path.Clean(filepath.ToSlash(p)) == path.Clean(start) {
				return err // the directory itself
			}
			skipped = append(skipped, SkippedPath{Path: relative(root, filepath.ToSlash(p)), Reason: strings.TrimPrefix(err.Error(), root)})
			if info != nil && info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() && info.Name() == ".git" {
			return filepath.SkipDir
		}
		if !info.IsDir() && info.Name() == name {
			files = append(files, relative(root, filepath.ToSlash(p)))
		}
		return nil
	})
	sort.Strings(files)
	if err == nil && len(skipped) > 0 {
		err = skipped
	}
	return files, err
}

// relative shows a file system path relative to the repository root.
func relative(root, p string) string {
	rel := strings.TrimPrefix(p, strings.TrimSuffix(root, "/")+"/")
	if rel == p && p == root {
		return "."
	}
	return rel
}
