package render

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestOwnershipByPath: a release under releases/<ns>/ targets namespace
// <ns> and nothing else — its own metadata.namespace and every rendered
// object's —, creates cluster-scoped objects only of the kinds the agent
// allows, and never targets a protected namespace (kube-*, the agent's)
// unless allowed. Each violation is located at its file and line.
func TestOwnershipByPath(t *testing.T) {
	tests := []struct {
		name, want string
		files      map[string]string
	}{
		{"another namespace than its directory", `releases/shop/app/release.yaml:3: metadata.namespace: a release under releases/shop/ may only target namespace "shop", the directory's name; got "payments" (move it to releases/payments/app/ or change metadata.namespace)`,
			map[string]string{"releases/shop/app/release.yaml": strings.Replace(release, "namespace: shop", "namespace: payments", 1)}},
		{"everything placed elsewhere by its kustomization", `spec.workload.name: Deployment "app" is not in the render of releases/shop/app`,
			map[string]string{"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml]\nnamespace: payments\n"}},
		{"an object placed elsewhere by its own metadata", `releases/shop/app/stolen.yaml:3: metadata.namespace: the render holds ConfigMap/stolen in namespace "sluice-system"`,
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
	// Cluster-scoped kinds only where the tenancy lists them.
	binding := map[string]string{"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml, rbac.yaml]\n",
		"releases/shop/app/rbac.yaml": "# every pod is admin\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: everyone}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: system:serviceaccounts, apiGroup: rbac.authorization.k8s.io}]\n"}
	for _, tt := range []struct {
		name    string
		tenancy v1alpha1.Tenancy
		want    string // "": renders
	}{
		{"by default", v1alpha1.Tenancy{}, "releases/shop/app/rbac.yaml:3: kind: the render holds ClusterRoleBinding/everyone, a cluster-scoped kind"},
		{"another kind listed", v1alpha1.Tenancy{ClusterScoped: []string{"ClusterRole", "ClusterRoleBinding.example.com"}}, "a cluster-scoped kind"},
		{"listed by kind", v1alpha1.Tenancy{ClusterScoped: []string{"ClusterRoleBinding"}}, ""},
		{"listed by kind and group", v1alpha1.Tenancy{ClusterScoped: []string{"ClusterRoleBinding.rbac.authorization.k8s.io"}}, ""},
	} {
		t.Run("cluster-scoped "+tt.name, func(t *testing.T) {
			r := Renderer{Tenancy: tt.tenancy}
			_, err := load(t, &r, repo(t, appRepo(binding)), "")
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error:\n%v\nwant: %q", err, tt.want)
			}
		})
	}
	// Protected namespaces, even from their own directory, unless allowed.
	for _, tt := range []struct {
		ns      string
		tenancy v1alpha1.Tenancy
		refused bool
	}{
		{"kube-system", v1alpha1.Tenancy{}, true},
		{"sluice-system", v1alpha1.Tenancy{}, true},
		{"sluice-agent", v1alpha1.Tenancy{AgentNamespace: "sluice-agent"}, true},
		{"sluice-system", v1alpha1.Tenancy{AgentNamespace: "sluice-agent"}, false},
		{"kube-public", v1alpha1.Tenancy{AllowSystem: []string{"kube-public"}}, false},
	} {
		files := map[string]string{}
		for k, v := range appRepo(nil) {
			files[strings.Replace(k, "releases/shop/", "releases/"+tt.ns+"/", 1)] = strings.ReplaceAll(v, "namespace: shop", "namespace: "+tt.ns)
		}
		fsys, err := NewDiskFS(repo(t, files))
		if err != nil {
			t.Fatal(err)
		}
		r := Renderer{Tenancy: tt.tenancy}
		_, _, err = r.Load(t.Context(), fsys, fsys.Root(), "releases/"+tt.ns+"/app/release.yaml", "")
		if refused := err != nil && strings.Contains(err.Error(), tt.ns+" is a protected namespace"); refused != tt.refused || !refused && err != nil {
			t.Errorf("%s with %+v: %v", tt.ns, tt.tenancy, err)
		}
	}
	var r Renderer
	// And the good layout renders.
	if _, err := load(t, &r, repo(t, appRepo(nil)), ""); err != nil {
		t.Fatal(err)
	}
}
