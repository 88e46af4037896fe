package reconcile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// TestWatchWorkloads: once the Deployments are watched, a Deployment that
// sluice applied reports its release on every change, and Observe reads it
// from the watch: it sees the Deployment become Current and, once deleted,
// gone, without a GET.
func TestWatchWorkloads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := cluster.Namespace(t)
	m := newManager(t, Options{Namespaces: []string{ns}})
	var mu sync.Mutex
	changed := map[string]int{}
	if err := m.WatchWorkloads(ctx, cluster.Config, func(release string, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		changed[release]++
	}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return changed[ns+"/web"]
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := m.Apply(ctx, Set{Release: ns + "/web", Namespace: ns, Objects: objects(t, app("web:1", 1))}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("the release is reported changed", func() bool { return count() > 0 })
	eventually("Observe sees the Deployment Current", func() bool {
		o, err := m.Observe(ctx, "apps/v1", "Deployment", ns, "web")
		return err == nil && o.Found && o.Status == status.CurrentStatus
	})

	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	deps := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns)
	before := count()
	if err := deps.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("the deletion is reported", func() bool { return count() > before })
	eventually("Observe sees the Deployment gone", func() bool {
		o, err := m.Observe(ctx, "apps/v1", "Deployment", ns, "web")
		return err == nil && !o.Found
	})
	mu.Lock()
	defer mu.Unlock()
	if n := len(changed); n != 1 {
		t.Errorf("releases reported: %v, want only %s/web", changed, ns)
	}
}

// TestSpecChanged: a watched Deployment's status updates are not drift;
// its spec (generation), labels, annotations and deletion are.
func TestSpecChanged(t *testing.T) {
	dep := func(gen int64, labels, annotations map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment"}}
		u.SetGeneration(gen)
		u.SetLabels(labels)
		u.SetAnnotations(annotations)
		return u
	}
	base := dep(3, map[string]string{"a": "1"}, map[string]string{"v": "x"})
	status := base.DeepCopy()
	unstructured.SetNestedField(status.Object, int64(2), "status", "readyReplicas")
	deleted := base.DeepCopy()
	now := metav1.Now()
	deleted.SetDeletionTimestamp(&now)
	for _, c := range []struct {
		name string
		cur  any
		want bool
	}{
		{"status only", status, false},
		{"same", base.DeepCopy(), false},
		{"spec (generation)", dep(4, map[string]string{"a": "1"}, map[string]string{"v": "x"}), true},
		{"label", dep(3, map[string]string{"a": "2"}, map[string]string{"v": "x"}), true},
		{"annotation", dep(3, map[string]string{"a": "1"}, nil), true},
		{"deleting", deleted, true},
		{"not an object", "x", true},
	} {
		if got := specChanged(base, c.cur); got != c.want {
			t.Errorf("%s: specChanged = %v, want %v", c.name, got, c.want)
		}
	}
}
