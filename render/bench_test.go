package render

import (
	"context"
	"os/exec"
	"testing"
)

// benchRepo generates a 1,000-object source with hack/gen-source.sh.
func benchRepo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if out, err := exec.Command("../hack/gen-source.sh", dir, "1000").CombinedOutput(); err != nil {
		b.Fatalf("gen-source: %v\n%s", err, out)
	}
	return dir
}

func benchLoad(b *testing.B, r *Renderer, dir, key string) *Result {
	fsys, err := NewDiskFS(dir)
	if err != nil {
		b.Fatal(err)
	}
	_, res, err := r.Load(context.Background(), fsys, fsys.Root(), "releases/bench/app/release.yaml", key)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkRender1000 renders 1,000 objects with no cache: the cost of a
// changed release.
func BenchmarkRender1000(b *testing.B) {
	dir := benchRepo(b)
	var r Renderer
	benchLoad(b, &r, dir, "") // load kustomize's OpenAPI schema once, as a process does
	b.ResetTimer()
	for b.Loop() {
		benchLoad(b, &r, dir, "")
	}
}

// BenchmarkRenderCacheHit is an unchanged release: goal <= 5 ms.
func BenchmarkRenderCacheHit(b *testing.B) {
	dir := benchRepo(b)
	var r Renderer
	benchLoad(b, &r, dir, "tree")
	b.ResetTimer()
	for b.Loop() {
		if res := benchLoad(b, &r, dir, "tree"); !res.Cached {
			b.Fatal("cache miss")
		}
	}
}
