package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sluice-dev/sluice/internal/gitserver"
	testregistry "github.com/sluice-dev/sluice/internal/registry"
)

// TestImagesCommand: sluice images shows each policy with the tag Git
// names and the one the policy takes from the registry now.
func TestImagesCommand(t *testing.T) {
	addr := testregistry.Start(t, testregistry.Options{}).Addr
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
