package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// DefaultMaxFileSize bounds each file read while rendering.
const DefaultMaxFileSize = 8 << 20

// ErrOutsideRoot is returned for a path, or a symlink's target, that leaves
// the repository.
var ErrOutsideRoot = errors.New("leaves the repository")

// ErrReadOnly is returned by the write methods of the read-only file systems.
var ErrReadOnly = errors.New("read-only file system")

// DiskFS is a read-only filesys.FileSystem over a directory on disk that
// refuses every path, and every symlink target, outside that directory.
type DiskFS struct {
	root        string
	disk        filesys.FileSystem
	maxFileSize int64
}

var _ filesys.FileSystem = (*DiskFS)(nil)

// NewDiskFS confines reads to root (made absolute, symlinks resolved).
func NewDiskFS(root string) (*DiskFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	return &DiskFS{root: real, disk: filesys.MakeFsOnDisk(), maxFileSize: DefaultMaxFileSize}, nil
}

// Root is the confining directory, absolute with symlinks resolved.
func (d *DiskFS) Root() string { return d.root }

// within reports whether p is root or below it.
func (d *DiskFS) within(p string) bool {
	return p == d.root || strings.HasPrefix(p, d.root+string(filepath.Separator))
}

// resolve makes p absolute, follows symlinks as far as they exist, and
// refuses the result if it leaves the root.
func (d *DiskFS) resolve(p string) (string, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.root, p)
	}
	abs = filepath.Clean(abs)
	if !d.within(abs) {
		return "", fmt.Errorf("%s: %w", d.rel(abs), ErrOutsideRoot)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return abs, nil
		}
		return "", err
	}
	if !d.within(real) {
		return "", fmt.Errorf("%s is a symlink to %s, which %w", d.rel(abs), real, ErrOutsideRoot)
	}
	return real, nil
}

// rel shows p relative to the root when it is below it.
func (d *DiskFS) rel(p string) string {
	if r, err := filepath.Rel(d.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// Create is refused: rendering never writes.
func (d *DiskFS) Create(string) (filesys.File, error) { return nil, ErrReadOnly }

// Mkdir is refused.
func (d *DiskFS) Mkdir(string) error { return ErrReadOnly }

// MkdirAll is refused.
func (d *DiskFS) MkdirAll(string) error { return ErrReadOnly }

// RemoveAll is refused.
func (d *DiskFS) RemoveAll(string) error { return ErrReadOnly }

// WriteFile is refused.
func (d *DiskFS) WriteFile(string, []byte) error { return ErrReadOnly }

// Open opens a file inside the root.
func (d *DiskFS) Open(p string) (filesys.File, error) {
	r, err := d.resolve(p)
	if err != nil {
		return nil, err
	}
	return d.disk.Open(r)
}

// IsDir is false for anything outside the root.
func (d *DiskFS) IsDir(p string) bool {
	r, err := d.resolve(p)
	return err == nil && d.disk.IsDir(r)
}

// Exists is false for anything outside the root.
func (d *DiskFS) Exists(p string) bool {
	r, err := d.resolve(p)
	return err == nil && d.disk.Exists(r)
}

// ReadDir lists a directory inside the root.
func (d *DiskFS) ReadDir(p string) ([]string, error) {
	r, err := d.resolve(p)
	if err != nil {
		return nil, err
	}
	return d.disk.ReadDir(r)
}

// CleanedAbs resolves p inside the root.
func (d *DiskFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	r, err := d.resolve(p)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Lstat(r); err != nil {
		return "", "", err
	}
	return d.disk.CleanedAbs(r)
}

// Glob returns the matches inside the root.
func (d *DiskFS) Glob(pattern string) ([]string, error) {
	ms, err := d.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := ms[:0]
	for _, m := range ms {
		if _, err := d.resolve(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ReadFile reads a file inside the root, up to the size limit.
func (d *DiskFS) ReadFile(p string) ([]byte, error) {
	r, err := d.resolve(p)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(r)
	if err != nil {
		return nil, err
	}
	if st.Size() > d.maxFileSize {
		return nil, fmt.Errorf("%s: file is %d bytes, over the limit of %d", d.rel(r), st.Size(), d.maxFileSize)
	}
	return os.ReadFile(r)
}

// Walk walks a tree inside the root, refusing symlinks that leave it.
func (d *DiskFS) Walk(p string, fn filepath.WalkFunc) error {
	r, err := d.resolve(p)
	if err != nil {
		return err
	}
	return d.disk.Walk(r, func(path string, info fs.FileInfo, err error) error {
		if err == nil {
			if _, rerr := d.resolve(path); rerr != nil {
				return fn(path, info, rerr)
			}
		}
		return fn(path, info, err)
	})
}
