package agent

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/reconcile"
)

// TestApplyCurrent: an apply is left out only for the same objects as the
// same identity, within the resync, with no drift noticed since.
func TestApplyCurrent(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	a := &Agent{now: func() time.Time { return now }, lastApplied: map[string]appliedSet{}, drifted: map[string]bool{},
		dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
	obj := func(image string) []*unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"image": image}}}}}
		return []*unstructured.Unstructured{u}
	}
	key := objectsKey("", obj("web:1"))
	if _, ok := a.applyCurrent("ns/web", key); ok {
		t.Fatal("never applied, yet left out")
	}
	inv := reconcile.Inventory{"apps/v1/Deployment/ns/web"}
	a.rememberApplied("ns/web", key, inv)
	if got, ok := a.applyCurrent("ns/web", key); !ok || len(got) != 1 || got[0] != inv[0] {
		t.Errorf("the same objects right after: %v %v, want left out with the inventory", got, ok)
	}
	for name, k := range map[string]string{
		"other objects":  objectsKey("", obj("web:2")),
		"other identity": objectsKey("ns/deployer", obj("web:1")),
	} {
		if _, ok := a.applyCurrent("ns/web", k); ok {
			t.Errorf("%s: left out", name)
		}
	}
	a.markChanged("ns/web", false)
	if _, ok := a.applyCurrent("ns/web", key); !ok {
		t.Error("a status-only change made it apply")
	}
	a.markChanged("ns/web", true)
	if _, ok := a.applyCurrent("ns/web", key); ok {
		t.Error("drift on the Deployment left out")
	}
	a.appliedFrom("ns/web")
	a.rememberApplied("ns/web", key, inv)
	now = now.Add(resync)
	if _, ok := a.applyCurrent("ns/web", key); ok {
		t.Error("left out at the resync")
	}
}
