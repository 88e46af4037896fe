package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// startDockerRegistry runs Debian's docker-registry on a loopback port.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), addr)), 0o644)
	reg := exec.Command(registryBinary, "serve", cfg)
	if err := reg.Start(); err != nil {
		t.Fatalf("%s: %v (hack/testdeps.sh installs docker-registry)", registryBinary, err)
	}
	t.Cleanup(func() { reg.Process.Kill(); reg.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("the registry did not start")
		}
	}
}

// TestImagesCommand: sluice images shows each policy with the tag Git
// names and the one the policy takes from the registry now.
func TestImagesCommand(t *testing.T) {
	addr := startDockerRegistry(t)
	for _, tag := range []string{"1.2.0", "1.3.0", "2.0.0", "main-7", "main-12"} {
		img, _ := random.Image(128, 1)
		for _, repo := range []string{"shop/cart", "shop/worker"} {
			ref, _ := name.NewTag(addr + "/" + repo + ":" + tag)
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
		}
	}
	repo := gitserver.NewRepo(t, t.TempDir(), "deploy", map[string]string{
		"releases/shop/cart/release.yaml":       fmt.Sprintf("apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: cart, namespace: shop}\nspec:\n  workload: {kind: Deployment, name: cart}\n  strategy: {rolling: {}}\n  imageUpdates:\n  - image: %[1]s/shop/cart\n    policy: {semver: \"^1\"}\n  - image: %[1]s/shop/worker\n    policy: {regex: \"^main-(?P<n>[0-9]+)$\", order: numeric}\n  - image: %[1]s/shop/gone\n    policy: {semver: \"*\"}\n", addr),
		"releases/shop/cart/kustomization.yaml": fmt.Sprintf("resources: [deployment.yaml]\nimages:\n- name: cart\n  newName: %s/shop/cart\n  newTag: 1.2.0\n", addr),
		"releases/shop/cart/deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart}\nspec:\n  selector: {matchLabels: {app: cart}}\n  template:\n    metadata: {labels: {app: cart}}\n    spec: {containers: [{name: cart, image: cart}]}\n",
	})
	out, errs, code := run(t, repo.Work, "images", "-o", "json")
	if code != 0 {
		t.Fatalf("sluice images: exit %d %s", code, errs)
	}
	var rows []imageRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows: %s", len(rows), out)
	}
	want := []struct{ git, latest, err string }{{"1.2.0", "1.3.0", ""}, {"", "main-12", ""}, {"", "", "NAME_UNKNOWN"}}
	for i, w := range want {
		r := rows[i]
		if r.Git != w.git || r.Latest != w.latest || (w.err == "") != (r.Error == "") || !strings.Contains(r.Error, w.err) {
			t.Errorf("row %d = %+v, want git %q latest %q error ~%q", i, r, w.git, w.latest, w.err)
		}
	}
	table, _, code := run(t, repo.Work, "images")
	if code != 0 || !strings.Contains(table, "RELEASE") || !strings.Contains(table, "semver ^1") || !strings.Contains(table, "1.3.0") {
		t.Errorf("table:\n%s", table)
	}
}
