package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sluice-dev/sluice/agent"
	"github.com/sluice-dev/sluice/internal/gitserver"

	"github.com/sluice-dev/sluice/internal/testcluster"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
	"github.com/sluice-dev/sluice/strategy"
)

// lazyCluster is the real control plane, started by the first test that
// needs it; TestMain stops it.
var lazyCluster testcluster.Lazy

func startCluster(t *testing.T) *testcluster.Cluster { return lazyCluster.Get(t) }

// exampleIn copies examples/ to a temp repository with the demo namespace
// renamed to ns, in the files and in their place (releases/<ns>/).
func exampleIn(t *testing.T, ns string) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../examples", dir)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, _ := os.ReadFile(p)
		return os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "namespace: demo", "namespace: "+ns)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "releases", "demo"), filepath.Join(dir, "releases", ns)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDiffAgainstCluster(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	dir := exampleIn(t, ns)
	relDir := "releases/" + ns + "/rolling"

	out, errs, code := run(t, dir, "diff", relDir, "--kubeconfig", c.Kubeconfig)
	if code != 1 || !strings.Contains(out, "created    apps/v1/Deployment/"+ns+"/rolling") {
		t.Fatalf("before apply: exit %d\n%s%s", code, out, errs)
	}

	// Apply what sluice renders, as the agent would.
	fsys, err := render.NewDiskFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	var r render.Renderer
	p, res, err := r.Load(context.Background(), fsys, fsys.Root(), relDir+"/release.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := reconcile.New(c.Config, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A release with no status yet is installed from the head render.
	plan := strategy.Current(strategy.Input{Spec: p.Release, HeadDigest: res.Digest, Replicas: res.Replicas()})
	objs, err := strategy.Objects(p.Release, res, nil, plan, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), reconcile.Set{Release: p.Release.ID(), Namespace: ns, Objects: objs}, reconcile.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	out, errs, code = run(t, dir, "diff", relDir, "--kubeconfig", c.Kubeconfig)
	if code != 0 || strings.Contains(out, "created") || strings.Contains(out, "configured") {
		t.Fatalf("after apply: exit %d\n%s%s", code, out, errs)
	}

	dep := filepath.Join(dir, relDir, "deployment.yaml")
	data, _ := os.ReadFile(dep)
	os.WriteFile(dep, []byte(strings.Replace(string(data), "podinfo:6.7.0", "podinfo:6.7.1", 1)), 0o644)
	os.Remove(filepath.Join(dir, relDir, "route.yaml"))
	kust := filepath.Join(dir, relDir, "kustomization.yaml")
	data, _ = os.ReadFile(kust)
	os.WriteFile(kust, []byte(strings.Replace(string(data), "- route.yaml\n", "", 1)), 0o644)

	out, errs, code = run(t, dir, "diff", relDir, "--kubeconfig", c.Kubeconfig)
	if code != 1 {
		t.Fatalf("after change: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"configured apps/v1/Deployment/" + ns + "/rolling",
		"-      - image: ghcr.io/sluice-dev/podinfo:6.7.0",
		"+      - image: ghcr.io/sluice-dev/podinfo:6.7.1",
		"unchanged  v1/Service/" + ns + "/rolling",
		"deleted    gateway.networking.k8s.io/v1/HTTPRoute/" + ns + "/rolling",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}

	_, errs, code = run(t, dir, "diff", relDir, "--kubeconfig", filepath.Join(dir, "nope"))
	if code != 2 || !strings.Contains(errs, "kubeconfig") {
		t.Errorf("bad kubeconfig: exit %d, %s", code, errs)
	}
}

// TestDiffMidCanaryIsEmpty: right after the agent's pass leaves a canary at
// its gate (canary track, split route, labelled selectors), sluice diff in
// a clone shows no change: it builds what the agent applies. An external
// diff program gets the live and merged directories.
func TestDiffMidCanaryIsEmpty(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	src := exampleIn(t, ns)
	files := map[string]string{}
	for _, name := range []string{"deployment.yaml", "service.yaml", "route.yaml", "kustomization.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, "releases", ns, "canary", name))
		if err != nil {
			t.Fatal(err)
		}
		files["releases/"+ns+"/canary/"+name] = string(b)
	}
	release := `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: ` + ns + `}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    canary:
      steps:
      - setWeight: 20
      - setHeaderRoute: {name: ff, match: {headers: [{name: User-Agent, value: Firefox}]}}
      - pause: {gate: qa}
      - setWeight: 100
`
	files["releases/"+ns+"/canary/release.yaml"] = release
	root := t.TempDir()
	repo := gitserver.NewRepo(t, root, "deploy", files)
	srv := gitserver.StartHTTP(t, root, "sluice", "pw")
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("pw"), 0o600)
	a, err := agent.New(agent.Options{Repo: srv.RepoURL(repo.Name), Branch: "main", Path: "releases", StatusBranch: "sluice/status",
		Kubeconfig: c.Kubeconfig, Interval: time.Second, GitUsername: "sluice", GitPasswordFile: pw, Author: "sluice <sluice@test>",
		CacheDir: filepath.Join(t.TempDir(), "cache"), Concurrency: 2}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	passUntil := func(want func(phase, msg string) bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			res, err := a.Pass(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			out, _ := gitserver.GitErr(repo.Bare, "show", "sluice/status:releases/"+ns+"/canary/status.yaml")
			if want(string(res.Releases[ns+"/canary"]), out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out; status:\n%s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	passUntil(func(phase, _ string) bool { return phase == "Succeeded" })
	dep := files["releases/"+ns+"/canary/deployment.yaml"]
	repo.Commit(t, "bump", map[string]string{"releases/" + ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	repo.Push(t)
	passUntil(func(phase, st string) bool { return phase == "Paused" && strings.Contains(st, "qa") })

	out, errs, code := run(t, repo.Work, "diff", "releases/"+ns+"/canary", "--kubeconfig", c.Kubeconfig)
	if code != 0 || strings.Contains(out, "created") || strings.Contains(out, "configured") || strings.Contains(out, "deleted") {
		t.Fatalf("diff right after a pass mid-canary: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"unchanged  apps/v1/Deployment/" + ns + "/canary-canary", "unchanged  v1/Service/" + ns + "/canary-canary", "unchanged  gateway.networking.k8s.io/v1/HTTPRoute/" + ns + "/canary"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	// A change people make shows up, through an external diff program.
	svcFile := filepath.Join(repo.Work, "releases/"+ns+"/canary/service.yaml")
	svc, _ := os.ReadFile(svcFile)
	os.WriteFile(svcFile, []byte(strings.Replace(string(svc), "metadata:", "metadata:\n  annotations: {team: checkout}", 1)), 0o644)
	cmd := exec.Command(sluiceBin, "diff", "releases/"+ns+"/canary", "--kubeconfig", c.Kubeconfig)
	cmd.Dir = repo.Work
	cmd.Env = append(os.Environ(), "KUBECTL_EXTERNAL_DIFF=diff -r -u")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(b), "LIVE/v1.Service."+ns+".canary") || !strings.Contains(string(b), "+  annotations:") {
		t.Errorf("external diff: %v\n%s", err, b)
	}
}
