package render

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// aliasBomb is the "billion laughs": 9^9 strings from ~400 bytes.
const aliasBomb = `apiVersion: v1
kind: ConfigMap
metadata: {name: bomb}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

func manyDocs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c%d}\n", i)
	}
	return b.String()
}

// TestBudgets: each budget fails its own render with a located error that
// says which, before kustomize builds; the failure is cached for the same
// inputs.
func TestBudgets(t *testing.T) {
	tests := []struct {
		name    string
		budgets Budgets
		files   map[string]string
		want    string
	}{
		{"alias bomb in a resource", Budgets{}, map[string]string{
			"releases/shop/app/other.yaml": aliasBomb,
		}, "releases/shop/app/other.yaml: a YAML document expands to more than 2000000 nodes"},
		{"alias bomb in a patch", Budgets{}, map[string]string{
			"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml]\npatches: [{path: bomb.yaml}]\n",
			"releases/shop/app/bomb.yaml":          aliasBomb,
		}, "bomb.yaml: a YAML document expands to more than"},
		{"too many documents", Budgets{}, map[string]string{
			"releases/shop/app/other.yaml": manyDocs(DefaultMaxDocuments + 1),
		}, fmt.Sprintf("more than %d YAML documents", DefaultMaxDocuments)},
		{"too many bytes", Budgets{MaxBytes: 2000}, map[string]string{
			"releases/shop/app/other.yaml": manyDocs(40),
		}, "the build read more than 2000 bytes"},
		{"too long", Budgets{MaxTime: time.Nanosecond}, nil, "the build took longer than 1ns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Renderer{Budgets: tc.budgets}
			dir := repo(t, appRepo(tc.files))
			start := time.Now()
			_, err := load(t, &r, dir, "key")
			var list v1alpha1.ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ErrBudget.Error()) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
			// The same inputs are not built again.
			if _, err2 := load(t, &r, dir, "key"); err2 == nil || err2.Error() != err.Error() || r.Hits() != 1 {
				t.Errorf("second render: %v (hits %d)", err2, r.Hits())
			}
		})
	}
}

// The cache holds at most MaxCacheBytes of renders, dropping the oldest.
func TestCacheBoundedInBytes(t *testing.T) {
	r := Renderer{MaxCacheBytes: 20_000}
	dir := repo(t, appRepo(nil))
	for i := range 20 {
		if _, err := load(t, &r, dir, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached > 20_000 || len(r.cache) == 0 || len(r.cache) >= 20 {
		t.Errorf("cache holds %d bytes in %d entries", r.cached, len(r.cache))
	}
}
