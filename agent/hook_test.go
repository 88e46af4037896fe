package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyHook(t *testing.T) {
	secret := []byte("hook-secret")
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	tests := []struct {
		name   string
		header map[string]string
		ok     bool
	}{
		{"GitHub", map[string]string{"X-Hub-Signature-256": "sha256=" + sig}, true},
		{"GitHub, another body's signature", map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}, false},
		{"GitLab", map[string]string{"X-Gitlab-Token": "hook-secret"}, true},
		{"GitLab, wrong token", map[string]string{"X-Gitlab-Token": "hook-secreT"}, false},
		{"Gitea", map[string]string{"X-Gitea-Signature": sig}, true},
		{"Forgejo", map[string]string{"X-Forgejo-Signature": sig}, true},
		{"unsigned", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if err := verifyHook(secret, h, body); (err == nil) != tc.ok {
				t.Errorf("verifyHook = %v, want ok %v", err, tc.ok)
			}
		})
	}
	if err := verifyHook(nil, http.Header{}, body); err != nil {
		t.Errorf("no secret configured: %v", err)
	}
}

// TestHookCannotAmplify: a flood of hooks (signed or not) makes at most one
// poll per MinHookGap; with a secret, unsigned hooks are refused and cause
// none.
func TestHookCannotAmplify(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	os.WriteFile(secretFile, []byte("hook-secret\n"), 0o600)
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) { o.Interval = time.Hour; o.HookSecretFile = secretFile })
	addr := serve(t, e.agent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !e.agent.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("first pass did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
	flood := func(n int, header http.Header) map[int]int {
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 8 {
					req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader("{}"))
					req.Header = header.Clone()
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
					mu.Lock()
					codes[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return codes
	}
	polls := func() float64 { return counterValue(t, e.agent, "sluice_git_polls_total") }

	before := polls()
	if codes := flood(800, http.Header{}); codes[http.StatusUnauthorized] != 800 {
		t.Fatalf("unsigned hooks: %v", codes)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := polls() - before; n != 0 {
		t.Errorf("unsigned hooks caused %v polls", n)
	}

	signed := http.Header{"X-Gitlab-Token": []string{"hook-secret"}}
	before = polls()
	start := time.Now()
	codes := flood(800, signed)
	time.Sleep(1500 * time.Millisecond)
	elapsed := time.Since(start)
	n := polls() - before
	if codes[http.StatusAccepted] != 800 || n < 1 {
		t.Fatalf("signed hooks: %v, %v polls", codes, n)
	}
	if limit := elapsed.Seconds()/MinHookGap.Seconds() + 2; n > limit {
		t.Errorf("800 hooks in %s caused %v polls, want at most %.0f", elapsed.Round(time.Millisecond), n, limit)
	}
	t.Logf("800 signed hooks in %s: %v ls-remote", elapsed.Round(time.Millisecond), n)
}

func TestHookRef(t *testing.T) {
	for body, want := range map[string]string{
		`{"ref":"refs/heads/main","after":"abc"}`:                 "refs/heads/main",
		`{"object_kind":"push","ref":"refs/heads/sluice/status"}`: "refs/heads/sluice/status",
		`{}`:         "",
		`not json`:   "",
		`{"ref":42}`: "",
		``:           "",
	} {
		if got := hookRef([]byte(body)); got != want {
			t.Errorf("hookRef(%q) = %q, want %q", body, got, want)
		}
	}
}

// TestHookOtherBranch: a push event naming another branch (the agent's own
// status pushes come back this way) causes no poll; one naming the spec
// branch, or none, does.
func TestHookOtherBranch(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), nil)
	addr := serve(t, e.agent)
	post := func(body string) {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /hook %s: %s", body, resp.Status)
		}
	}
	for _, tc := range []struct {
		body string
		poll bool
	}{
		{`{"ref":"refs/heads/` + e.agent.opts.StatusBranch + `"}`, false},
		{`{"ref":"refs/heads/feature"}`, false},
		{`{"ref":"refs/tags/v1.0.0"}`, false},
		{`{"ref":"refs/heads/` + e.agent.opts.Branch + `"}`, true},
		{`{}`, true},
	} {
		post(tc.body)
		if got := polled(e.agent); got != tc.poll {
			t.Errorf("hook %s: polled %v, want %v", tc.body, got, tc.poll)
		}
	}
	mfs, _ := e.agent.metrics.reg.Gather()
	outcomes := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_hooks_total" {
			for _, m := range mf.GetMetric() {
				outcomes[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if outcomes["ignored"] != 3 || outcomes["accepted"] != 2 {
		t.Errorf("sluice_hooks_total by outcome = %v, want 3 ignored, 2 accepted", outcomes)
	}
}

// TestQueuedHookHoldsNoPassBack: a hook that comes within the gap of the
// last poll a hook caused is queued for the gap's end, and a pass due
// meanwhile (a Deployment changed; a transition's next decision) is not
// held back behind it. The agent's own status pushes come back as hooks
// from some hosts, so a held pass stalled every rollout step by up to the
// gap.
func TestQueuedHookHoldsNoPassBack(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), func(o *Options) { o.Interval = time.Hour })
	e.agent.hookGap = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("first pass", 30*time.Second, e.agent.Ready)
	polls := func() float64 { return counterValue(t, e.agent, "sluice_git_polls_total") }
	before := polls()
	e.agent.Poll()
	waitFor("the first hook's poll", 3*time.Second, func() bool { return polls() == before+1 })
	e.agent.Poll() // within the gap: queued
	time.Sleep(200 * time.Millisecond)
	mark := e.agent.lastPass.Load()
	e.agent.markChanged("NAMESPACE/app", false)
	waitFor("a pass for the changed Deployment while a hook is queued", 2*time.Second, func() bool { return e.agent.lastPass.Load() > mark })
	if n := polls(); n != before+1 {
		t.Errorf("the queued hook polled before the gap's end: %v polls, want %v", n, before+1)
	}
	waitFor("the queued hook's poll at the gap's end", 8*time.Second, func() bool { return polls() == before+2 })
}
