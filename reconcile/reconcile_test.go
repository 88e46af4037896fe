package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	m, err := New(cluster.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func objects(t *testing.T, yaml string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testcluster.DecodeYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func app(image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "%s"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {A: "1"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  rules:
  - backendRefs: [{name: web, port: 80, weight: 100}]
`, replicas, image)
}

func actions(cs *ssa.ChangeSet) map[string]ssa.Action {
	out := map[string]ssa.Action{}
	for _, e := range cs.Entries {
		out[e.ObjMetadata.GroupKind.Kind+"/"+e.ObjMetadata.Name] = e.Action
	}
	return out
}

func resourceVersions(t *testing.T, m *Manager, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := m.Client().Get(context.Background(), types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, live); err != nil {
			t.Fatal(err)
		}
		out[o.GetKind()+"/"+o.GetName()] = live.GetResourceVersion()
	}
	return out
}

// TestApplyLifecycle: create, become Available, no write when unchanged,
// update, drift set back.
func TestApplyLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	set := Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 2))}

	res, err := m.Apply(ctx, set, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id, a := range actions(res.ChangeSet) {
		if a != ssa.CreatedAction {
			t.Errorf("%s: %s, want created", id, a)
		}
	}
	want := []string{
		"apps/v1/Deployment/" + ns + "/web",
		"gateway.networking.k8s.io/v1/HTTPRoute/" + ns + "/web",
		"v1/ConfigMap/" + ns + "/web-config",
		"v1/Service/" + ns + "/web",
	}
	if strings.Join(res.Inventory, ",") != strings.Join(want, ",") {
		t.Errorf("inventory = %v", res.Inventory)
	}
	if res.Objects[0].GetLabels()[ReleaseLabel] != ns+".web" {
		t.Errorf("release label missing: %v", res.Objects[0].GetLabels())
	}
	if err := m.Wait(ctx, res.Objects, 60*time.Second); err != nil {
		t.Fatalf("not healthy: %v", err)
	}
	if _, err := cluster.WaitAvailable(ctx, cluster.Clientset(t), ns, "web", 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// Unchanged: no write, resourceVersions stay.
	applyWritesNothing(ctx, t, m, set, res.Objects, "an unchanged apply")

	// Update: only the Deployment is configured.
	set.Objects = objects(t, app("web:2", 2))
	res3, err := m.Apply(ctx, set, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := actions(res3.ChangeSet)
	if got["Deployment/web"] != ssa.ConfiguredAction || got["Service/web"] != ssa.UnchangedAction {
		t.Errorf("update actions = %v", got)
	}

	// Drift: someone scales the Deployment; the next apply sets it back.
	cs := cluster.Clientset(t)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	res4, err := m.Apply(ctx, set, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if actions(res4.ChangeSet)["Deployment/web"] != ssa.ConfiguredAction {
		t.Errorf("drift not reported: %v", actions(res4.ChangeSet))
	}
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if *d.Spec.Replicas != 2 {
		t.Errorf("drift not set back: replicas = %d", *d.Spec.Replicas)
	}
}

// TestInvalidObjectZeroWrites: one object the API server refuses means no
// object is written, and the error names it with the server's reason.
func TestInvalidObjectZeroWrites(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	objs := objects(t, app("web:1", 1)+`---
apiVersion: v1
kind: Service
metadata: {name: broken}
spec:
  ports: [{port: 99999}]
`)
	_, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: objs}, ApplyOptions{})
	if err == nil {
		t.Fatal("applied an invalid Service")
	}
	if !strings.Contains(err.Error(), "Service/"+ns+"/broken") || !strings.Contains(err.Error(), "99999") {
		t.Errorf("error does not name the object and reason: %v", err)
	}
	deps, _ := cluster.Clientset(t).AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	cms, _ := cluster.Clientset(t).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: ReleaseLabel})
	if len(deps.Items) != 0 || len(cms.Items) != 0 {
		t.Errorf("objects were written: %d deployments, %d configmaps", len(deps.Items), len(cms.Items))
	}
}

// TestRouteWeightRefusedByCRD surfaces the Gateway API schema's error.
func TestRouteWeightRefusedByCRD(t *testing.T) {
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	objs := objects(t, strings.Replace(app("web:1", 1), "weight: 100", "weight: -1", 1))
	_, err := m.Apply(context.Background(), Set{Release: ns + "/web", Namespace: ns, Objects: objs}, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "HTTPRoute/"+ns+"/web") || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("err = %v", err)
	}
}

// TestImmutableSelector: a changed Deployment selector is a clear error,
// and with Force the Deployment is recreated.
func TestImmutableSelector(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	set := Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1))}
	if _, err := m.Apply(ctx, set, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := strings.ReplaceAll(app("web:1", 1), "{app: web}", "{app: web, track: stable}")
	set.Objects = objects(t, changed)
	_, err := m.Apply(ctx, set, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "immutable") || !strings.Contains(err.Error(), "Deployment/"+ns+"/web") {
		t.Fatalf("err = %v", err)
	}
	if _, err := m.Apply(ctx, set, ApplyOptions{Force: true}); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	d, err := cluster.Clientset(t).AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || d.Spec.Selector.MatchLabels["track"] != "stable" {
		t.Fatalf("not recreated: %v %v", err, d)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	rel := ns + "/web"
	res, err := m.Apply(ctx, Set{Release: rel, Namespace: ns, Objects: objects(t, app("web:1", 1))}, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prev := res.Inventory // 4 objects

	// Everything gone from the render: refused.
	if _, err := m.Prune(ctx, rel, prev, nil, PruneOptions{}); !errors.Is(err, ErrPruneGuard) {
		t.Fatalf("prune of everything: err = %v", err)
	}
	// Three of four: over the 50% share, refused.
	if _, err := m.Prune(ctx, rel, prev, prev[:1], PruneOptions{}); !errors.Is(err, ErrPruneGuard) {
		t.Fatalf("prune of 75%%: err = %v", err)
	}
	// The ConfigMap dropped from the render: deleted, nothing else.
	var current Inventory
	for _, id := range prev {
		if !strings.Contains(id, "ConfigMap") {
			current = append(current, id)
		}
	}
	cs, err := m.Prune(ctx, rel, prev, current, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Entries) != 1 || cs.Entries[0].Action != ssa.DeletedAction {
		t.Fatalf("prune = %v", cs.Entries)
	}
	if _, err := cluster.Clientset(t).CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap still there")
	}
	// An object another release owns is not deleted even if named.
	other := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs}\ndata: {a: b}\n")
	if _, err := m.Apply(ctx, Set{Release: ns + "/other", Namespace: ns, Objects: other}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := "v1/ConfigMap/" + ns + "/theirs"
	if _, err := m.Prune(ctx, rel, append(current, theirs), current, PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Clientset(t).CoreV1().ConfigMaps(ns).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("another release's object was pruned: %v", err)
	}
	// Forced: everything goes.
	if _, err := m.Prune(ctx, rel, current, nil, PruneOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Clientset(t).AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Error("forced prune left the Deployment")
	}
}

func TestGuardRails(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	clusterRole := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: sluice-test-cr}\n"
	tests := []struct {
		name string
		opts Options
		ns   string // the release's namespace; default ns
		yaml string
		want string
	}{
		{"namespace not allowed", Options{Namespaces: []string{"prod"}}, "", app("web:1", 1), "not in the allowlist"},
		{"cluster-scoped", Options{}, "", clusterRole, "cluster-scoped kind ClusterRole is not allowed (start the agent with --allow-cluster-scoped=ClusterRole.rbac.authorization.k8s.io)"},
		{"another kind allowed", Options{Tenancy: v1alpha1.Tenancy{ClusterScoped: []string{"Namespace", "ClusterRole.example.com"}}}, "", clusterRole, "cluster-scoped kind ClusterRole is not allowed"},
		{"other namespace", Options{}, "", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n", "outside the release's namespace"},
		{"kube-system", Options{}, "kube-system", app("web:1", 1), `namespace "kube-system" is protected`},
		{"the agent's namespace", Options{Tenancy: v1alpha1.Tenancy{AgentNamespace: "sluice-agent", AllowSystem: []string{"kube-public"}}}, "sluice-agent", app("web:1", 1), `namespace "sluice-agent" is protected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, tt.opts)
			rns := tt.ns
			if rns == "" {
				rns = ns
			}
			_, err := m.Apply(ctx, Set{Release: rns + "/web", Namespace: rns, Objects: objects(t, tt.yaml)}, ApplyOptions{})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Allowed when told.
	m := newManager(t, Options{Tenancy: v1alpha1.Tenancy{ClusterScoped: []string{"ClusterRole"}}, Namespaces: []string{ns}})
	cr := objects(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: sluice-test-cr-"+ns+"}\n")
	if _, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: cr}, ApplyOptions{}); err != nil {
		t.Fatalf("allowed cluster-scoped object refused: %v", err)
	}
}

// TestHealthTimeoutNamesObject: pods that can never schedule keep the
// Deployment unavailable; the wait names it and says why.
func TestHealthTimeoutNamesObject(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	y := strings.Replace(app("web:1", 1), "containers:", "nodeSelector: {nowhere: \"true\"}\n      containers:", 1)
	res, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, y)}, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Wait(ctx, res.Objects, 3*time.Second)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want not ready", err)
	}
	if !strings.Contains(err.Error(), "apps/v1/Deployment/"+ns+"/web: InProgress") {
		t.Errorf("error does not name the Deployment: %v", err)
	}
	if strings.Contains(err.Error(), "Service/") {
		t.Errorf("error names a ready object: %v", err)
	}
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{})
	secret := "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n"
	set := Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1)+secret)}
	entries, err := m.Diff(ctx, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action != ssa.CreatedAction {
			t.Errorf("%s: %s before any apply", e.ID, e.Action)
		}
	}
	res, err := m.Apply(ctx, set, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(app("web:2", 1), "A: \"1\"", "A: \"2\"", 1) + strings.Replace(secret, "hunter2", "hunter3", 1)
	objs := objects(t, changed)
	var withoutRoute []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "HTTPRoute" {
			withoutRoute = append(withoutRoute, o)
		}
	}
	set.Objects = withoutRoute
	entries, err = m.Diff(ctx, set, res.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DiffEntry{}
	for _, e := range entries {
		got[e.ID] = e
	}
	dep := got["apps/v1/Deployment/"+ns+"/web"]
	if dep.Action != ssa.ConfiguredAction || !strings.Contains(dep.Diff, "-      - image: web:1") || !strings.Contains(dep.Diff, "+      - image: web:2") {
		t.Errorf("deployment diff: %s\n%s", dep.Action, dep.Diff)
	}
	if got["v1/Service/"+ns+"/web"].Action != ssa.UnchangedAction {
		t.Errorf("service: %s", got["v1/Service/"+ns+"/web"].Action)
	}
	if got["gateway.networking.k8s.io/v1/HTTPRoute/"+ns+"/web"].Action != ssa.DeletedAction {
		t.Errorf("route not listed for deletion: %v", entries)
	}
	sec := got["v1/Secret/"+ns+"/creds"]
	if sec.Action != ssa.ConfiguredAction || strings.Contains(sec.Diff, "aHVudGVy") || strings.Contains(sec.Diff, "hunter") {
		t.Errorf("secret diff leaks or is missing: %s\n%s", sec.Action, sec.Diff)
	}
	// Diff wrote nothing.
	d, _ := cluster.Clientset(t).AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if d.Spec.Template.Spec.Containers[0].Image != "web:1" {
		t.Error("diff changed the cluster")
	}
}

func TestParseID(t *testing.T) {
	tests := []struct{ id, gvk, ns, name string }{
		{"apps/v1/Deployment/shop/web", "apps/v1, Kind=Deployment", "shop", "web"},
		{"v1/Service/shop/web", "/v1, Kind=Service", "shop", "web"},
		{"v1/Namespace/shop", "/v1, Kind=Namespace", "", "shop"},
		{"rbac.authorization.k8s.io/v1/ClusterRole/admin", "rbac.authorization.k8s.io/v1, Kind=ClusterRole", "", "admin"},
		{"gateway.networking.k8s.io/v1beta1/HTTPRoute/a/b", "gateway.networking.k8s.io/v1beta1, Kind=HTTPRoute", "a", "b"},
	}
	for _, tt := range tests {
		gvk, ns, name, err := ParseID(tt.id)
		if err != nil || gvk.String() != tt.gvk || ns != tt.ns || name != tt.name {
			t.Errorf("ParseID(%q) = %q %q %q %v", tt.id, gvk.String(), ns, name, err)
		}
	}
	if _, _, _, err := ParseID("Deployment"); err == nil {
		t.Error("a bad ID parsed")
	}
}

// TestFreshInstall: a release's first apply skips the dry-run round and
// still writes nothing when one object is refused (the ones it created
// are deleted again), leaves an object that existed before untouched, and
// owns the fields it wrote as an ordinary apply does.
func TestFreshInstall(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Options{})
	broken := `---
apiVersion: v1
kind: Service
metadata: {name: broken}
spec:
  ports: [{port: 99999}]
`
	cs := cluster.Clientset(t)
	left := func(ns string) int {
		deps, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		cms, _ := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: ReleaseLabel})
		svcs, _ := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: ReleaseLabel})
		n := len(cms.Items) + len(svcs.Items)
		for _, d := range deps.Items {
			if d.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}

	t.Run("invalid among valid", func(t *testing.T) {
		ns := cluster.Namespace(t)
		_, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1)+broken)}, ApplyOptions{Fresh: true})
		if err == nil {
			t.Fatal("applied an invalid Service")
		}
		if !strings.Contains(err.Error(), "Service/"+ns+"/broken") || !strings.Contains(err.Error(), "99999") {
			t.Errorf("error does not name the object and reason: %v", err)
		}
		if n := left(ns); n != 0 {
			t.Errorf("%d objects of the refused install left in the cluster", n)
		}
	})

	t.Run("an object exists", func(t *testing.T) {
		ns := cluster.Namespace(t)
		svc := objects(t, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: `+ns+`}
spec:
  selector: {app: other}
  ports: [{port: 80}]
`)[0]
		if err := m.Client().Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		before := svc.GetResourceVersion()
		if _, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1)+broken)}, ApplyOptions{Fresh: true}); err == nil {
			t.Fatal("applied an invalid Service")
		}
		got, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != before {
			t.Errorf("the existing Service was written (resourceVersion %s -> %s)", before, got.ResourceVersion)
		}
		deps, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if len(deps.Items) != 0 {
			t.Errorf("%d Deployments written", len(deps.Items))
		}
	})

	t.Run("valid", func(t *testing.T) {
		ns := cluster.Namespace(t)
		set := Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1))}
		res, err := m.Apply(ctx, set, ApplyOptions{Fresh: true})
		if err != nil {
			t.Fatal(err)
		}
		for id, a := range actions(res.ChangeSet) {
			if a != ssa.CreatedAction {
				t.Errorf("%s: %s, want created", id, a)
			}
		}
		if n := left(ns); n != 3 {
			t.Errorf("%d objects with the release label, want 3 (and the route)", n)
		}
		// The fields are sluice's apply's: the next apply writes nothing,
		// and one removing the ConfigMap's key removes it.
		if _, err := cluster.WaitAvailable(ctx, cs, ns, "web", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		applyWritesNothing(ctx, t, m, set, res.Objects, "the apply after a fresh install")
		set.Objects = objects(t, strings.Replace(app("web:1", 1), `data: {A: "1"}`, `data: {B: "2"}`, 1))
		if _, err := m.Apply(ctx, set, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
		if _, ok := cm.Data["A"]; ok || cm.Data["B"] != "2" {
			t.Errorf("a key dropped from the spec stayed: %v", cm.Data)
		}
	})
}

// applyWritesNothing applies set again and fails the test if it wrote:
// a change in its change set or a resourceVersion moved on objs.
func applyWritesNothing(ctx context.Context, t *testing.T, m *Manager, set Set, objs []*unstructured.Unstructured, what string) {
	t.Helper()
	before := resourceVersions(t, m, objs)
	res, err := m.Apply(ctx, set, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed() {
		t.Errorf("%s wrote: %v", what, actions(res.ChangeSet))
	}
	if after := resourceVersions(t, m, objs); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("resourceVersions moved on %s:\n%v\n%v", what, before, after)
	}
}
