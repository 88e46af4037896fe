package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// TestDeployManifests applies deploy/ with a server-side dry run to the real
// control plane: the install manifests are valid as shipped.
func TestDeployManifests(t *testing.T) {
	c, kubectl := installCluster(t)
	for _, dir := range []string{"../../deploy/", "../../deploy/ssh/", "../../deploy/tenancy/"} {
		out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-k", dir, "--dry-run=server", "--server-side").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl apply -k %s --dry-run=server: %v\n%s", dir, err, out)
		}
		for _, want := range []string{"namespace/sluice-system", "deployment.apps/sluice", "clusterrole.rbac.authorization.k8s.io/sluice", "networkpolicy.networking.k8s.io/sluice", "role.rbac.authorization.k8s.io/sluice-leader-election", "poddisruptionbudget.policy/sluice"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("dry run of %s did not cover %s:\n%s", dir, want, out)
			}
		}
		rules, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		if strings.Contains(string(rules), `"*"`) || strings.Contains(string(rules), "- '*'") {
			t.Errorf("%s: RBAC uses a wildcard", dir)
		}
		// The config's name carries its hash, so a change rolls the pods.
		if !regexp.MustCompile(`configMapRef:\s+name: sluice-[a-z0-9]{10}\n`).Match(rules) {
			t.Errorf("%s: the Deployment does not take its config from a generated ConfigMap", dir)
		}
	}
	// What each mode lets the agent do, counted as verb × resource pairs of
	// the rules aggregated into its ClusterRole.
	def, tenancy := agentRules(t, kubectl, "../../deploy/"), agentRules(t, kubectl, "../../deploy/tenancy/")
	t.Logf("rbac: the agent's ClusterRole grants %d verb×resource pairs in the default mode, %d in deploy/tenancy/", len(def), len(tenancy))
	for _, want := range []string{"create secrets", "create networkpolicies.networking.k8s.io", "create horizontalpodautoscalers.autoscaling", "create ingresses.networking.k8s.io", "create roles.rbac.authorization.k8s.io", "create poddisruptionbudgets.policy"} {
		if !def[want] {
			t.Errorf("the default mode cannot %s", want)
		}
	}
	for pair := range tenancy {
		verb, res, _ := strings.Cut(pair, " ")
		if strings.HasPrefix(res, "secrets") || verb != "get" && verb != "list" && verb != "watch" && res != "events" && verb != "impersonate" {
			t.Errorf("deploy/tenancy/ lets the agent %s", pair)
		}
	}
	if !tenancy["impersonate serviceaccounts/sluice-deployer"] {
		t.Errorf("deploy/tenancy/ cannot impersonate sluice-deployer: %v", tenancy)
	}
	// A tenant's binding names its own namespace's account.
	tenant, err := exec.Command(kubectl, "kustomize", "../../deploy/tenancy/tenant/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tenant), "name: sluice-deployer\n  namespace: shop") {
		t.Errorf("deploy/tenancy/tenant/: the RoleBinding's subject is not shop's sluice-deployer:\n%s", tenant)
	}
}

// installCluster is the package's control plane with sluice-system in
// it: a server-side dry run cannot create the namespace the other objects
// go into, so it exists first, as after a real apply of namespace.yaml.
func installCluster(t *testing.T) (*testcluster.Cluster, string) {
	t.Helper()
	c := startCluster(t)
	kubectl, err := testcluster.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "-f", "../../deploy/base/namespace.yaml").CombinedOutput(); err != nil {
		t.Fatalf("namespace: %v\n%s", err, out)
	}
	return c, kubectl
}

// agentRules lists "verb resource[.group][/name]" for every rule the
// agent's aggregated ClusterRole gets from the kustomization dir.
func agentRules(t *testing.T, kubectl, dir string) map[string]bool {
	t.Helper()
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	objs, err := testcluster.DecodeYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" || o.GetLabels()["sluice.dev/aggregate-to-agent"] != "true" {
			continue
		}
		var cr rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cr); err != nil {
			t.Fatal(err)
		}
		for _, r := range cr.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					if g != "" {
						res += "." + g
					}
					names := r.ResourceNames
					if len(names) == 0 {
						names = []string{""}
					}
					for _, n := range names {
						for _, v := range r.Verbs {
							pairs[strings.TrimSuffix(v+" "+res+"/"+n, "/")] = true
						}
					}
				}
			}
		}
	}
	if len(pairs) == 0 {
		t.Fatalf("%s: no rules aggregate into the agent's ClusterRole", dir)
	}
	return pairs
}

// TestInstallExport: sluice install --export prints deploy/ (or
// deploy/tenancy/) as kustomize builds it, with the repository, branch and
// namespaces in the agent's config, and the API server accepts it.
func TestInstallExport(t *testing.T) {
	c, kubectl := installCluster(t)
	for _, tc := range []struct{ mode, repo, dir, auth string }{
		{"cluster-wide", "https://git.example.com/org/deploy.git", "../../deploy/", "SLUICE_GIT_PASSWORD_FILE"},
		{"cluster-wide", "git@git.example.com:org/deploy.git", "../../deploy/ssh/", "SLUICE_SSH_KEY_FILE"},
		{"tenancy", "https://git.example.com/org/deploy.git", "../../deploy/tenancy/", "SLUICE_GIT_PASSWORD_FILE"},
		{"tenancy", "ssh://git@git.example.com/org/deploy.git", "../../deploy/tenancy/", "SLUICE_KNOWN_HOSTS_FILE"},
	} {
		mode, dir := tc.mode+" "+tc.repo, tc.dir
		out, errs, code := run(t, ".", "install", "--export", "--mode", tc.mode, "--repo", tc.repo, "--branch", "prod", "--namespaces", "shop,web", "--image", "registry.example.com/sluice:v9")
		if code != 0 {
			t.Fatalf("%s: exit %d %s", mode, code, errs)
		}
		for _, want := range []string{"SLUICE_REPO: " + tc.repo, "SLUICE_BRANCH: prod", "SLUICE_NAMESPACES: shop,web", tc.auth, "image: registry.example.com/sluice:v9", "kind: Deployment", "kind: ClusterRole"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the export lacks %q", mode, want)
			}
		}
		// The same objects as the checked-in deploy/ builds.
		built, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		kinds := regexp.MustCompile(`(?m)^kind: \w+\n(?:.*\n)*?  name: [\w.-]+`)
		if got, want := len(kinds.FindAllString(out, -1)), len(kinds.FindAllString(string(built), -1)); got != want {
			t.Errorf("%s: %d objects exported, deploy/ builds %d", mode, got, want)
		}
		apply := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-f", "-")
		apply.Stdin = strings.NewReader(out)
		if b, err := apply.CombinedOutput(); err != nil {
			t.Errorf("%s: the API server refuses the export: %v\n%s", mode, err, b)
		}
	}
	if _, errs, code := run(t, ".", "install", "--repo", "x"); code != 2 || !strings.Contains(errs, "--export") {
		t.Errorf("install without --export: exit %d %s", code, errs)
	}
}

// TestDockerfile: the image sluice ships is built from a base pinned by
// digest, carries the OCI labels, cross-compiles for the platform asked
// for, and its build context leaves out Git history, binaries and caches.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+\S+)?\s*$|^FROM\s+--platform=\S+\s+(\S+)`).FindAllStringSubmatch(string(b), -1)
	if len(froms) == 0 {
		t.Fatal("no FROM in the Dockerfile")
	}
	final := froms[len(froms)-1][1]
	if !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(final) {
		t.Errorf("the final stage's base %q is not pinned by digest", final)
	}
	for _, want := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.created", "GOARCH=${TARGETARCH}", "--platform=$BUILDPLATFORM", "USER 65532"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin"} {
		if !regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(want) + `/?$`).Match(ignore) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}
