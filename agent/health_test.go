package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnreachableAPIServerDoesNotStopThePolling: with the API server gone
// from the start, the loop still polls Git on its interval (the Deployment
// watch waits beside it) and /healthz stays ok while passes return; a loop
// whose passes stop returning fails /healthz.
func TestUnreachableAPIServerDoesNotStopThePolling(t *testing.T) {
	kc, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(t.TempDir(), "kubeconfig")
	// A port nothing listens on: every request fails at once.
	lines := strings.Split(string(kc), "\n")
	for i, l := range lines {
		if strings.Contains(l, "server:") {
			lines[i] = "    server: https://127.0.0.1:1"
		}
	}
	os.WriteFile(dead, []byte(strings.Join(lines, "\n")), 0o600)
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) { o.Kubeconfig = dead; o.Interval = 200 * time.Millisecond })
	addr := serve(t, e.agent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for counterValue(t, e.agent, "sluice_git_polls_total") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Git polled %v times in 20 s with the API server down", counterValue(t, e.agent, "sluice_git_polls_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while passes return", code)
	}
	cancel()
	<-done
	// A loop stuck in a pass: running, no pass returned for longer than allowed.
	e.agent.running.Store(true)
	e.agent.lastPass.Store(time.Now().Add(-e.agent.StallAfter() - time.Second).UnixNano())
	if code := get(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz = %d with the loop stuck", code)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
