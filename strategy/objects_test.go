package strategy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// renderApp renders a small app (Deployment, Service, HTTPRoute) at image
// with the real renderer, for the release r.
func renderApp(t *testing.T, r *v1alpha1.Release, image string) *render.Result {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml]\n",
		"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec: {containers: [{name: app, image: "` + image + `"}]}
`,
		"service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: shop}\nspec: {selector: {app: app}, ports: [{port: 80}]}\n",
		"route.yaml":   userRoute,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := render.NewDiskFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rr render.Renderer
	res, err := rr.Render(context.Background(), render.Input{FS: fsys, Root: fsys.Root(), Release: &v1alpha1.Parsed{File: "release.yaml", Release: r}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func stableImage(t *testing.T, objs []*unstructured.Unstructured) (string, string) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetName() == "app" {
			c, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			return c[0].(map[string]any)["image"].(string), o.GetAnnotations()[VersionAnnotation]
		}
	}
	t.Fatal("no stable workload")
	return "", ""
}

// The wrong-version invariant, over every plan the random walks produce:
// the stable workload's pod template comes from the stable revision's
// render when the plan keeps the stable track there, from the head when
// the plan says head, and is not built at all without a stable render.
func TestStableTrackNeverRunsTheHeadUnderTheStableName(t *testing.T) {
	r := release(t, canarySteps, "")
	head, stable := renderApp(t, r, "app:head"), renderApp(t, r, "app:stable")
	checked := 0
	for seed := range uint64(40) {
		recordWalk(t, seed, 80, func(in Input, p Plan) {
			p.Status.Stable = &v1alpha1.Revision{Revision: stableRev, Digest: "s"}
			objs, err := Objects(r, head, stable, p, "h")
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			img, version := stableImage(t, objs)
			switch p.Stable {
			case StableFromStable:
				if img != "app:stable" || version != "s" {
					t.Fatalf("seed %d: stable track runs %s as version %s, want app:stable as s", seed, img, version)
				}
				if _, err := Objects(r, head, nil, p, "h"); !errors.Is(err, ErrNoStableRender) {
					t.Fatalf("seed %d: built objects without the stable render: %v", seed, err)
				}
			case StableFromHead:
				if img != "app:head" || version != "h" {
					t.Fatalf("seed %d: stable track runs %s as version %s, want the head", seed, img, version)
				}
			}
			checked++
		})
	}
	if checked < 1000 {
		t.Fatalf("only %d plans checked", checked)
	}
}
