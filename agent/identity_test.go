package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// deployerRole lets a ServiceAccount apply what the rolling example
// renders, and nothing else (no NetworkPolicy).
const deployerRole = `apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: NS}
rules:
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects: [{kind: ServiceAccount, name: deployer, namespace: NS}]
`

// TestImpersonation: a release with spec.serviceAccountName is applied,
// pruned and removed as that ServiceAccount, so its namespace's RBAC is
// what it may do: a kind the account may not create is refused by the API
// server, reported in the status, and nothing of that apply is written.
func TestImpersonation(t *testing.T) {
	ctx := context.Background()
	files := fixture(t, "NAMESPACE", "rolling")
	for k, v := range files {
		if strings.HasSuffix(k, "release.yaml") {
			files[k] = strings.Replace(v, "spec:\n", "spec:\n  serviceAccountName: deployer\n", 1)
		}
	}
	// The only release goes at the end: not a mass removal.
	e := newEnv(t, files, func(o *Options) { o.AllowMassRemoval = true })
	if err := testcluster.ApplyYAML(ctx, cluster.Config, []byte(strings.ReplaceAll(deployerRole, "NS", e.ns))); err != nil {
		t.Fatal(err)
	}
	rel := e.ns + "/rolling"
	st := e.passUntil(rel, 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if st.ServiceAccount != e.ns+"/deployer" {
		t.Errorf("status.serviceAccount = %q", st.ServiceAccount)
	}
	cs := cluster.Clientset(t)
	d, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "rolling", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mf := d.ManagedFields; len(mf) == 0 || mf[0].Manager != "sluice" {
		t.Errorf("managed fields %+v", mf)
	}

	// A NetworkPolicy the account may not create, beside a change it may
	// make: refused as a whole, said in the status.
	dir := "releases/" + e.ns + "/rolling/"
	e.repo.Commit(t, "a network policy", map[string]string{
		dir + "kustomization.yaml": files["releases/NAMESPACE/rolling/kustomization.yaml"] + "- netpol.yaml\ncommonAnnotations: {changed: \"yes\"}\n",
		dir + "netpol.yaml":        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: rolling}\nspec:\n  podSelector: {}\n",
	})
	e.repo.Push(t)
	st = e.passUntil(rel, 30*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Error != nil }, nil)
	if !strings.Contains(st.Error.Message, "forbidden") || !strings.Contains(st.Error.Message, "system:serviceaccount:"+e.ns+":deployer") {
		t.Errorf("status error %q does not say the account was forbidden", st.Error.Message)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(e.ns).Get(ctx, "rolling", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the NetworkPolicy exists: %v", err)
	}
	if d, _ := cs.AppsV1().Deployments(e.ns).Get(ctx, "rolling", metav1.GetOptions{}); d.Annotations["changed"] != "" {
		t.Error("half applied: the Deployment changed though the apply was forbidden")
	}

	// Removed as the account too, once the files go: while it may not
	// delete Deployments the removal fails, then goes through.
	noDelete := strings.Replace(strings.ReplaceAll(deployerRole, "NS", e.ns), "resources: [deployments]\n  verbs: [get, list, watch, create, update, patch, delete]", "resources: [deployments]\n  verbs: [get, list, watch, create, update, patch]", 1)
	if err := testcluster.ApplyYAML(ctx, cluster.Config, []byte(noDelete)); err != nil {
		t.Fatal(err)
	}
	e.repo.Commit(t, "remove", map[string]string{dir + "release.yaml": "", dir + "kustomization.yaml": "", dir + "netpol.yaml": "",
		dir + "deployment.yaml": "", dir + "service.yaml": "", dir + "route.yaml": ""})
	e.repo.Push(t)
	if _, err := e.agent.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if e.logs.FilterMessage("removing the release's objects failed; retried next pass").Len() == 0 {
		t.Fatal("the removal was not refused while the account may not delete Deployments")
	}
	if err := testcluster.ApplyYAML(ctx, cluster.Config, []byte(strings.ReplaceAll(deployerRole, "NS", e.ns))); err != nil {
		t.Fatal(err)
	}
	e.passUntilGone("the Deployment", func() error {
		_, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "rolling", metav1.GetOptions{})
		return err
	})
}
