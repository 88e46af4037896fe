package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
	"github.com/sluice-dev/sluice/reconcile"
)

// tenancyCases are objects a tenant's release must never create (NS is
// the release's namespace, OTHER another tenant's).
var tenancyCases = []struct{ name, yaml string }{
	{"cluster-role-binding", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: tenant-admin-NS}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: NS}]\n"},
	{"other-namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: OTHER}\ndata: {a: b}\n"},
	{"agent-secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: sluice-git, namespace: sluice-system}\nstringData: {password: stolen}\n"},
	{"kube-system-pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: miner, namespace: kube-system}\nspec: {containers: [{name: m, image: miner}]}\n"},
}

// TestTenancyRefusals installs deploy/tenancy/ on a cluster of its own
// (its ClusterRole aggregation would mix with deploy/'s on the shared
// one), a tenant namespace as deploy/tenancy/tenant/ sets it up, and runs
// the agent with the locked-down ServiceAccount's token. A healthy release
// installs and is removed as the tenant's sluice-deployer; each hostile
// release is refused by sluice validate and by the agent before the API
// server sees it; and the same objects, sent straight to the API server
// as the tenant's account and as the agent (sluice's check bypassed), are
// refused by RBAC. deploy/'s cluster-wide mode is measured against the
// same objects on the shared cluster.
func TestTenancyRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl, err := testcluster.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	if err := testcluster.ApplyYAML(ctx, cl.Config, deployRBAC(t, "../deploy/tenancy", "")); err != nil {
		t.Fatalf("install deploy/tenancy/'s RBAC: %v", err)
	}
	waitAggregated(t, cl, "sluice", "sluice-tenant")
	kc, err := cl.ServiceAccountKubeconfig(ctx, "sluice-system", "sluice")
	if err != nil {
		t.Fatal(err)
	}
	agentKubeconfigs.Store(cl, kc) // the world's agents run as the locked-down account

	w := newWorldOn(t, cl, nil)
	other := cl.Namespace(t)
	tenant := buildKustomization(t, "../deploy/tenancy/tenant")
	if err := testcluster.ApplyYAML(ctx, cl.Config, []byte(strings.ReplaceAll(tenant, "namespace: shop", "namespace: "+w.ns))); err != nil {
		t.Fatalf("tenant %s: %v", w.ns, err)
	}
	files := healthyRelease(w.ns, 0, "ghcr.io/sluice-dev/podinfo:6.7.0")
	for i, c := range tenancyCases {
		for k, v := range healthyRelease(w.ns, i+1, "ghcr.io/sluice-dev/podinfo:6.7.0") {
			if strings.HasSuffix(k, "kustomization.yaml") {
				v = "resources: [deployment.yaml, extra.yaml]\n"
			}
			files[k] = v
		}
		files[fmt.Sprintf("releases/%s/app-%d/extra.yaml", w.ns, i+1)] = "# " + c.name + "\n" + strings.NewReplacer("NS", w.ns, "OTHER", other).Replace(c.yaml)
	}
	w.repo.Commit(t, "a healthy release and hostile ones", files)
	w.repo.Push(t)

	// 1. sluice validate refuses each with file:line.
	out, err := exec.Command(sluiceBin, "validate", w.repo.Work+"/releases").CombinedOutput()
	if err == nil {
		t.Fatalf("validate passed the hostile releases:\n%s", out)
	}
	byValidate := 0
	for i := range tenancyCases {
		// At the line of the kind (cluster-scoped) or of metadata.namespace.
		if regexp.MustCompile(fmt.Sprintf(`releases/%s/app-%d/extra\.yaml:[34]: (kind|metadata\.namespace): `, w.ns, i+1)).Match(out) {
			byValidate++
		}
	}

	// 2. The agent installs the healthy one as the tenant's account and
	// refuses the rest before the API server sees them.
	w.start("--default-service-account", "sluice-deployer") // as deploy/tenancy/'s ConfigMap sets it
	w.waitStatus("app-0", 90*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	if sa := w.status("app-0").ServiceAccount; sa != w.ns+"/sluice-deployer" {
		t.Errorf("app-0 applied as %q", sa)
	}
	byAgent := 0
	for i, c := range tenancyCases {
		st := w.waitStatus(fmt.Sprintf("app-%d", i+1), 30*time.Second, "refused", func(s v1alpha1.ReleaseStatus) bool { return s.Error != nil })
		if strings.Contains(st.Error.Message, "creates objects in its own namespace only") || strings.Contains(st.Error.Message, "cluster-scoped kind") {
			byAgent++
		} else {
			t.Errorf("%s: status error %q", c.name, st.Error.Message)
		}
	}

	// 3. Sluice's check bypassed: the objects sent straight to the API
	// server (dry run) as the tenant's account and as the agent.
	agentCfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	tenantCfg := rest.CopyConfig(agentCfg)
	tenantCfg.Impersonate.UserName = reconcile.ServiceAccountUser(w.ns, "sluice-deployer")
	byRBAC := 0
	for _, id := range []struct {
		who string
		cfg *rest.Config
	}{{"the tenant's sluice-deployer", tenantCfg}, {"the agent (deploy/tenancy/)", agentCfg}} {
		for _, c := range tenancyCases {
			if err := sendStraight(ctx, cl, id.cfg, strings.NewReplacer("NS", w.ns, "OTHER", other).Replace(c.yaml)); apierrors.IsForbidden(err) {
				byRBAC++
			} else {
				t.Errorf("%s: as %s, the API server answered %v, want Forbidden", c.name, id.who, err)
			}
		}
	}
	// deploy/'s cluster-wide mode: RBAC refuses what no application needs
	// (cluster-wide bindings, Pods); Secrets and ConfigMaps anywhere are
	// fenced by sluice's own checks only (docs/security.md).
	defaultCfg, err := clientcmd.BuildConfigFromFlags("", agentKubeconfig(t, cluster))
	if err != nil {
		t.Fatal(err)
	}
	sharedNS := cluster.Namespace(t)
	byDefault := 0
	for _, c := range tenancyCases {
		err := sendStraight(ctx, cluster, defaultCfg, strings.NewReplacer("NS", sharedNS, "OTHER", sharedNS).Replace(c.yaml))
		refused := apierrors.IsForbidden(err)
		if want := c.name == "cluster-role-binding" || c.name == "kube-system-pod"; refused != want {
			t.Errorf("%s: deploy/'s RBAC answered %v", c.name, err)
		}
		if refused {
			byDefault++
		}
	}
	t.Logf("tenancy: %d hostile cases refused by sluice validate (file:line) and %d by the agent before the API; with sluice's check bypassed, %d of %d refused by RBAC in deploy/tenancy/ (as the tenant's account and as the agent), %d of %d in deploy/",
		byValidate, byAgent, byRBAC, 2*len(tenancyCases), byDefault, len(tenancyCases))
	if byValidate != len(tenancyCases) {
		t.Errorf("validate located %d of %d refusals:\n%s", byValidate, len(tenancyCases), out)
	}

	// 4. Removed as the tenant's account too.
	gone := map[string]string{}
	for k := range healthyRelease(w.ns, 0, "") {
		gone[k] = ""
	}
	w.repo.Commit(t, "remove app-0", gone)
	w.repo.Push(t)
	waitFor(t, 60*time.Second, "app-0 removed", func() bool {
		_, err := w.cs.AppsV1().Deployments(w.ns).Get(ctx, "app-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// sendStraight server-side applies one object as cfg, as a dry run.
func sendStraight(ctx context.Context, cl *testcluster.Cluster, cfg *rest.Config, y string) error {
	objs, err := testcluster.DecodeYAML([]byte(y))
	if err != nil || len(objs) != 1 {
		return fmt.Errorf("decode: %v", err)
	}
	o := objs[0]
	dc, err := discovery.NewDiscoveryClientForConfig(cl.Config)
	if err != nil {
		return err
	}
	m, err := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)).RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	body, _ := o.MarshalJSON()
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if o.GetNamespace() != "" {
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "sluice", DryRun: []string{metav1.DryRunAll}})
	return err
}

// buildKustomization is kustomize build dir, as YAML.
func buildKustomization(t *testing.T, dir string) string {
	t.Helper()
	y, err := kustomizeBuild(t, dir).AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}

// waitAggregated waits until the aggregated ClusterRoles have rules.
func waitAggregated(t *testing.T, cl *testcluster.Cluster, names ...string) {
	t.Helper()
	cs := cl.Clientset(t)
	for _, name := range names {
		waitFor(t, 30*time.Second, "ClusterRole "+name+" aggregated", func() bool {
			cr, err := cs.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
			return err == nil && len(cr.Rules) > 0
		})
	}
}
