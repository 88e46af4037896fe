package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/internal/gitserver"
)

// agentRepo serves the rolling example (namespace ns) over HTTP.
func agentRepo(t *testing.T, ns string) (*gitserver.Repo, []string) {
	t.Helper()
	files := map[string]string{}
	dir := "../../examples/releases/demo/rolling"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		files["releases/"+ns+"/rolling/"+e.Name()] = strings.ReplaceAll(string(b), "namespace: demo", "namespace: "+ns)
	}
	root := t.TempDir()
	repo := gitserver.NewRepo(t, root, "deploy", files)
	srv := gitserver.StartHTTP(t, root, "bot", "bot-pass")
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("bot-pass"), 0o600)
	c := startCluster(t)
	return repo, []string{"agent", "--repo", srv.RepoURL(repo.Name), "--git-username", "bot", "--git-password-file", pw,
		"--kubeconfig", c.Kubeconfig, "--interval", "500ms", "--cache-dir", filepath.Join(t.TempDir(), "cache"), "--listen", ""}
}

func TestAgentOnce(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	repo, args := agentRepo(t, ns)
	out, errs, code := run(t, ".", append(args, "--once")...)
	if code != 0 || !strings.Contains(out, ns+"/rolling\tProgressing") {
		t.Fatalf("first --once: exit %d\n%s%s", code, out, errs)
	}
	if _, err := c.WaitAvailable(context.Background(), c.Clientset(t), ns, "rolling", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out, errs, code = run(t, ".", append(args, "--once")...)
	if code != 0 || !strings.Contains(out, ns+"/rolling\tSucceeded") {
		t.Fatalf("second --once: exit %d\n%s%s", code, out, errs)
	}
	// Environment variables stand in for flags.
	cmd := exec.Command(sluiceBin, "agent", "--once")
	cmd.Env = append(os.Environ(), "SLUICE_REPO="+args[2], "SLUICE_GIT_USERNAME=bot", "SLUICE_GIT_PASSWORD_FILE="+args[6],
		"SLUICE_KUBECONFIG="+c.Kubeconfig, "SLUICE_CACHE_DIR="+filepath.Join(t.TempDir(), "c2"))
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "Succeeded") {
		t.Errorf("agent from SLUICE_* variables: %v\n%s", err, b)
	}
	// A broken spec: exit 1, the error committed with file and line, and
	// the Deployment keeps serving.
	repo.Commit(t, "break it", map[string]string{"releases/" + ns + "/rolling/release.yaml": "apiVersion: sluice.dev/v1alpha1\nkind: Release\nmetadata: {name: rolling, namespace: " + ns + "}\nspec:\n  workload: {kind: Deployment, name: rolling}\n  strategy:\n    rolling: {maxSurge: lots}\n"})
	repo.Push(t)
	_, _, code = run(t, ".", append(args, "--once")...)
	if code != 1 {
		t.Errorf("--once with an invalid release: exit %d, want 1", code)
	}
	st := gitserver.Git(t, repo.Bare, "show", "sluice/status:releases/"+ns+"/rolling/status.yaml")
	if !strings.Contains(st, "file: releases/"+ns+"/rolling/release.yaml") || !strings.Contains(st, "line: 7") || !strings.Contains(st, "phase: Failed") {
		t.Errorf("status after a broken spec:\n%s", st)
	}
	if _, err := c.Clientset(t).AppsV1().Deployments(ns).Get(context.Background(), "rolling", metav1.GetOptions{}); err != nil {
		t.Errorf("the last good version stopped serving: %v", err)
	}
}

// lineWatcher collects a process's output lines.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
}

func (w *lineWatcher) follow(r *bufio.Scanner) {
	for r.Scan() {
		w.mu.Lock()
		w.lines = append(w.lines, r.Text())
		w.mu.Unlock()
	}
}

func (w *lineWatcher) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func startAgent(t *testing.T, args []string) (*exec.Cmd, *lineWatcher) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	w := &lineWatcher{}
	go w.follow(bufio.NewScanner(pr))
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, w
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLeaderElection: two agents; one leads, the other follows; the leader
// is killed and the follower takes over within the lease duration.
func TestLeaderElection(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	_, args := agentRepo(t, ns)
	leaseNS := c.Namespace(t)
	args = append(args, "--leader-elect", "--leader-elect-namespace", leaseNS, "--log-format", "console")
	a1, w1 := startAgent(t, args)
	waitFor(t, 30*time.Second, "a leader", func() bool { return w1.has("leading") })
	_, w2 := startAgent(t, append(append([]string{}, args...), "--cache-dir", filepath.Join(t.TempDir(), "c2")))
	waitFor(t, 30*time.Second, "the second agent to follow", func() bool { return w2.has("following") })
	if w2.has("\tleading") {
		t.Fatal("two leaders")
	}
	a1.Process.Signal(syscall.SIGKILL)
	took := waitFor(t, 40*time.Second, "the follower to take over", func() bool { return w2.has("\tleading") })
	t.Logf("follower took over %s after the leader was killed", took.Round(100*time.Millisecond))
	if took > 25*time.Second {
		t.Errorf("takeover took %s, over the 15s lease plus the 2s retry", took)
	}
}

// TestSIGTERM: the agent exits cleanly on SIGTERM.
func TestSIGTERM(t *testing.T) {
	c := startCluster(t)
	ns := c.Namespace(t)
	_, args := agentRepo(t, ns)
	cmd, w := startAgent(t, append(args, "--log-format", "console"))
	waitFor(t, 30*time.Second, "the agent's first transition", func() bool { return w.has("transition") })
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not exit within 20s of SIGTERM")
	}
}

func TestLeaderIdentityCarriesTheAddress(t *testing.T) {
	id := leaderIdentity("sluice-7d9f", 1, "10.0.0.7:8080")
	if id != "sluice-7d9f_1@10.0.0.7:8080" || leaderAddress(id) != "10.0.0.7:8080" {
		t.Errorf("identity %q, address %q", id, leaderAddress(id))
	}
	if leaderAddress(leaderIdentity("h", 2, "")) != "" {
		t.Error("an identity without an address gave one")
	}
}

// TestAgentOnceNoCluster: with no API server to reach, agent --once says
// so in one line (ISO 8601 time, no stack trace) and exits 1.
func TestAgentOnceNoCluster(t *testing.T) {
	_, args := agentRepo(t, "shop")
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: x}}]\ncurrent-context: c\n"), 0o600)
	for i, a := range args {
		if a == "--kubeconfig" {
			args[i+1] = kc
		}
	}
	out, errs, code := run(t, ".", append(args, "--once")...)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Contains(errs, "stacktrace") || strings.Contains(errs, "goroutine ") {
		t.Errorf("a stack trace for an expected error:\n%s", errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "cannot reach the cluster") || !strings.Contains(lines[0], `"ts":"20`) {
		t.Errorf("want one line saying the cluster cannot be reached, got %d:\n%s", len(lines), errs)
	}
}
