package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// stageFiles is the canary example as one cluster's copy of release
// "web", at image tag, with the promotion block (may be empty).
func stageFiles(t *testing.T, ns, cluster, tag, steps, promotion string) map[string]string {
	files := map[string]string{}
	for f, c := range fixture(t, ns, []string{"canary"}) {
		files[strings.Replace(f, "releases/"+ns+"/canary/", "clusters/"+cluster+"/releases/"+ns+"/web/", 1)] = c
	}
	dir := "clusters/" + cluster + "/releases/" + ns + "/web/"
	files[dir+"release.yaml"] = fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: web, namespace: %s}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    scaleDownDelay: 1s
    canary:
      steps: %s
%s`, ns, steps, promotion)
	files[dir+"kustomization.yaml"] = fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources: [deployment.yaml, service.yaml, route.yaml]
configMapGenerator:
- name: canary-config
  literals: [GREETING=hello]
images:
- name: ghcr.io/sluice-dev/podinfo
  newTag: %q
`, ns, tag)
	return files
}

// stage is one cluster of the pipeline story and its agent.
type stageRun struct {
	name string
	w    *world // the world's repository and Git server, this cluster
	ag   *agentProc
}

func (s *stageRun) status() v1alpha1.ReleaseStatus {
	out, err := gitserver.GitErr(s.w.repo.Bare, "show", "sluice/status/"+s.name+":clusters/"+s.name+"/releases/"+s.w.ns+"/web/status.yaml")
	var st v1alpha1.ReleaseStatus
	if err == nil {
		yaml.Unmarshal([]byte(out), &st)
	}
	return st
}

func (s *stageRun) wait(timeout time.Duration, what string, cond func(v1alpha1.ReleaseStatus) bool) v1alpha1.ReleaseStatus {
	s.w.t.Helper()
	var st v1alpha1.ReleaseStatus
	waitFor(s.w.t, timeout, s.name+": "+what, func() bool { st = s.status(); return cond(st) })
	return st
}

func (s *stageRun) tag() string {
	out := gitserver.Git(s.w.t, s.w.repo.Bare, "show", "main:clusters/"+s.name+"/releases/"+s.w.ns+"/web/kustomization.yaml")
	_, tag, _ := strings.Cut(out, "newTag: ")
	return strings.Trim(strings.TrimSpace(tag), `"`)
}

func (s *stageRun) start() {
	s.ag = s.w.start("--cluster", s.name, "--promotion-interval", "1s")
}

// Scenario — one repository, three clusters (three real control planes):
// a tag committed to dev runs dev's canary; staging takes it by a
// promotion commit and runs its own; prod waits for its soak and a gate,
// approved with sluice approve, and promotes — its agent killed right
// after the promotion commit and restarted, resuming from Git. A bad
// version aborted in staging never reaches prod. Three agents write at
// once (three status branches, promotions on main) and lose nothing.
func TestPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var clusters [2]*testcluster.Cluster
	var wg sync.WaitGroup
	var startErr [2]error
	for i := range clusters {
		wg.Add(1)
		go func() { defer wg.Done(); clusters[i], startErr[i] = testcluster.Start(ctx) }()
	}
	wg.Wait()
	for i, c := range clusters {
		if startErr[i] != nil {
			t.Fatal(startErr[i])
		}
		t.Cleanup(func() {
			if t.Failed() {
				c.Keep()
			}
			c.Stop()
		})
	}
	dev := newWorldOn(t, cluster, nil)
	ns := dev.ns
	for _, c := range clusters {
		if _, err := c.Clientset(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fast := "[{setWeight: 50}, {pause: {duration: 1s}}, {setWeight: 100}]"
	gated := "[{setWeight: 50}, {pause: {gate: qa}}, {setWeight: 100}]"
	files := stageFiles(t, ns, "dev", "6.7.0", fast, "")
	for f, c := range stageFiles(t, ns, "staging", "6.7.0", gated, fmt.Sprintf("  promotion: {from: dev/%s/web}\n", ns)) {
		files[f] = c
	}
	for f, c := range stageFiles(t, ns, "prod", "6.7.0", fast, fmt.Sprintf("  promotion:\n    from: staging/%s/web\n    when: {phase: Succeeded, soak: 4s}\n    gate: prod\n", ns)) {
		files[f] = c
	}
	dev.repo.Commit(t, "three stages of web", files)
	dev.repo.Push(t)
	validate := exec.Command(sluiceBin, "validate", "clusters/")
	validate.Dir = dev.repo.Work
	if out, err := validate.CombinedOutput(); err != nil || !strings.Contains(string(out), "3 release files valid") {
		t.Fatalf("sluice validate clusters/: %v\n%s", err, out)
	}
	stages := map[string]*stageRun{"dev": {name: "dev", w: dev}}
	for i, name := range []string{"staging", "prod"} {
		w := *dev
		w.cl, w.cs, w.logs = clusters[i], clusters[i].Clientset(t), nil
		stages[name] = &stageRun{name: name, w: &w}
	}
	for _, name := range []string{"dev", "staging", "prod"} {
		stages[name].start()
	}
	for _, name := range []string{"dev", "staging", "prod"} {
		stages[name].wait(90*time.Second, "installed", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded })
	}
	devS, stagingS, prodS := stages["dev"], stages["staging"], stages["prod"]

	// A new version in dev.
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	bump := dev.repo.Commit(t, "web 6.7.1 in dev", map[string]string{"clusters/dev/releases/" + ns + "/web/kustomization.yaml": strings.Replace(files["clusters/dev/releases/"+ns+"/web/kustomization.yaml"], `"6.7.0"`, `"6.7.1"`, 1)})
	dev.repo.Push(t)
	devDone := devS.wait(60*time.Second, "6.7.1 promoted", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision == bump && s.Stable.PromotedAt != nil
	})
	devPromoted := time.Now()
	// staging: the promotion commit, its canary at the qa gate, approved.
	waitFor(t, 30*time.Second, "staging's promotion commit", func() bool { return stagingS.tag() == "6.7.1" })
	promo := gitserver.Git(t, dev.repo.Bare, "log", "-1", "--format=%(trailers)", "main", "--", "clusters/staging/releases/"+ns+"/web/kustomization.yaml")
	for _, want := range []string{"Sluice-Release: " + ns + "/web", "Sluice-Promotion-From: dev/" + ns + "/web", "Sluice-Promotion-Version: " + devDone.Stable.Revision} {
		if !strings.Contains(promo, want) {
			t.Errorf("staging's promotion commit lacks %q:\n%s", want, promo)
		}
	}
	stagingS.wait(60*time.Second, "6.7.1 at the qa gate", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused && s.Canary != nil })
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	dev.sluice("approve", ns+"/web", "qa", "--cluster", "staging", "--push")
	stagingDone := stagingS.wait(60*time.Second, "6.7.1 promoted", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil && s.Stable != nil && s.Stable.PromotedAt != nil && s.Stable.PromotedAt.After(devDone.Stable.PromotedAt.Add(-time.Second))
	})
	devToStaging := time.Since(devPromoted)

	// prod: soak, then the gate.
	time.Sleep(time.Second)
	out := dev.sluice("pipeline", ns+"/web")
	if !strings.Contains(out, "waiting") || !strings.Contains(out, "prod") {
		t.Errorf("sluice pipeline while prod waits:\n%s", out)
	}
	t.Logf("sluice pipeline %s/web:\n%s", ns, out)
	if prodS.tag() != "6.7.0" {
		t.Fatalf("prod promoted before its soak and gate: %s", prodS.tag())
	}
	time.Sleep(time.Until(stagingDone.Stable.PromotedAt.Add(4 * time.Second)))
	time.Sleep(2 * time.Second)
	if prodS.tag() != "6.7.0" {
		t.Fatalf("prod promoted without its gate: %s", prodS.tag())
	}
	if out := dev.sluice("pipeline", ns+"/web"); !strings.Contains(out, `waiting for gate "prod"`) {
		t.Errorf("sluice pipeline after the soak:\n%s", out)
	}
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	approved := time.Now()
	dev.sluice("approve", ns+"/web", "prod", "--cluster", "prod", "--push")
	// Killed right after its promotion commit, restarted: it resumes.
	waitFor(t, 30*time.Second, "prod's promotion commit", func() bool { return prodS.tag() == "6.7.1" })
	prodS.ag.cmd.Process.Signal(syscall.SIGKILL)
	prodS.ag.cmd.Wait()
	prodS.start()
	prodS.wait(90*time.Second, "6.7.1 promoted after the restart", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Canary == nil && s.Stable != nil && s.Stable.PromotedAt != nil && s.Stable.PromotedAt.After(approved)
	})
	stagingToProd := time.Since(approved)
	if d, err := prodS.w.cs.AppsV1().Deployments(ns).Get(ctx, "canary", metav1.GetOptions{}); err != nil || !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":6.7.1") {
		t.Errorf("prod's Deployment: %v %v", d, err)
	}

	// A bad version: aborted in staging, never in prod.
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	dev.repo.Commit(t, "web 6.7.2 in dev", map[string]string{"clusters/dev/releases/" + ns + "/web/kustomization.yaml": strings.Replace(files["clusters/dev/releases/"+ns+"/web/kustomization.yaml"], `"6.7.0"`, `"6.7.2"`, 1)})
	dev.repo.Push(t)
	stagingS.wait(90*time.Second, "6.7.2 at the qa gate", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused && s.Canary != nil })
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	dev.sluice("abort", ns+"/web", "--cluster", "staging", "--reason", "bad in staging", "--push")
	stagingS.wait(60*time.Second, "6.7.2 aborted", func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseAborted })
	time.Sleep(5 * time.Second) // five promotion checks
	if prodS.tag() != "6.7.1" {
		t.Errorf("prod took %s, aborted in staging", prodS.tag())
	}
	if out := dev.sluice("pipeline", ns+"/web"); !strings.Contains(out, "is Aborted") {
		t.Errorf("sluice pipeline after the abort in staging:\n%s", out)
	}
	if out := dev.sluice("status", "--all-clusters"); !strings.Contains(out, "dev/"+ns+"/web") || !strings.Contains(out, "staging/"+ns+"/web  Aborted") || !strings.Contains(out, "prod/"+ns+"/web") {
		t.Errorf("sluice status --all-clusters:\n%s", out)
	}

	// The dashboard, every cluster on one page.
	dash := exec.Command(sluiceBin, "dashboard", "--all-clusters", "--listen", "127.0.0.1:0", "-C", dev.repo.Work)
	stdout, _ := dash.StdoutPipe()
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dash.Process.Kill(); dash.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if f := strings.Fields(strings.TrimPrefix(line, "dashboard: ")); len(f) == 0 {
		t.Errorf("sluice dashboard said %q", line)
	} else if resp, err := http.Get(f[0]); err != nil {
		t.Error(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, c := range []string{"dev", "staging", "prod"} {
			if !strings.Contains(string(body), `data-release="`+c+"/"+ns+`/web"`) {
				t.Errorf("the dashboard of every cluster lacks %s's release", c)
			}
		}
	}

	// Nothing lost: every cluster's status branch has each of its
	// transitions once, in order, and main every promotion.
	lost := 0
	for _, s := range []*stageRun{devS, stagingS, prodS} {
		log := gitserver.Git(t, dev.repo.Bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Phase,valueonly,separator=)", "sluice/status/"+s.name)
		if !strings.HasPrefix(strings.TrimSpace(log), "Progressing\nSucceeded") || !strings.Contains(log, "Promoting\nSucceeded") {
			lost++
			t.Errorf("%s's status branch lacks transitions:\n%s", s.name, log)
		}
	}
	if n := gitserver.Git(t, dev.repo.Bare, "rev-list", "--count", "--grep", "Sluice-Promotion-From", "main"); n != "3" {
		lost++
		t.Errorf("%s promotion commits on main, want 3 (staging 6.7.1, prod 6.7.1, staging 6.7.2)", n)
	}
	t.Logf("pipeline: dev->staging %.1fs, staging->prod %.1fs after soak, %d lost commits", devToStaging.Seconds(), stagingToProd.Seconds(), lost)
}

// Scenario — promotion by pull request: with --promote-to-branch the
// promotion is pushed to sluice/promote/<cluster>/<ns>/<name>/<version>,
// started at the spec head; nothing runs until it is merged. Two stages
// on one control plane (namespaces of their own) suffice for that.
func TestPromoteToBranch(t *testing.T) {
	t.Parallel()
	dev := newWorld(t, nil)
	staging := *dev
	staging.ns, staging.logs = cluster.Namespace(t), nil
	fast := "[{setWeight: 50}, {pause: {duration: 1s}}, {setWeight: 100}]"
	files := stageFiles(t, dev.ns, "dev", "6.7.0", fast, "")
	for f, c := range stageFiles(t, staging.ns, "staging", "6.7.0", fast, fmt.Sprintf("  promotion: {from: dev/%s/web}\n", dev.ns)) {
		files[f] = c
	}
	dev.repo.Commit(t, "two stages of web", files)
	dev.repo.Push(t)
	devS := &stageRun{name: "dev", w: dev}
	stagingS := &stageRun{name: "staging", w: &staging}
	devS.start()
	stagingS.ag = staging.start("--cluster", "staging", "--promotion-interval", "1s", "--promote-to-branch", "sluice/promote")
	for _, s := range []*stageRun{devS, stagingS} {
		s.wait(60*time.Second, "installed", func(st v1alpha1.ReleaseStatus) bool { return st.Phase == v1alpha1.PhaseSucceeded })
	}
	bump := dev.repo.Commit(t, "web 6.7.1 in dev", map[string]string{"clusters/dev/releases/" + dev.ns + "/web/kustomization.yaml": strings.Replace(files["clusters/dev/releases/"+dev.ns+"/web/kustomization.yaml"], `"6.7.0"`, `"6.7.1"`, 1)})
	dev.repo.Push(t)
	devS.wait(60*time.Second, "6.7.1 promoted", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision == bump
	})
	branch := "sluice/promote/staging/" + staging.ns + "/web/" + bump[:12]
	waitFor(t, 30*time.Second, "the promotion pushed to "+branch, func() bool {
		out, err := exec.Command("git", "-C", dev.repo.Bare, "log", "-1", "--format=%(trailers:key=Sluice-Promotion-Version,valueonly,separator=)", branch).Output()
		return err == nil && strings.TrimSpace(string(out)) == bump
	})
	main := gitserver.Git(t, dev.repo.Bare, "rev-parse", "main")
	if parent := gitserver.Git(t, dev.repo.Bare, "rev-parse", branch+"^"); parent != main {
		t.Errorf("the branch starts at %s, not the spec head %s", parent, main)
	}
	time.Sleep(3 * time.Second) // checks go on: nothing more is pushed, main is untouched
	if stagingS.tag() != "6.7.0" || gitserver.Git(t, dev.repo.Bare, "rev-parse", "main") != main {
		t.Errorf("PR mode changed the spec branch: staging at %s", stagingS.tag())
	}
	if n := gitserver.Git(t, dev.repo.Bare, "rev-list", "--count", main+".."+branch); n != "1" {
		t.Errorf("%s commits on the branch, want 1", n)
	}
	// The pull request is merged: staging's canary runs.
	gitserver.Git(t, dev.repo.Work, "pull", "-q", "origin", "main")
	gitserver.Git(t, dev.repo.Work, "fetch", "-q", "origin", branch)
	gitserver.Git(t, dev.repo.Work, "merge", "-q", "--ff-only", "FETCH_HEAD")
	dev.repo.Push(t)
	stagingS.wait(60*time.Second, "6.7.1 promoted after the merge", func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision == gitserver.Git(t, dev.repo.Bare, "rev-parse", "main")
	})
}
