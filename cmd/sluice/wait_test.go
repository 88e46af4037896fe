package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// setStatus commits a new status.yaml for demo/canary on the status
// branch of repo's remote, as the agent would.
func setStatus(t *testing.T, repo *gitserver.Repo, phase, canaryRev, stableRev string, extra ...string) {
	t.Helper()
	gitserver.Git(t, repo.Work, "fetch", "-q", "origin")
	wt := filepath.Join(t.TempDir(), "status")
	gitserver.Git(t, repo.Work, "worktree", "add", "-q", wt, "origin/sluice/status")
	canary := ""
	if canaryRev != "" {
		canary = "canary: {revision: " + canaryRev + ", digest: c}\n"
	}
	p := filepath.Join(wt, "releases/demo/canary/status.yaml")
	os.WriteFile(p, []byte("apiVersion: sluice.dev/v1alpha1\nkind: ReleaseStatus\nmetadata: {name: canary, namespace: demo}\nphase: "+phase+"\nstable: {revision: "+stableRev+", digest: s}\n"+canary+strings.Join(extra, "")), 0o644)
	gitserver.Git(t, wt, "commit", "-q", "-am", "sluice: demo/canary "+phase)
	gitserver.Git(t, wt, "push", "-q", "origin", "HEAD:sluice/status")
	gitserver.Git(t, repo.Work, "worktree", "remove", "--force", wt)
}

// TestWait: sluice wait exits 0 once the phase is reached (for the given
// revision), 1 when the release ends otherwise, 3 on timeout, 2 on a
// usage error.
func TestWait(t *testing.T) {
	repo, rev := verbRepo(t)
	gitserver.Git(t, repo.Work, "fetch", "-q", "origin")
	wait := func(args ...string) (string, string, int) {
		return run(t, repo.Work, append([]string{"wait", "demo/canary", "--interval", "100ms"}, args...)...)
	}
	if out, errs, code := wait("--for", "Paused", "--timeout", "5s"); code != 0 || !strings.Contains(out, "demo/canary: Paused") {
		t.Errorf("wait for the current phase: exit %d %s%s", code, out, errs)
	}
	if _, errs, code := wait("--for", "Succeeded", "--timeout", "1s"); code != 3 || !strings.Contains(errs, "timed out after 1s") {
		t.Errorf("timeout: exit %d %s", code, errs)
	}
	if _, errs, code := wait("--for", "Done"); code != 2 || !strings.Contains(errs, "want one of") {
		t.Errorf("a phase that does not exist: exit %d %s", code, errs)
	}
	if _, errs, code := run(t, repo.Work, "wait", "canary"); code != 2 || !strings.Contains(errs, "want <namespace>/<name>") {
		t.Errorf("a bare name: exit %d %s", code, errs)
	}
	// Another version succeeding does not answer a wait for rev; rev
	// promoted while waiting does.
	setStatus(t, repo, "Succeeded", "", strings.Repeat("2", 40))
	if _, _, code := wait("--for", "Succeeded", "--revision", rev[:10], "--timeout", "1s"); code != 3 {
		t.Errorf("a Succeeded of another revision counted: exit %d", code)
	}
	done := make(chan int, 1)
	go func() {
		_, _, code := wait("--for", "Succeeded", "--revision", rev[:10], "--timeout", "20s")
		done <- code
	}()
	time.Sleep(500 * time.Millisecond)
	setStatus(t, repo, "Succeeded", "", rev)
	if code := <-done; code != 0 {
		t.Errorf("rev promoted while waiting: exit %d", code)
	}
	// Aborted while waiting for Succeeded: exit 1 at once.
	setStatus(t, repo, "Aborted", rev, strings.Repeat("2", 40))
	start := time.Now()
	if _, errs, code := wait("--for", "Succeeded", "--timeout", "20s"); code != 1 || !strings.Contains(errs, "ended Aborted, not Succeeded") || time.Since(start) > 10*time.Second {
		t.Errorf("aborted: exit %d after %s: %s", code, time.Since(start), errs)
	}
}

func TestVersionAndOutputs(t *testing.T) {
	out, _, code := run(t, ".", "--version")
	if code != 0 || !strings.HasPrefix(out, "sluice ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: %q exit %d", out, code)
	}
	out, _, code = run(t, ".", "version", "-o", "json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["version"] == "" || v["commit"] == "" || v["date"] == "" || !strings.HasPrefix(v["goVersion"], "go1.") {
		t.Errorf("version -o json: %q (%v) exit %d", out, err, code)
	}
	if _, errs, code := run(t, ".", "version", "-o", "xml"); code != 2 || !strings.Contains(errs, "want table, yaml or json") {
		t.Errorf("version -o xml: exit %d %s", code, errs)
	}
	repo, rev := verbRepo(t)
	out, _, code = run(t, repo.Work, "history", "demo/canary", "-o", "json")
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0]["phase"] != "Paused" || rows[0]["revision"] != rev {
		t.Errorf("history -o json: %s (%v)", out, err)
	}
	out, _, code = run(t, "../..", "validate", "-o", "json", "testdata/invalid/weight-out-of-range.yaml", "examples/releases/demo/canary")
	var results []validateResult
	if err := json.Unmarshal([]byte(out), &results); code != 1 || err != nil || len(results) != 2 {
		t.Fatalf("validate -o json: exit %d %v\n%s", code, err, out)
	}
	bad, good := results[0], results[1]
	if bad.Valid || len(bad.Errors) != 1 || bad.Errors[0].Line != 14 || bad.Errors[0].Field != "spec.strategy.canary.steps[2].setWeight" || !good.Valid {
		t.Errorf("validate -o json: %+v", results)
	}
}

// TestCompletion: the shell completes release names from the clone and,
// for approve, the gates of the release's strategy (cobra's __complete,
// which the generated bash/zsh/fish scripts call).
func TestCompletion(t *testing.T) {
	repo, _ := verbRepo(t)
	out, _, code := run(t, repo.Work, "__complete", "approve", "demo/c")
	if code != 0 || !strings.Contains(out, "demo/canary\n") || !strings.Contains(out, "demo/canary-manual\n") || !strings.Contains(out, ":4\n") {
		t.Errorf("release names: exit %d\n%s", code, out)
	}
	out, _, _ = run(t, repo.Work, "__complete", "approve", "demo/canary", "")
	if lines := strings.Split(out, "\n"); lines[0] != "qa" {
		t.Errorf("gates of demo/canary:\n%s", out)
	}
	out, _, _ = run(t, repo.Work, "__complete", "status", "demo/canary-")
	if !strings.HasPrefix(out, "demo/canary-manual\n") {
		t.Errorf("status completion:\n%s", out)
	}
}

// TestErrorsInPlainWords: what a person can get wrong is said plainly and
// the same way by every verb: a bare name (exit 2), a release that does
// not exist (before any status is read), outside a clone, a push the
// remote rejects.
func TestErrorsInPlainWords(t *testing.T) {
	repo, _ := verbRepo(t)
	for _, verb := range [][]string{{"approve", "canary", "qa"}, {"abort", "canary"}, {"promote", "canary"}, {"retry", "canary"},
		{"suspend", "canary"}, {"resume", "canary"}, {"status", "canary"}, {"history", "canary"}, {"wait", "canary"}, {"set-weight", "canary", "10"}} {
		if _, errs, code := run(t, repo.Work, verb...); code != 2 || !strings.Contains(errs, `release "canary": want <namespace>/<name>, e.g. shop/cart`) {
			t.Errorf("%s with a bare name: exit %d %s", verb[0], code, errs)
		}
	}
	for _, verb := range [][]string{{"approve", "demo/nope", "qa"}, {"abort", "demo/nope"}, {"status", "demo/nope"}, {"wait", "demo/nope"}} {
		if _, errs, code := run(t, repo.Work, verb...); code != 1 || !strings.Contains(errs, "release demo/nope not found: there is no releases/demo/nope/release.yaml in this clone") {
			t.Errorf("%s of a missing release: exit %d %s", verb[0], code, errs)
		}
	}
	for _, verb := range [][]string{{"abort", "demo/canary"}, {"status"}, {"history", "demo/canary"}} {
		if _, errs, code := run(t, t.TempDir(), verb...); code != 1 || !strings.Contains(errs, "is not inside a Git clone") || strings.Contains(errs, "fatal:") {
			t.Errorf("%s outside a clone: exit %d %s", verb[0], code, errs)
		}
	}
	// Someone pushed first.
	other := filepath.Join(t.TempDir(), "other")
	gitserver.Git(t, t.TempDir(), "clone", "-q", repo.Bare, other)
	gitserver.Git(t, other, "commit", "-q", "--allow-empty", "-m", "someone else")
	gitserver.Git(t, other, "push", "-q", "origin", "main")
	if _, errs, code := run(t, repo.Work, "approve", "demo/canary", "qa", "--push"); code != 1 || !strings.Contains(errs, "not pushed: the remote has new commits; git pull --rebase and push again") {
		t.Errorf("push rejected: exit %d %s", code, errs)
	}
}

// TestStatusStepAndWatch: the step reads as k/n and what it does, from
// the release file; --watch prints the table anew when the status branch
// moves.
func TestStatusStepAndWatch(t *testing.T) {
	repo, rev := verbRepo(t)
	data, _ := os.ReadFile(filepath.Join(repo.Work, "releases/demo/canary/release.yaml"))
	p, err := v1alpha1.ParseRelease("release.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	steps := p.Release.Spec.Strategy.Steps()
	want := fmt.Sprintf("7/%d %s", len(steps), steps[6])
	out, errs, code := run(t, repo.Work, "status")
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("status does not show %q: exit %d %s\n%s", want, code, errs, out)
	}
	done := make(chan string, 1)
	go func() {
		out, _, _ := run(t, repo.Work, "status", "demo/canary", "--watch", "--interval", "100ms", "--timeout", "4s")
		done <- out
	}()
	time.Sleep(time.Second)
	setStatus(t, repo, "Succeeded", "", rev)
	out = <-done
	if n := strings.Count(out, "  status "); n != 2 || !strings.Contains(out, "Paused") || !strings.Contains(out, "Succeeded") {
		t.Errorf("--watch printed %d tables:\n%s", n, out)
	}
}

// TestRollback: with a canary in flight the release's files go back to the
// stable revision; with none, to the version promoted before the current
// one. Each is one commit of the release's directory only.
func TestRollback(t *testing.T) {
	repo, v1 := verbRepo(t)
	dep := filepath.Join(repo.Work, "releases/demo/canary/deployment.yaml")
	old, _ := os.ReadFile(dep)
	v2 := repo.Commit(t, "v2", map[string]string{"releases/demo/canary/deployment.yaml": strings.Replace(string(old), "6.7.0", "6.7.1", 1), "README.md": "elsewhere\n"})
	repo.Push(t)
	setStatus(t, repo, "Paused", v2, v1)
	out, errs, code := run(t, repo.Work, "rollback", "demo/canary")
	if code != 0 || !strings.Contains(out, "rollback demo/canary to "+v1[:7]+" (the stable version, ending the canary)") {
		t.Fatalf("rollback of a canary: exit %d %s%s", code, out, errs)
	}
	if now, _ := os.ReadFile(dep); string(now) != string(old) {
		t.Errorf("deployment.yaml not restored:\n%s", now)
	}
	if changed := gitserver.Git(t, repo.Work, "show", "--name-only", "--format=", "HEAD"); changed != "releases/demo/canary/deployment.yaml" {
		t.Errorf("the rollback commit touched %q", changed)
	}
	if readme, _ := os.ReadFile(filepath.Join(repo.Work, "README.md")); string(readme) != "elsewhere\n" {
		t.Error("a file outside the release was rolled back")
	}
	// No canary: back to the version promoted before.
	v3 := repo.Commit(t, "v3", map[string]string{"releases/demo/canary/deployment.yaml": strings.Replace(string(old), "6.7.0", "6.7.2", 1)})
	repo.Push(t)
	setStatus(t, repo, "Succeeded", "", v3, "promoted:\n- {revision: "+v2+", digest: d2}\n")
	out, errs, code = run(t, repo.Work, "rollback", "demo/canary")
	if code != 0 || !strings.Contains(out, "to "+v2[:7]+" (the version promoted before the current one)") {
		t.Fatalf("rollback after a promotion: exit %d %s%s", code, out, errs)
	}
	if now, _ := os.ReadFile(dep); !strings.Contains(string(now), "6.7.1") {
		t.Errorf("not back at v2:\n%s", now)
	}
	setStatus(t, repo, "Succeeded", "", v3)
	if _, errs, code := run(t, repo.Work, "rollback", "demo/canary"); code != 1 || !strings.Contains(errs, "no version to roll back to") {
		t.Errorf("nothing to roll back to: exit %d %s", code, errs)
	}
}

// TestCLIReferenceUpToDate: docs/cli/ is what the commands say of
// themselves (make docs writes it).
func TestCLIReferenceUpToDate(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(sluiceBin, "docs", dir)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOPS_AGE_KEY_FILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sluice docs: %v\n%s", err, out)
	}
	fresh, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	kept, _ := filepath.Glob("../../docs/cli/*.md")
	if len(fresh) != len(kept) || len(fresh) == 0 {
		t.Fatalf("docs/cli has %d pages, the commands make %d: run make docs", len(kept), len(fresh))
	}
	for _, f := range fresh {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("../../docs/cli", filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("docs/cli/%s is out of date: run make docs", filepath.Base(f))
		}
	}
}
