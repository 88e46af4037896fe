package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden")

// TestReadVerbsGolden: what the read verbs print, in each output format,
// for a repository with releases paused mid-canary, against files in
// testdata/golden (go test ./cmd/sluice -run Golden -update rewrites
// them). Commit ids and times, which differ on every run, are replaced by
// placeholders first.
func TestReadVerbsGolden(t *testing.T) {
	repo, rev := verbRepo(t)
	statusRev := gitserver.Git(t, repo.Work, "rev-parse", "origin/sluice/status")
	normalize := strings.NewReplacer(rev, "<canary-revision>", rev[:7], "<canary>", statusRev, "<status-commit>", statusRev[:7], "<status>")
	times := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"status-release", []string{"status", "demo/canary"}},
		{"status-yaml", []string{"status", "demo/canary", "-o", "yaml"}},
		{"status-json", []string{"status", "-o", "json"}},
		{"history", []string{"history", "demo/canary"}},
		{"history-json", []string{"history", "demo/canary", "-o", "json"}},
		{"history-yaml", []string{"history", "demo/canary", "-o", "yaml"}},
		{"validate", []string{"validate", "."}},
		{"validate-json", []string{"validate", ".", "-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, repo.Work, tc.args...)
			if code != 0 {
				t.Fatalf("sluice %s: exit %d %s", strings.Join(tc.args, " "), code, errs)
			}
			got := times.ReplaceAllString(normalize.Replace(out+errs), "<time>")
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *updateGolden {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/sluice -run Golden -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("sluice %s (-golden +got):\n%s", strings.Join(tc.args, " "), diff)
			}
		})
	}
}
