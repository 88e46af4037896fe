package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// gated is the canary example with short pauses, no Prometheus, and the qa
// gate approved in advance for any revision given.
func gatedCanary(w *world) {
	w.t.Helper()
	rel := w.file("canary", "release.yaml")
	rel = strings.Replace(rel, "      - check: [success-rate]\n", "", 1)
	w.commit("canary", "no metric check for this story", map[string]string{"release.yaml": rel})
}

// Scenario 13 — two agents with leader election: the leader is killed, the
// follower takes over within the lease and finishes the canary.
func TestTwoAgentsLeaderElection(t *testing.T) {
	t.Parallel()
	w := newWorld(t, []string{"canary"}, "duration: 30s", "duration: 5s")
	gatedCanary(w)
	lease := w.leaseNamespace()
	ports, err := testcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	// Each agent signs its commits with its own author and serves its own
	// metrics, so the story can count who applied and who committed.
	listen := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	a1 := w.start("--leader-elect", "--leader-elect-namespace", lease, "--author", "agent-one <one@test>", "--listen", listen(0))
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	a2 := w.start("--leader-elect", "--leader-elect-namespace", lease, "--cache-dir", filepath.Join(t.TempDir(), "c2"),
		"--author", "agent-two <two@test>", "--listen", listen(1))
	leader, follower := a1, a2
	leaderName, followerName, followerListen := "agent-one", "agent-two", listen(1)
	if !a1.has("leading") {
		leader, follower = a2, a1
		leaderName, followerName, followerListen = "agent-two", "agent-one", listen(0)
	}
	rev := w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	w.waitStatus("canary", 60*time.Second, "canary paused", func(s v1alpha1.ReleaseStatus) bool {
		return s.Canary != nil && s.Canary.Revision == rev && s.Phase == v1alpha1.PhasePaused
	})
	// Until now only the leader applied and committed.
	authors := gitserver.Git(t, w.repo.Bare, "log", "--format=%an", "sluice/status")
	if strings.Contains(authors, followerName) || !strings.Contains(authors, leaderName) {
		t.Errorf("status commits by author before the kill:\n%s", authors)
	}
	if n := metricSum(t, followerListen, "sluice_apply_objects_total"); n != 0 {
		t.Errorf("the follower applied %v objects", n)
	}
	beforeKill := w.repo.Head(t, "sluice/status")
	leader.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	// Approve the gate; only the new leader can act on it.
	w.sluice("approve", w.ns+"/canary", "qa", "--push")
	waitFor(t, 40*time.Second, "the follower to lead", func() bool { return follower.has("\tleading") })
	t.Logf("follower leading %s after the leader was killed", time.Since(killed).Round(100*time.Millisecond))
	w.waitStatus("canary", 60*time.Second, "promoted by the new leader", phaseIs(v1alpha1.PhaseSucceeded))
	// After the kill, every status commit is the new leader's.
	after := gitserver.Git(t, w.repo.Bare, "log", "--format=%an", beforeKill+"..sluice/status")
	if after == "" || strings.Contains(after, leaderName) {
		t.Errorf("status commits by author after the kill:\n%s", after)
	}
	if n := metricSum(t, followerListen, "sluice_apply_objects_total"); n == 0 {
		t.Error("the new leader applied nothing")
	}
}

// metricSum adds up every sample of a counter an agent serves on addr.
func metricSum(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}

// Scenario 13b — with two replicas behind one Service, a push webhook can
// reach either: the follower forwards POST /hook to the leader (found from
// the Lease), which polls at once instead of at its minute's interval.
func TestHookReachesTheLeaderThroughAFollower(t *testing.T) {
	t.Parallel()
	w := newWorld(t, []string{"rolling"})
	lease := w.leaseNamespace()
	ports, err := testcluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	a1 := w.start("--leader-elect", "--leader-elect-namespace", lease, "--interval", "1m", "--listen", addr(0), "--advertise-address", addr(0))
	w.waitStatus("rolling", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	a2 := w.start("--leader-elect", "--leader-elect-namespace", lease, "--interval", "1m", "--listen", addr(1), "--advertise-address", addr(1),
		"--cache-dir", filepath.Join(t.TempDir(), "c2"))
	followerAddr := addr(1)
	if !a1.has("leading") {
		followerAddr = addr(0)
	}
	waitFor(t, 30*time.Second, "the follower to see the leader", func() bool { return a1.has("following") || a2.has("following") })
	rev := w.commit("rolling", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("rolling", "deployment.yaml"), "6.7.1")})
	resp, err := http.Post("http://"+followerAddr+"/hook", "application/json", strings.NewReader(`{"ref":"refs/heads/main"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /hook to the follower: %s", resp.Status)
	}
	// 15 s: well inside the minute between the leader's polls.
	w.waitStatus("rolling", 15*time.Second, "the bump rolled out long before the minute's poll", func(s v1alpha1.ReleaseStatus) bool {
		return s.Stable != nil && s.Stable.Revision == rev
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Scenario 9 — people racing the agent (status next to the spec): a loop
// pushes unrelated commits while a canary runs; every human commit stays,
// nothing is forced, the canary completes.
func TestHumansRacingTheAgent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, []string{"canary"}, "duration: 30s", "duration: 2s")
	gatedCanary(w)
	w.start("--status-branch", "main")
	status := func() v1alpha1.ReleaseStatus {
		out, err := gitserver.GitErr(w.repo.Bare, "show", "main:releases/"+w.ns+"/canary/status.yaml")
		var st v1alpha1.ReleaseStatus
		if err == nil {
			yamlUnmarshal(t, out, &st)
		}
		return st
	}
	waitFor(t, 60*time.Second, "install", func() bool { return status().Phase == v1alpha1.PhaseSucceeded })
	human := filepath.Join(t.TempDir(), "human")
	gitserver.Git(t, filepath.Dir(human), "clone", "-q", w.repo.Bare, "human")
	// push commits files in a clone and pushes, rebasing on rejection, as
	// people do; each person has a clone of their own.
	// It runs on the people's goroutine too, so it reports with t.Errorf
	// and returns: t.Fatal belongs to the test's own goroutine.
	pushFrom := func(clone string, files map[string]string, msg string) {
		for p, c := range files {
			full := filepath.Join(clone, p)
			if err := errors.Join(os.MkdirAll(filepath.Dir(full), 0o755), os.WriteFile(full, []byte(c), 0o644)); err != nil {
				t.Errorf("%s: %v", msg, err)
				return
			}
		}
		for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}} {
			if out, err := gitserver.GitErr(clone, args...); err != nil {
				t.Errorf("%s: git %v: %v %s", msg, args, err, out)
				return
			}
		}
		for attempt := 0; ; attempt++ {
			if _, err := gitserver.GitErr(clone, "push", "-q", "origin", "HEAD:main"); err == nil {
				return
			}
			if attempt == 30 {
				t.Errorf("%s: push rejected 30 times", msg)
				return
			}
			if out, err := gitserver.GitErr(clone, "pull", "-q", "--rebase", "origin", "main"); err != nil {
				t.Errorf("pull: %v %s", err, out)
				return
			}
		}
	}
	push := func(files map[string]string, msg string) { pushFrom(human, files, msg) }
	gitserver.Git(t, human, "pull", "-q", "--rebase", "origin", "main")
	dep, _ := gitserver.GitErr(human, "show", "HEAD:releases/"+w.ns+"/canary/deployment.yaml")
	push(map[string]string{"releases/" + w.ns + "/canary/deployment.yaml": bumpImage(dep, "6.7.1")}, "bump")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		n := 0
		for ctx.Err() == nil {
			push(map[string]string{fmt.Sprintf("docs/note-%d.md", n): "note\n"}, fmt.Sprintf("human %d", n))
			n++
			time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		}
		done <- n
	}()
	var mains []string
	waitFor(t, 90*time.Second, "the gate", func() bool {
		if h := w.repo.Head(t, "main"); h != "" {
			mains = append(mains, h)
		}
		st := status()
		return st.Canary != nil && st.Phase == v1alpha1.PhasePaused && strings.Contains(st.Message, "qa")
	})
	approver := filepath.Join(t.TempDir(), "approver")
	gitserver.Git(t, filepath.Dir(approver), "clone", "-q", w.repo.Bare, "approver")
	rel, _ := gitserver.GitErr(approver, "show", "HEAD:releases/"+w.ns+"/canary/release.yaml")
	// Approvals name the canary revision status.yaml gives (with people
	// pushing, it may be a later commit than the bump).
	canaryRev := status().Canary.Revision
	pushFrom(approver, map[string]string{"releases/" + w.ns + "/canary/release.yaml": rel + "\n  gates:\n    approved:\n    - {gate: qa, revision: " + canaryRev[:7] + "}\n"}, "approve qa")
	waitFor(t, 90*time.Second, "promotion", func() bool {
		if h := w.repo.Head(t, "main"); h != "" {
			mains = append(mains, h)
		}
		return status().Phase == v1alpha1.PhaseSucceeded && status().Stable.Revision != "" && status().Canary == nil && len(mains) > 0
	})
	cancel()
	n := <-done
	log := gitserver.Git(t, w.repo.Bare, "log", "--format=%s", "main")
	for i := range n {
		if !strings.Contains(log+"\n", fmt.Sprintf("human %d\n", i)) {
			t.Errorf("human commit %d is missing", i)
		}
	}
	for _, m := range mains {
		if _, err := gitserver.GitErr(w.repo.Bare, "merge-base", "--is-ancestor", m, "main"); err != nil {
			t.Fatalf("main was at %s, no longer an ancestor: something was forced", m)
		}
	}
	t.Logf("%d human commits raced %d agent commits", n, strings.Count(log, "sluice: "))
}

// SIGTERM — the pass in flight finishes: an agent told to stop while its
// pass waits on a slow check still folds the result, applies, and commits
// that pass's transition, then exits 0 without starting another pass.
func TestSIGTERMFinishesThePass(t *testing.T) {
	t.Parallel()
	var holding atomic.Bool
	hit, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if holding.Load() {
			select {
			case hit <- struct{}{}:
			default:
			}
			<-release
		}
	}))
	defer slow.Close()
	w := newWorld(t, []string{"canary"})
	w.commit("canary", "a canary with a slow check", map[string]string{"release.yaml": `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: ` + w.ns + `}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    canary:
      steps:
      - setWeight: 10
      - check: [slow]
      - setWeight: 30
      - pause: {gate: qa}
      - setWeight: 100
  checks:
  - name: slow
    webhook: {url: "` + slow.URL + `/slow", timeout: 30s}
`})
	a := w.start()
	w.waitStatus("canary", 60*time.Second, "installed", phaseIs(v1alpha1.PhaseSucceeded))
	holding.Store(true)
	w.commit("canary", "bump", map[string]string{"deployment.yaml": bumpImage(w.file("canary", "deployment.yaml"), "6.7.1")})
	select {
	case <-hit:
	case <-time.After(60 * time.Second):
		t.Fatal("the check step never called the webhook")
	}
	// The pass is waiting on the check: stop the agent, then let the
	// check answer.
	a.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(time.Second)
	close(release)
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the agent exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not exit after SIGTERM")
	}
	// Its status write landed (the check step passed) ...
	st := w.status("canary")
	if st.Step != 2 || st.Weight != 10 || !strings.Contains(st.Message, "checks passed") {
		t.Errorf("status after SIGTERM: step %d weight %d: %s", st.Step, st.Weight, st.Message)
	}
	// ... after its apply (a transition is logged only once both are done),
	// and no pass after it ran.
	if !a.has("checks passed") {
		t.Errorf("no transition logged for the pass in flight:\n%s", a.tail(20))
	}
	if a.has("setWeight 30") || w.weights("canary")["canary-canary"] != 10 {
		t.Errorf("a pass ran after SIGTERM: route %v", w.weights("canary"))
	}
}
