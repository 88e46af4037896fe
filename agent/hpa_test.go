package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

const hpa = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: canary}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: canary}
  minReplicas: 4
  maxReplicas: 6
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`

// TestAutoscaledWorkload runs a canary of a Deployment that a
// HorizontalPodAutoscaler scales, with the real controller-manager's HPA
// controller (no metrics server here: it keeps the replicas within
// minReplicas..maxReplicas, which is what this story needs). sluice leaves
// replicas to the HPA (the stable Deployment stays at the HPA's 4, not
// Git's 3), sizes the canary from the live count, gives the canary its own
// HPA for the canary's life, and removes it at promotion.
func TestAutoscaledWorkload(t *testing.T) {
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = fmt.Sprintf(canaryRelease, "")
	files["releases/NAMESPACE/canary/hpa.yaml"] = hpa
	k := files["releases/NAMESPACE/canary/kustomization.yaml"]
	files["releases/NAMESPACE/canary/kustomization.yaml"] = strings.Replace(k, "- route.yaml", "- route.yaml\n- hpa.yaml", 1)
	e := newEnv(t, files, nil)
	ctx := context.Background()
	cs := cluster.Clientset(t)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	replicas := func(name string) int32 {
		d, err := cs.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			return -1
		}
		return *d.Spec.Replicas
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			e.agent.markDirty(e.ns + "/canary")
			if _, err := e.agent.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the HPA to scale the stable Deployment to its minimum", func() bool { return replicas("canary") == 4 })
	// Passes apply the release again; the HPA's count stands.
	for range 5 {
		e.agent.markDirty(e.ns + "/canary")
		if _, err := e.agent.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := replicas("canary"); n != 4 {
		t.Fatalf("sluice set replicas back to %d: it fights the HPA", n)
	}

	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhasePaused }, nil)
	h, err := cs.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Get(ctx, "canary-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no HPA for the canary track: %v", err)
	}
	if h.Spec.ScaleTargetRef.Name != "canary-canary" || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 4 {
		t.Errorf("canary HPA targets %s with minReplicas %v, want canary-canary sized from the live 4", h.Spec.ScaleTargetRef.Name, h.Spec.MinReplicas)
	}
	waitFor("the canary track at the live size", func() bool { return replicas("canary-canary") == 4 })

	approved := fmt.Sprintf(canaryRelease, "  gates:\n    approved:\n    - {gate: qa, revision: "+bump[:7]+"}\n")
	e.repo.Commit(t, "approve", map[string]string{"releases/" + e.ns + "/canary/release.yaml": strings.ReplaceAll(approved, "NAMESPACE", e.ns)})
	e.repo.Push(t)
	e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	e.passUntilGone("the canary HPA", func() error {
		_, err := cs.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Get(ctx, "canary-canary", metav1.GetOptions{})
		return err
	})
	var stable *autoscalingv2.HorizontalPodAutoscaler
	if stable, err = cs.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Get(ctx, "canary", metav1.GetOptions{}); err != nil || stable.Spec.ScaleTargetRef.Name != "canary" {
		t.Errorf("the stable HPA: %v %v", stable, err)
	}
	if n := replicas("canary"); n < 4 {
		t.Errorf("after promotion the stable Deployment has %d replicas, under the HPA's minimum", n)
	}
}
