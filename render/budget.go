package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Budgets bound what one build may read and how long it may take, so a
// hostile or careless file fails its own release with a clear error
// instead of exhausting the agent (a 425-byte alias bomb would otherwise
// expand to gigabytes inside kustomize).
type Budgets struct {
	// MaxNodes bounds the YAML nodes one file expands to, aliases
	// followed; 0 means DefaultMaxNodes.
	MaxNodes int
	// MaxBytes bounds the bytes one build reads; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxDocuments bounds the YAML documents one build reads, counted as
	// files are read, before kustomize builds them; 0 means
	// DefaultMaxDocuments.
	MaxDocuments int
	// MaxTime bounds a build's reads: past it, every read fails; 0 means
	// DefaultMaxTime. A chart's render is killed past it.
	MaxTime time.Duration
	// MaxChartMemory bounds the data of the process a Helm chart renders
	// in; 0 means DefaultMaxChartMemory.
	MaxChartMemory int64
}

// Default budgets.
const (
	DefaultMaxNodes     = 2_000_000
	DefaultMaxBytes     = 32 << 20
	DefaultMaxDocuments = 2 * DefaultMaxObjects
	DefaultMaxTime      = 30 * time.Second
)

// ErrBudget is the class of budget errors: deterministic for the same
// inputs, so a release that exceeds one is not rendered again until its
// inputs change.
var ErrBudget = errors.New("over the render budget")

func (b Budgets) withDefaults() Budgets {
	if b.MaxNodes <= 0 {
		b.MaxNodes = DefaultMaxNodes
	}
	if b.MaxBytes <= 0 {
		b.MaxBytes = DefaultMaxBytes
	}
	if b.MaxDocuments <= 0 {
		b.MaxDocuments = DefaultMaxDocuments
	}
	if b.MaxTime <= 0 {
		b.MaxTime = DefaultMaxTime
	}
	if b.MaxChartMemory <= 0 {
		b.MaxChartMemory = DefaultMaxChartMemory
	}
	return b
}

// budgetFS is the file system one build reads through: every file read is
// charged to the build's budgets before kustomize sees its bytes.
type budgetFS struct {
	filesys.FileSystem
	b        Budgets
	display  func(string) string
	deadline time.Time
	// decrypt opens SOPS-encrypted YAML files (nil: they are refused).
	decrypt *Decryptor

	mu    sync.Mutex
	bytes int64
	docs  int
	err   error // the first budget exceeded, reported for the whole build
}

func newBudgetFS(fsys filesys.FileSystem, b Budgets, display func(string) string) *budgetFS {
	b = b.withDefaults()
	return &budgetFS{FileSystem: fsys, b: b, display: display, deadline: time.Now().Add(b.MaxTime)}
}

// exceeded is the first budget error of the build, if any.
func (f *budgetFS) exceeded() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *budgetFS) fail(format string, args ...any) error {
	err := fmt.Errorf("%w: "+format, append([]any{ErrBudget}, args...)...)
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	return err
}

// ReadFile reads through the inner file system and charges the budgets.
func (f *budgetFS) ReadFile(p string) ([]byte, error) {
	if err := f.exceeded(); err != nil {
		return nil, err
	}
	if time.Now().After(f.deadline) {
		return nil, f.fail("the build took longer than %s", f.b.MaxTime)
	}
	data, err := f.FileSystem.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if err := f.charge(p, data); err != nil {
		return nil, err
	}
	if isYAMLName(p) && IsSOPS(data) {
		d := f.decrypt
		if d == nil {
			d = &Decryptor{}
		}
		plain, err := d.Decrypt(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.display(p), err)
		}
		return plain, nil
	}
	return data, nil
}

// Open reads the whole file through ReadFile, so it is charged too.
func (f *budgetFS) Open(p string) (filesys.File, error) {
	data, err := f.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return &budgetFile{Reader: bytes.NewReader(data), name: path.Base(p), size: int64(len(data))}, nil
}

// charge adds a file's bytes and, for YAML, its documents and expanded
// nodes to the build.
func (f *budgetFS) charge(p string, data []byte) error {
	f.mu.Lock()
	f.bytes += int64(len(data))
	over := f.bytes > f.b.MaxBytes
	f.mu.Unlock()
	if over {
		return f.fail("%s: the build read more than %d bytes", f.display(p), f.b.MaxBytes)
	}
	if !isYAMLName(p) {
		return nil
	}
	docs, err := yamlCost(data, f.b.MaxNodes)
	if err != nil {
		return f.fail("%s: %v", f.display(p), err)
	}
	f.mu.Lock()
	f.docs += docs
	over = f.docs > f.b.MaxDocuments
	f.mu.Unlock()
	if over {
		return f.fail("%s: the build read more than %d YAML documents (objects are limited to %d)", f.display(p), f.b.MaxDocuments, DefaultMaxObjects)
	}
	return nil
}

// isYAMLName reports whether kustomize would parse the file as YAML (JSON
// is YAML too); other files (an env file, a certificate) are only bytes.
func isYAMLName(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return path.Base(p) == "Kustomization"
}

// yamlCost counts the documents of a YAML stream and checks that none
// expands, aliases followed, to more than maxNodes nodes. yaml.v3 parses
// aliases without expanding them, so the count is cheap and exact.
func yamlCost(data []byte, maxNodes int) (int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, nil // a syntax error is kustomize's to report
		}
		if size := expanded(&n, map[*yaml.Node]int{}, maxNodes); size > maxNodes {
			return docs, fmt.Errorf("a YAML document expands to more than %d nodes (aliases followed)", maxNodes)
		}
		if len(n.Content) > 0 && !(n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			docs++
		}
	}
}

// expanded is the node count of n with aliases expanded, memoised per
// anchor; it stops counting past limit.
func expanded(n *yaml.Node, memo map[*yaml.Node]int, limit int) int {
	if n == nil {
		return 0
	}
	if v, ok := memo[n]; ok {
		return v
	}
	total := 1
	if n.Kind == yaml.AliasNode {
		total += expanded(n.Alias, memo, limit)
	}
	for _, c := range n.Content {
		if total > limit {
			break
		}
		total += expanded(c, memo, limit)
	}
	memo[n] = total
	return total
}

// budgetFile is an opened file's bytes.
type budgetFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *budgetFile) Close() error               { return nil }
func (f *budgetFile) Write([]byte) (int, error)  { return 0, ErrReadOnly }
func (f *budgetFile) Stat() (fs.FileInfo, error) { return fileStat{name: f.name, size: f.size}, nil }

type fileStat struct {
	name string
	size int64
}

func (i fileStat) Name() string       { return i.name }
func (i fileStat) Size() int64        { return i.size }
func (i fileStat) Mode() fs.FileMode  { return 0o444 }
func (i fileStat) ModTime() time.Time { return time.Time{} }
func (i fileStat) IsDir() bool        { return false }
func (i fileStat) Sys() any           { return nil }
