package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/testcluster"
	"github.com/sluice-dev/sluice/reconcile"
	"github.com/sluice-dev/sluice/render"
)

// lazyCluster is the real control plane, started by the first test that
// needs it; TestMain stops it.
var lazyCluster testcluster.Lazy

func startCluster(t *testing.T) *testcluster.Cluster { return lazyCluster.Get(t) }

// exampleIn copies examples/ to a temp repository with the demo namespace
// renamed to ns.
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
	return dir
}

func TestDiffAgainstCluster(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	dir := exampleIn(t, ns)
	relDir := "releases/demo/rolling"

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
	if _, err := m.Apply(context.Background(), reconcile.Set{Release: p.Release.ID(), Namespace: ns, Objects: res.Objects}, reconcile.ApplyOptions{}); err != nil {
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
