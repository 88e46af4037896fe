package agent

import (
	"context"
	"encoding/json"
	"io"
	"net"
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
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
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

// TestMetricsAndProbes: /healthz, /readyz after the first pass, and the
// metrics a pass produces.
func TestMetricsAndProbes(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.agent.Serve(ctx, l)
	base := "http://" + l.Addr().String()
	get := func(p string) (int, string) {
		resp, err := http.Get(base + p)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before the first pass = %d", code)
	}
	e.passUntil(e.ns+"/rolling", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after a pass = %d", code)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`sluice_release_phase{name="rolling",namespace="` + e.ns + `",phase="Succeeded"} 1`,
		`sluice_transitions_total{name="rolling",namespace="` + e.ns + `",phase="Succeeded"} 1`,
		`sluice_release_info{canary="",name="rolling",namespace="` + e.ns + `",phase="Succeeded",stable="`,
		`sluice_release_steps{name="rolling",namespace="` + e.ns + `"} 0`,
		`sluice_release_step{name="rolling",namespace="` + e.ns + `"} 0`,
		"sluice_git_last_poll_success_timestamp_seconds 1.", "sluice_leader 1",
		`rest_client_requests_total{code="200"`,
		`sluice_apply_objects_total{action="created"}`,
		"sluice_git_polls_total", "sluice_reconcile_duration_seconds_count", "sluice_render_cache_hits_total",
		"sluice_status_commits_total 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
