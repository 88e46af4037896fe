package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

func TestSuspendResumeRetry(t *testing.T) {
	repo, _ := verbRepo(t)
	file := filepath.Join(repo.Work, "releases/demo/canary/release.yaml")
	if out, errs, code := run(t, repo.Work, "suspend", "demo/canary"); code != 0 || !strings.Contains(out, "suspend demo/canary") {
		t.Fatalf("suspend: %d %s %s", code, out, errs)
	}
	p := parseFile(t, file)
	if !p.Release.Spec.Suspend {
		t.Fatal("suspend did not set spec.suspend")
	}
	if _, errs, code := run(t, repo.Work, "resume", "demo/canary"); code != 0 {
		t.Fatal(errs)
	}
	if parseFile(t, file).Release.Spec.Suspend {
		t.Fatal("resume left spec.suspend true")
	}
	if log := gitserver.Git(t, repo.Work, "log", "--format=%s", "-2"); !strings.Contains(log, "resume demo/canary") || !strings.Contains(log, "suspend demo/canary") {
		t.Errorf("commits:\n%s", log)
	}
	// No aborted revision in status: retry refuses, nothing committed.
	head := gitserver.Git(t, repo.Work, "rev-parse", "HEAD")
	if _, errs, code := run(t, repo.Work, "retry", "demo/canary"); code != 1 || !strings.Contains(errs, "no aborted revision") {
		t.Errorf("retry without an abort: %d %s", code, errs)
	}
	if gitserver.Git(t, repo.Work, "rev-parse", "HEAD") != head {
		t.Error("a refused retry committed")
	}
	// With an aborted revision on the status branch, retry names it.
	aborted := "abcdef0123456789abcdef0123456789abcdef01"
	gitserver.Git(t, repo.Work, "checkout", "-q", "sluice/status")
	st := filepath.Join(repo.Work, "releases/demo/canary/status.yaml")
	os.WriteFile(st, []byte("apiVersion: sluice.dev/v1alpha1\nkind: ReleaseStatus\nmetadata: {name: canary, namespace: demo}\nphase: Aborted\nstep: 0\nweight: 0\nstable: {revision: 1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, digest: s}\nabortedDigest: c\nabortedRevision: "+aborted+"\n"), 0o644)
	gitserver.Git(t, repo.Work, "commit", "-q", "-am", "aborted")
	gitserver.Git(t, repo.Work, "push", "-q", "origin", "sluice/status")
	gitserver.Git(t, repo.Work, "checkout", "-q", "main")
	if out, errs, code := run(t, repo.Work, "retry", "demo/canary"); code != 0 || !strings.Contains(out, aborted[:7]) {
		t.Fatalf("retry: %d %s %s", code, out, errs)
	}
	if r := parseFile(t, file).Release.Spec.Retry; r == nil || r.Revision != aborted[:7] {
		t.Fatalf("spec.retry = %+v", r)
	}
}

func parseFile(t *testing.T, file string) *v1alpha1.Parsed {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v1alpha1.ParseRelease("releases/demo/canary/release.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A verb outside a Git work tree fails before touching the file.
func TestVerbOutsideGitLeavesTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	src, _ := os.ReadFile("../../examples/releases/demo/canary/release.yaml")
	file := filepath.Join(dir, "releases/demo/canary/release.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, src, 0o644)
	_, errs, code := run(t, dir, "suspend", "demo/canary")
	if code != 1 || !strings.Contains(errs, "not a Git work tree") {
		t.Errorf("suspend outside Git: %d %s", code, errs)
	}
	if after, _ := os.ReadFile(file); string(after) != string(src) {
		t.Errorf("the release file was changed:\n%s", after)
	}
}

// Flow-style YAML is valid YAML: the editor changes it instead of refusing.
func TestEditFlowStyle(t *testing.T) {
	tests := []struct {
		name, in string
		edit     func(e *yamlEdit) error
		want     []string
	}{
		{"set inside a flow mapping", "spec:\n  strategy: {canary: {weight: 0}}\n  # keep me\n",
			func(e *yamlEdit) error { return e.set("25", "spec", "strategy", "canary", "weight") },
			[]string{"weight: 25", "# keep me"}},
		{"append to an empty flow list", "spec:\n  gates: {approved: []}\n",
			func(e *yamlEdit) error {
				return e.appendItem("{gate: qa, revision: abcdef1}", "spec", "gates", "approved")
			},
			[]string{"gate: qa", "revision: abcdef1"}},
		{"set on a flow spec", "spec: {suspend: false, workload: {kind: Deployment, name: x}}\n",
			func(e *yamlEdit) error { return e.set("true", "spec", "suspend") },
			[]string{"suspend: true", "name: x"}},
		{"block style stays line-edited", "spec:\n  suspend: false # why\n",
			func(e *yamlEdit) error { return e.set("true", "spec", "suspend") },
			[]string{"  suspend: true\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newYAMLEdit([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.edit(e); err != nil {
				t.Fatalf("edit: %v", err)
			}
			got := string(e.bytes())
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
		})
	}
}
