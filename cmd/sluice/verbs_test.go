package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// verbRepo is a clone (with a bare origin) holding the canary and manual
// examples, and a status branch naming a canary revision.
func verbRepo(t *testing.T) (*gitserver.Repo, string) {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{"canary", "canary-manual"} {
		dir := filepath.Join("../../examples/releases/demo", name)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			files["releases/demo/"+name+"/"+e.Name()] = string(b)
		}
	}
	repo := gitserver.NewRepo(t, t.TempDir(), "deploy", files)
	canaryRev := repo.Head(t, "main")
	gitserver.Git(t, repo.Work, "checkout", "-q", "--orphan", "sluice/status")
	gitserver.Git(t, repo.Work, "rm", "-q", "-rf", ".")
	for _, name := range []string{"canary", "canary-manual"} {
		p := filepath.Join(repo.Work, "releases/demo", name, "status.yaml")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("apiVersion: sluice.dev/v1alpha1\nkind: ReleaseStatus\nmetadata: {name: "+name+", namespace: demo}\nphase: Paused\nstep: 6\nweight: 25\nstable: {revision: 1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, digest: s}\ncanary: {revision: "+canaryRev+", digest: c}\nmessage: waiting for approval\n"), 0o644)
	}
	gitserver.Git(t, repo.Work, "add", "-A")
	gitserver.Git(t, repo.Work, "commit", "-q", "-m", "sluice: demo/canary Paused\n\nSluice-Release: demo/canary\nSluice-Phase: Paused\nSluice-Step: 6\nSluice-Weight: 25\nSluice-Revision: "+canaryRev)
	gitserver.Git(t, repo.Work, "push", "-q", "origin", "sluice/status")
	gitserver.Git(t, repo.Work, "checkout", "-q", "main")
	return repo, canaryRev
}

func TestApproveCommitsAndKeepsComments(t *testing.T) {
	repo, rev := verbRepo(t)
	before := gitserver.Git(t, repo.Work, "rev-parse", "HEAD")
	out, errs, code := run(t, repo.Work, "approve", "demo/canary", "qa")
	if code != 0 {
		t.Fatalf("approve: exit %d %s %s", code, out, errs)
	}
	if parent := gitserver.Git(t, repo.Work, "rev-parse", "HEAD^"); parent != before {
		t.Fatal("approve did not make exactly one commit")
	}
	data, _ := os.ReadFile(filepath.Join(repo.Work, "releases/demo/canary/release.yaml"))
	s := string(data)
	if !strings.Contains(s, "{gate: qa, revision: "+rev[:7]+"}") {
		t.Errorf("approval missing:\n%s", s)
	}
	for _, comment := range []string{"# A canary walked through weighted steps", "# HTTPRoute in this kustomization", "# the stable Service its backendRefs name"} {
		if !strings.Contains(s, comment) {
			t.Errorf("comment %q lost:\n%s", comment, s)
		}
	}
	if _, errs, code := run(t, repo.Work, "validate", "releases/"); code != 0 {
		t.Errorf("the approval commit does not validate: %s", errs)
	}
	if gitserver.Git(t, repo.Bare, "rev-parse", "main") != before {
		t.Error("approve pushed without --push")
	}
	// Approving again changes nothing.
	head := gitserver.Git(t, repo.Work, "rev-parse", "HEAD")
	if out, _, code := run(t, repo.Work, "approve", "demo/canary", "qa"); code != 0 || !strings.Contains(out, "already approved") || gitserver.Git(t, repo.Work, "rev-parse", "HEAD") != head {
		t.Errorf("a second approval: exit %d %s", code, out)
	}
	// --push pushes; an unknown gate is refused by the typo guard and
	// nothing is committed.
	gitserver.Git(t, repo.Work, "reset", "-q", "--hard", "HEAD^")
	if _, errs, code := run(t, repo.Work, "approve", "demo/canary", "qa", "--push"); code != 0 {
		t.Fatalf("approve --push: %s", errs)
	}
	if gitserver.Git(t, repo.Bare, "rev-parse", "main") != gitserver.Git(t, repo.Work, "rev-parse", "HEAD") {
		t.Error("--push did not push")
	}
	head = gitserver.Git(t, repo.Work, "rev-parse", "HEAD")
	_, errs, code = run(t, repo.Work, "approve", "demo/canary", "q-a")
	if code != 1 || !strings.Contains(errs, `no pause step names the gate "q-a"`) || gitserver.Git(t, repo.Work, "rev-parse", "HEAD") != head {
		t.Errorf("unknown gate: exit %d %s", code, errs)
	}
}

func TestAbortPromoteSetWeight(t *testing.T) {
	repo, rev := verbRepo(t)
	if _, errs, code := run(t, repo.Work, "abort", "demo/canary", "--reason", "latency regression"); code != 0 {
		t.Fatal(errs)
	}
	if _, errs, code := run(t, repo.Work, "promote", "demo/canary"); code != 0 {
		t.Fatal(errs)
	}
	data, _ := os.ReadFile(filepath.Join(repo.Work, "releases/demo/canary/release.yaml"))
	if !strings.Contains(string(data), "abort: {revision: "+rev[:7]+", reason: latency regression}") || !strings.Contains(string(data), "promote: {revision: "+rev[:7]+"}") {
		t.Errorf("abort/promote not written:\n%s", data)
	}
	if _, errs, code := run(t, repo.Work, "set-weight", "demo/canary-manual", "25"); code != 0 {
		t.Fatal(errs)
	}
	data, _ = os.ReadFile(filepath.Join(repo.Work, "releases/demo/canary-manual/release.yaml"))
	if !strings.Contains(string(data), "weight: 25") || !strings.Contains(string(data), "# Manual mode") {
		t.Errorf("set-weight:\n%s", data)
	}
	if _, errs, code := run(t, repo.Work, "set-weight", "demo/canary-manual", "120"); code != 1 || !strings.Contains(errs, "0 to 100") {
		t.Errorf("weight 120: %d %s", code, errs)
	}
	if _, errs, code := run(t, repo.Work, "set-weight", "demo/canary", "10"); code != 1 || !strings.Contains(errs, "manual mode") {
		t.Errorf("set-weight on a stepped canary: %d %s", code, errs)
	}
	log := gitserver.Git(t, repo.Work, "log", "--format=%s", "-3")
	if !strings.Contains(log, "set demo/canary-manual canary weight to 25") || !strings.Contains(log, "promote demo/canary") || !strings.Contains(log, "abort demo/canary") {
		t.Errorf("commit messages:\n%s", log)
	}
}

func TestStatusAndHistory(t *testing.T) {
	repo, rev := verbRepo(t)
	out, errs, code := run(t, repo.Work, "status")
	if code != 0 || !strings.Contains(out, "demo/canary ") || !strings.Contains(out, "Paused") || !strings.Contains(out, rev[:7]) {
		t.Fatalf("status: %d\n%s%s", code, out, errs)
	}
	out, _, code = run(t, repo.Work, "status", "demo/canary", "-o", "json")
	if code != 0 || !strings.Contains(out, `"phase": "Paused"`) {
		t.Errorf("status -o json:\n%s", out)
	}
	out, errs, code = run(t, repo.Work, "history", "demo/canary")
	if code != 0 || !strings.Contains(out, "Paused") || !strings.Contains(out, "25") {
		t.Errorf("history: %d\n%s%s", code, out, errs)
	}
	if _, _, code := run(t, repo.Work, "history", "demo/nope"); code != 1 {
		t.Errorf("history of an unknown release: exit %d", code)
	}
}
