package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
)

// TestWebhooksAroundARollout: a release whose rollout three real webhooks
// bracket. A smoke test (pre-rollout) runs twice against the ready canary
// while it has no traffic; a change-management system (a confirm gate)
// refuses three times, then opens the gate no one approved in Git; a
// post-rollout hook hears how the rollout ended, with the body its
// template makes, and an Event says what it answered.
func TestWebhooksAroundARollout(t *testing.T) {
	var smoke, cab atomic.Int64
	var mu sync.Mutex
	var post []map[string]any
	var postHeader string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/smoke":
			smoke.Add(1)
		case "/cab":
			if cab.Add(1) <= 3 {
				w.WriteHeader(http.StatusConflict) // not yet
			}
		case "/done":
			var b map[string]any
			_ = json.NewDecoder(r.Body).Decode(&b)
			mu.Lock()
			post, postHeader = append(post, b), r.Header.Get("X-Team")
			mu.Unlock()
		}
	}))
	t.Cleanup(hook.Close)
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = canaryWith("      - setWeight: 20\n      - pause: {gate: ship}\n      - setWeight: 100\n", `  checks:
  - name: smoke
    webhook: {url: "`+hook.URL+`/smoke"}
    interval: 1s
    count: 2
  - name: cab
    webhook: {url: "`+hook.URL+`/cab"}
    interval: 1s
  - name: done
    webhook:
      url: "`+hook.URL+`/done"
      headers: {X-Team: shop}
      body: '{"release": {{json .Release}}, "revision": {{json .Revision}}, "outcome": {{json .Phase}}}'
  gates:
    confirm: [{gate: ship, check: cab}]
  analysis: {preRollout: [smoke], postRollout: [done]}
`)
	e := newEnv(t, files, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.agent.notify.run(ctx)
	e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if smoke.Load()+cab.Load() != 0 || len(post) != 0 {
		t.Fatalf("webhooks called at the first install: smoke %d cab %d post %d", smoke.Load(), cab.Load(), len(post))
	}
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	e.repo.Commit(t, "6.7.1", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	trafficBeforeSmoke := false
	var confirmedAt int64
	e.passUntil(e.ns+"/canary", 120*time.Second, func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhaseSucceeded && s.Stable != nil && s.Stable.Revision != "" && s.Canary == nil && smoke.Load() > 0
	}, func(s v1alpha1.ReleaseStatus) {
		if s.Canary != nil && !s.PreRolloutPassed && s.Step == 0 && e.weights("canary", "canary")["canary-canary"] != 0 {
			trafficBeforeSmoke = true
		}
		if s.Step == 2 && confirmedAt == 0 {
			confirmedAt = cab.Load()
		}
	})
	if trafficBeforeSmoke {
		t.Errorf("the canary had traffic before its pre-rollout checks passed")
	}
	if n := smoke.Load(); n != 2 {
		t.Errorf("pre-rollout smoke ran %d times, want its count 2", n)
	}
	if confirmedAt != 4 {
		t.Errorf("the gate opened after %d answers of the confirm webhook, want 4 (three refusals, then 2xx)", confirmedAt)
	}
	log := gitserver.Git(t, e.repo.Bare, "log", "--format=%s", "sluice/status")
	if !strings.Contains(log, "pre-rollout checks passed") || !strings.Contains(log, "gate ship confirmed by check cab (200)") {
		t.Errorf("the status history does not say why the rollout moved:\n%s", log)
	}
	// The post-rollout hook is called once, from its own goroutine.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(post)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	if len(post) != 1 || post[0]["outcome"] != "Succeeded" || post[0]["release"] != e.ns+"/canary" || len(post[0]["revision"].(string)) != 40 || postHeader != "shop" {
		t.Fatalf("post-rollout hook saw %v (X-Team %q)", post, postHeader)
	}
	mu.Unlock()
	// The Event comes from the notifier's goroutine too.
	for {
		events, err := cluster.Clientset(t).CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=SluicePostRollout"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) == 1 && strings.Contains(events.Items[0].Message, "post-rollout check done: pass (200)") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("post-rollout Events: %+v", events.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
