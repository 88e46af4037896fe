package render

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// DefaultMaxObjects bounds the objects one release may render to.
const DefaultMaxObjects = 5000

// Input is one release to render.
type Input struct {
	// FS holds the repository.
	FS filesys.FileSystem
	// Root is the repository's root directory in FS ("/" for a Git tree,
	// the work tree's absolute path on disk).
	Root string
	// Release is the parsed release file.
	Release *v1alpha1.Parsed
	// CacheKey identifies the source's content, e.g. the Git tree hash of
	// the kustomization directory. Empty disables the cache.
	CacheKey string
}

// Result is a release rendered. Its objects are the caller's own: a cached
// render is decoded afresh for each caller.
type Result struct {
	// Objects in kustomize's output order.
	Objects []*unstructured.Unstructured
	// YAML is the render as kustomize prints it.
	YAML []byte
	// Digest is the sha256 of the whole render in canonical form.
	Digest string
	// VersionDigest is the digest of the workload's pod template and the
	// ConfigMaps and Secrets it references: what a canary tests.
	VersionDigest string
	// Workload, Route and Service are the objects the spec names (Route and
	// Service are nil without spec.traffic).
	Workload *unstructured.Unstructured
	Route    *unstructured.Unstructured
	Service  *unstructured.Unstructured
	// Autoscaler is the HorizontalPodAutoscaler in the render that scales
	// the workload, nil when none does: then the workload's replicas are
	// the autoscaler's, not sluice's.
	Autoscaler *unstructured.Unstructured
	// Config are the ConfigMaps and Secrets the workload references that
	// the render holds.
	Config []*unstructured.Unstructured
	// Cached tells whether this result came from the cache.
	Cached bool
}

// Replicas is the workload's spec.replicas as rendered (1 when unset).
func (r *Result) Replicas() int32 {
	n, found, _ := unstructured.NestedInt64(r.Workload.Object, "spec", "replicas")
	if !found {
		return 1
	}
	return int32(n)
}

// ProgressDeadline is the workload's spec.progressDeadlineSeconds, 0 when
// unset.
func (r *Result) ProgressDeadline() time.Duration {
	s, found, _ := unstructured.NestedInt64(r.Workload.Object, "spec", "progressDeadlineSeconds")
	if !found || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// Version is the digest a release's state machine compares: the version
// digest for routed strategies, the whole render's for rolling and
// recreate (where the whole render is the version).
func (r *Result) Version(routed bool) string {
	if routed {
		return r.VersionDigest
	}
	return r.Digest
}

// build is the part of a render that depends only on the source tree: its
// objects, or the error that deterministically comes of it.
type build struct {
	// objects are decoded on the build that made them; the cache keeps
	// each object's JSON instead (encoded), a fraction of the decoded
	// maps' size, and decodes it again on a hit.
	objects []*unstructured.Unstructured
	encoded [][]byte
	yaml    []byte
	digest  string
	err     error
	// size is what the entry costs the cache.
	size int64
}

// cached is the form of b the cache keeps: its objects as JSON.
func (b *build) cached() (*build, error) {
	c := &build{yaml: b.yaml, digest: b.digest, err: b.err, size: int64(len(b.yaml))}
	if b.err != nil {
		c.size = int64(len(b.err.Error()))
	}
	for _, o := range b.objects {
		data, err := o.MarshalJSON()
		if err != nil {
			return nil, err
		}
		c.encoded = append(c.encoded, data)
		c.size += int64(len(data))
	}
	return c, nil
}

// decode returns fresh objects of a cached build.
func (b *build) decode() ([]*unstructured.Unstructured, error) {
	objs := make([]*unstructured.Unstructured, 0, len(b.encoded))
	for _, data := range b.encoded {
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// Renderer renders releases and caches the builds by source identity.
// The zero value is ready to use; a Renderer is safe for concurrent use.
type Renderer struct {
	// MaxObjects bounds a render's object count; 0 means DefaultMaxObjects.
	MaxObjects int
	// Budgets bound each build's reads (YAML nodes, bytes, documents, time).
	Budgets Budgets
	// MaxCacheBytes bounds the cached renders by their size; 0 means
	// DefaultMaxCacheBytes.
	MaxCacheBytes int64
	// Tenancy is what a release may touch beyond its own namespace.
	Tenancy v1alpha1.Tenancy
	// Decryptor opens SOPS-encrypted files as the build reads them; nil
	// refuses them, naming the file.
	Decryptor *Decryptor
	// Capabilities says what Helm charts see of the cluster (asked only
	// when a chart renders); nil means Helm's defaults.
	Capabilities func() Capabilities

	mu     sync.Mutex
	cache  map[string]*build
	order  []string
	cached int64 // bytes held by cache
	hits   int
}

// DefaultMaxCacheBytes bounds the render cache: the rendered YAML of the
// cached builds and their objects' JSON.
const DefaultMaxCacheBytes = 96 << 20

// buildMu serialises krusty builds: kustomize's global OpenAPI and plugin
// state is not safe for concurrent builds (as kustomize-controller found).
var buildMu sync.Mutex

// Hits returns the number of cache hits so far.
func (r *Renderer) Hits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// Render builds the release's source and checks that the objects the spec
// names are in it. Spec and render problems come back as a
// v1alpha1.ErrorList located in the repository's files.
func (r *Renderer) Render(ctx context.Context, in Input) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := in.CacheKey
	if key != "" && in.Release.Release.Spec.Source.Helm != nil {
		// A chart's render depends on the cluster it is told of, too.
		key += "|capabilities:" + r.capabilities().key()
	}
	b, cached := r.lookup(key)
	if !cached {
		var err error
		b, err = r.build(in)
		if err != nil {
			// A located error comes of the inputs alone: the same inputs
			// are not built again (a budget-busting file costs once).
			var list v1alpha1.ErrorList
			if errors.As(err, &list) {
				r.store(key, &build{err: err})
			}
			return nil, err
		}
		r.store(key, b)
	}
	if b.err != nil {
		return nil, b.err
	}
	objs := b.objects
	if cached {
		var err error
		if objs, err = b.decode(); err != nil {
			return nil, err
		}
	}
	res := &Result{Objects: objs, YAML: b.yaml, Digest: b.digest, Cached: cached}
	if err := locate(in.Release, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Renderer) lookup(key string) (*build, bool) {
	if key == "" {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.cache[key]
	if ok {
		r.hits++
	}
	return b, ok
}

// store caches a build (or a deterministic failure) under key, evicting
// the oldest entries while the cache holds more than MaxCacheBytes.
func (r *Renderer) store(key string, b *build) {
	if key == "" {
		return
	}
	b, err := b.cached()
	if err != nil {
		return // not kept: built again next time
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string]*build{}
	}
	if _, ok := r.cache[key]; ok {
		return
	}
	limit := r.MaxCacheBytes
	if limit <= 0 {
		limit = DefaultMaxCacheBytes
	}
	if b.size > limit {
		return // bigger than the whole cache: not kept
	}
	for r.cached+b.size > limit && len(r.order) > 0 {
		old := r.order[0]
		r.cached -= r.cache[old].size
		delete(r.cache, old)
		r.order = r.order[1:]
	}
	r.cache[key] = b
	r.cached += b.size
	r.order = append(r.order, key)
}

func (r *Renderer) capabilities() Capabilities {
	if r.Capabilities == nil {
		return Capabilities{}
	}
	return r.Capabilities()
}

// repoPath shows an FS path relative to the repository root.
func repoPath(root, p string) string {
	rel := strings.TrimPrefix(p, strings.TrimSuffix(root, "/")+"/")
	if rel == p && p == root {
		return "."
	}
	return rel
}

func (r *Renderer) build(in Input) (*build, error) {
	rel := in.Release
	dir := path.Join(in.Root, rel.SourceDir())
	display := func(p string) string { return repoPath(in.Root, p) }
	helm := rel.Release.Spec.Source.Helm != nil
	if !in.FS.IsDir(dir) {
		return nil, v1alpha1.ErrorList{rel.Errorf("spec.source.path", "%s is not a directory in the repository", rel.SourceDir())}
	}
	kf := kustomizationFile(in.FS, dir)
	if kf == "" && !helm {
		return nil, v1alpha1.ErrorList{rel.Errorf("spec.source.path", "%s holds no kustomization.yaml", rel.SourceDir())}
	}
	// Every file the build reads is charged to its budgets first.
	bfs := newBudgetFS(in.FS, r.Budgets, display)
	bfs.decrypt = r.Decryptor
	var fsys filesys.FileSystem = bfs
	if helm {
		manifest, err := r.helmTemplate(bfs, in.Root, rel, r.Budgets)
		if berr := bfs.exceeded(); berr != nil {
			return nil, v1alpha1.ErrorList{rel.Errorf("spec.source.helm.chart", "%v", berr)}
		}
		if err != nil {
			return nil, err
		}
		if kf == "" {
			// The chart's render is the whole source.
			objs, err := decodeManifest(manifest)
			if err != nil {
				return nil, v1alpha1.ErrorList{rel.Errorf("spec.source.helm.chart", "the chart's render: %v", err)}
			}
			return r.finish(objs, manifest, func(msg string) error {
				return v1alpha1.ErrorList{rel.Errorf("spec.source.helm.chart", "%s", msg)}
			})
		}
		if fsys, kf, err = withChartResource(bfs, dir, manifest); err != nil {
			return nil, v1alpha1.ErrorList{rel.Errorf("spec.source.helm", "%v", err)}
		}
	}
	if err := checkSources(fsys, dir, display); err != nil {
		if berr := bfs.exceeded(); berr != nil {
			return nil, v1alpha1.ErrorList{{File: display(kf), Message: berr.Error()}}
		}
		return nil, err
	}
	objs, yml, err := kustomize(fsys, dir)
	if berr := bfs.exceeded(); berr != nil {
		return nil, v1alpha1.ErrorList{{File: display(kf), Message: berr.Error()}}
	}
	if err != nil {
		return nil, v1alpha1.ErrorList{{File: display(kf), Message: "kustomize build failed: " + err.Error()}}
	}
	return r.finish(objs, yml, func(msg string) error { return v1alpha1.ErrorList{{File: display(kf), Message: msg}} })
}

// finish bounds a build's objects and digests them; located makes the
// error of a render over the limit.
func (r *Renderer) finish(objs []*unstructured.Unstructured, yml []byte, located func(string) error) (*build, error) {
	max := r.MaxObjects
	if max == 0 {
		max = DefaultMaxObjects
	}
	if len(objs) > max {
		return nil, located(fmt.Sprintf("renders %d objects, over the limit of %d", len(objs), max))
	}
	digest, err := Digest(objs)
	if err != nil {
		return nil, err
	}
	return &build{objects: objs, yaml: yml, digest: digest}, nil
}

// kustomize runs krusty with sluice's safe options, one build at a time,
// turning its panics into errors.
func kustomize(fsys filesys.FileSystem, dir string) (objs []*unstructured.Unstructured, yml []byte, err error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kustomize panicked: %v\n%s", p, firstLines(string(debug.Stack()), 8))
		}
	}()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.PluginConfig.HelmConfig.Enabled = false
	opts.PluginConfig.FnpLoadingOptions.EnableExec = false
	opts.PluginConfig.FnpLoadingOptions.Network = false
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return nil, nil, err
	}
	for _, res := range m.Resources() {
		// Through JSON, so numbers are int64 and float64 as client-go's
		// unstructured helpers expect, not kyaml's ints.
		data, err := res.MarshalJSON()
		if err != nil {
			return nil, nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", res.CurId(), err)
		}
		objs = append(objs, obj)
	}
	yml, err = m.AsYaml()
	return objs, yml, err
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
