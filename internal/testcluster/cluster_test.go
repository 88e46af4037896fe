package testcluster

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

var cluster *Cluster

func TestMain(m *testing.M) { Main(m, &cluster) }

func deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// TestDeploymentBecomesAvailable proves the control plane is whole: a
// Deployment goes through a ReplicaSet, the scheduler, kwok's pod stages,
// and a new image rolls out.
func TestDeploymentBecomesAvailable(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	cs := cluster.Clientset(t)
	start := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", "web:1", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitAvailable(ctx, cs, ns, "web", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("3-replica Deployment Available in %s", time.Since(start).Round(time.Millisecond))
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("pods = %d, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != NodeName || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s on %q phase %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}

	start = time.Now()
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	d.Spec.Template.Spec.Containers[0].Image = "web:2"
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitAvailable(ctx, cs, ns, "web", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("image rolled out in %s", time.Since(start).Round(time.Millisecond))
	if exited := cluster.Exited(); len(exited) > 0 {
		t.Fatalf("components exited: %v", exited)
	}
}

// TestGatewayCRDsValidate shows the CRDs are installed and enforce their
// schema: a negative weight is refused by the API server.
func TestGatewayCRDsValidate(t *testing.T) {
	ctx := context.Background()
	ns := cluster.Namespace(t)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	routes := dyn.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).Namespace(ns)
	route := func(weight int64) []byte {
		objs, err := DecodeYAML([]byte(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  rules:
  - backendRefs: [{name: svc, port: 80, weight: WEIGHT}]
`))
		if err != nil {
			t.Fatal(err)
		}
		rules := objs[0].Object["spec"].(map[string]any)["rules"].([]any)
		rules[0].(map[string]any)["backendRefs"].([]any)[0].(map[string]any)["weight"] = weight
		b, _ := objs[0].MarshalJSON()
		return b
	}
	if _, err := routes.Patch(ctx, "r", "application/apply-patch+yaml", route(-1), metav1.PatchOptions{FieldManager: "t"}); err == nil {
		t.Fatal("an HTTPRoute with weight -1 was accepted")
	}
	if _, err := routes.Patch(ctx, "r", "application/apply-patch+yaml", route(50), metav1.PatchOptions{FieldManager: "t"}); err != nil {
		t.Fatalf("a valid HTTPRoute was refused: %v", err)
	}
}
