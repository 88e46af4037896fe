package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestNotificationsAndEvents: phase changes reach a JSON webhook and a
// Slack-style one (after a failed first delivery, retried), and each
// transition is a Kubernetes Event on the workload.
func TestNotificationsAndEvents(t *testing.T) {
	var mu sync.Mutex
	var generic []Notification
	var slack []string
	failOnce := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/slack" {
			var m map[string]string
			json.NewDecoder(r.Body).Decode(&m)
			slack = append(slack, m["text"])
			return
		}
		if failOnce {
			failOnce = false
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var n Notification
		json.NewDecoder(r.Body).Decode(&n)
		generic = append(generic, n)
	}))
	defer srv.Close()
	files := fixture(t, "NAMESPACE", "rolling")
	e := newEnv(t, files, func(o *Options) { o.NotifyURLs = []string{srv.URL + "/hook", srv.URL + "/slack"} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.agent.notify.run(ctx)
	e.passUntil("demo/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := len(generic) >= 2 && len(slack) >= 2
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(generic) < 2 || generic[1].Phase != v1alpha1.PhaseSucceeded || generic[1].PreviousPhase != v1alpha1.PhaseProgressing || generic[1].Release != e.ns+"/rolling" {
		t.Errorf("JSON notifications = %+v", generic)
	}
	if len(slack) < 2 || !strings.Contains(slack[1], "Progressing → Succeeded") {
		t.Errorf("Slack notifications = %q", slack)
	}
	events, err := cluster.Clientset(t).CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=rolling"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, ev := range events.Items {
		if ev.Source.Component == "sluice" {
			reasons[ev.Reason] = true
		}
	}
	if !reasons["SluiceProgressing"] || !reasons["SluiceSucceeded"] {
		t.Errorf("events on the workload: %v", reasons)
	}
}
