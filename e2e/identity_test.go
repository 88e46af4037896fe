package e2e

import (
	"context"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/internal/testcluster"
)

// The agent in every story runs as deploy/'s ServiceAccount, with a token
// from the TokenRequest API and the RBAC kubectl apply -k deploy/ installs,
// never an admin kubeconfig: the shipped RBAC is what the stories prove.

// rbacKinds are the objects of deploy/ that say who the agent is and what
// it may do.
var rbacKinds = map[string]bool{"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true}

// deployRBAC builds the kustomization dir (deploy/ or an overlay) and
// returns its RBAC objects as YAML, namespace moved to ns when not "".
func deployRBAC(t *testing.T, dir, ns string) []byte {
	t.Helper()
	rm := kustomizeBuild(t, dir)
	var out []byte
	for _, r := range rm.Resources() {
		if !rbacKinds[r.GetKind()] {
			continue
		}
		if ns != "" {
			if r.GetKind() != "Role" && r.GetKind() != "RoleBinding" {
				continue
			}
			r.SetNamespace(ns)
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, y...), "---\n"...)
	}
	return out
}

// kustomizeBuild is kustomize build dir, as kubectl apply -k sees it.
func kustomizeBuild(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	kustomizeMu.Lock() // kustomize's OpenAPI state is global
	defer kustomizeMu.Unlock()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return rm
}

// agentKubeconfigs holds, per cluster, deploy/'s ServiceAccount kubeconfig.
var agentKubeconfigs sync.Map

var agentKubeconfigMu, kustomizeMu sync.Mutex

// agentKubeconfig installs deploy/'s RBAC on cl once and returns a
// kubeconfig for its ServiceAccount sluice-system/sluice.
func agentKubeconfig(t *testing.T, cl *testcluster.Cluster) string {
	t.Helper()
	agentKubeconfigMu.Lock()
	defer agentKubeconfigMu.Unlock()
	if kc, ok := agentKubeconfigs.Load(cl); ok {
		return kc.(string)
	}
	ctx := context.Background()
	if err := testcluster.ApplyYAML(ctx, cl.Config, deployRBAC(t, "../deploy", "")); err != nil {
		t.Fatalf("install deploy/'s RBAC: %v", err)
	}
	// The ClusterRole is an aggregation: the controller fills it.
	waitAggregated(t, cl, "sluice")
	kc, err := cl.ServiceAccountKubeconfig(ctx, "sluice-system", "sluice")
	if err != nil {
		t.Fatal(err)
	}
	agentKubeconfigs.Store(cl, kc)
	return kc
}

// leaseNamespace is a namespace of the story's own for the leader
// election Lease, with deploy/'s leader-election Role bound there as it is
// in the agent's own namespace.
func (w *world) leaseNamespace() string {
	w.t.Helper()
	ns := w.cl.Namespace(w.t)
	if err := testcluster.ApplyYAML(context.Background(), w.cl.Config, deployRBAC(w.t, "../deploy", ns)); err != nil {
		w.t.Fatal(err)
	}
	return ns
}
