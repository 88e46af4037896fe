package render

import (
	"strings"
	"testing"
)

// TestOwnershipByPath: a release under releases/<ns>/ targets namespace
// <ns> and nothing else — its own metadata.namespace and every rendered
// object's — and never the cluster's own kube-* namespaces. Each
// violation is located in the release file.
func TestOwnershipByPath(t *testing.T) {
	tests := []struct {
		name, want string
		files      map[string]string
	}{
		{"another namespace than its directory", `releases/shop/app/release.yaml:3: metadata.namespace: a release under releases/shop/ may only target namespace "shop", the directory's name; got "payments" (move it to releases/payments/app/ or change metadata.namespace)`,
			map[string]string{"releases/shop/app/release.yaml": strings.Replace(release, "namespace: shop", "namespace: payments", 1)}},
		{"everything placed elsewhere by its kustomization", `spec.workload.name: Deployment "app" is not in the render of releases/shop/app`,
			map[string]string{"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml]\nnamespace: payments\n"}},
		{"an object placed elsewhere by its own metadata", `the render holds ConfigMap/stolen in namespace "sluice-system"`,
			map[string]string{"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml, stolen.yaml]\n",
				"releases/shop/app/stolen.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen, namespace: sluice-system}\ndata: {a: b}\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Renderer
			_, err := load(t, &r, repo(t, appRepo(tt.files)), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
	// kube-system, even from its own directory.
	files := map[string]string{}
	for k, v := range appRepo(nil) {
		files[strings.Replace(k, "releases/shop/", "releases/kube-system/", 1)] = strings.ReplaceAll(v, "namespace: shop", "namespace: kube-system")
	}
	fsys, err := NewDiskFS(repo(t, files))
	if err != nil {
		t.Fatal(err)
	}
	var r Renderer
	if _, _, err := r.Load(t.Context(), fsys, fsys.Root(), "releases/kube-system/app/release.yaml", ""); err == nil || !strings.Contains(err.Error(), "kube-system is the cluster's own namespace") {
		t.Fatalf("kube-system: %v", err)
	}
	// And the good layout renders.
	if _, err := load(t, &r, repo(t, appRepo(nil)), ""); err != nil {
		t.Fatal(err)
	}
}
