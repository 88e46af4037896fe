package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// TestDeployManifests applies deploy/ with a server-side dry run to the real
// control plane: the install manifests are valid as shipped.
func TestDeployManifests(t *testing.T) {
	c := startCluster(t)
	kubectl, err := testcluster.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	// A server-side dry run cannot create the namespace the other objects
	// go into, so it exists first, as after a real apply of namespace.yaml.
	if out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "-f", "../../deploy/namespace.yaml").CombinedOutput(); err != nil {
		t.Fatalf("namespace: %v\n%s", err, out)
	}
	out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-k", "../../deploy/", "--dry-run=server", "--server-side").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -k deploy/ --dry-run=server: %v\n%s", err, out)
	}
	for _, want := range []string{"namespace/sluice-system", "deployment.apps/sluice", "clusterrole.rbac.authorization.k8s.io/sluice", "networkpolicy.networking.k8s.io/sluice", "role.rbac.authorization.k8s.io/sluice-leader-election"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry run did not cover %s:\n%s", want, out)
		}
	}
	rules, err := exec.Command(kubectl, "kustomize", "../../deploy/").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/: %v", err)
	}
	if strings.Contains(string(rules), `"*"`) || strings.Contains(string(rules), "- '*'") {
		t.Error("RBAC uses a wildcard")
	}
}
