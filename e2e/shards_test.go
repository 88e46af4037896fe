package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/shard"
)

// Scenario — a fleet split between replicas (--shards 3): three agent
// processes share 300 releases by their shard Leases; one is killed with
// SIGKILL in the middle of the install. Every release still converges,
// each release's status commits come from one owner at a time (the
// Sluice-Shard and Sluice-Owner trailers), the dead replica's shards are
// taken over within the lease duration, and no status commit any replica
// pushed is lost (every value the status branch ever had, from the Git
// server's reflog, is in its final history).
func TestShards(t *testing.T) {
	t.Parallel()
	const releases, shards = 300, 3
	w := newWorld(t, nil)
	files := map[string]string{}
	for i := range releases {
		for p, c := range shardApp(w.ns, fmt.Sprintf("app-%03d", i)) {
			files[p] = c
		}
	}
	w.repo.Commit(t, fmt.Sprintf("%d apps", releases), files)
	w.repo.Push(t)
	gitserver.Git(t, w.repo.Bare, "config", "core.logAllRefUpdates", "always")
	lease := w.leaseNamespace()

	started := time.Now()
	agents := make([]*agentProc, 3)
	for i := range agents {
		agents[i] = w.start("--shards", strconv.Itoa(shards), "--leader-elect-namespace", lease, "--interval", "1s",
			"--cache-dir", filepath.Join(t.TempDir(), fmt.Sprintf("c%d", i)), "--author", fmt.Sprintf("agent-%d <agent-%d@test>", i, i))
	}
	host, _ := os.Hostname()
	owner := func(a *agentProc) string { return fmt.Sprintf("%s_%d", host, a.cmd.Process.Pid) }
	victim := agents[0]

	// Killed once it has committed a few of its releases' transitions,
	// long before its shard is installed.
	waitFor(t, 3*time.Minute, "the first replica's first status commits", func() bool {
		out, _ := gitserver.GitErr(w.repo.Bare, "log", "--format=%(trailers:key=Sluice-Owner,valueonly,separator=)", "sluice/status")
		return strings.Count(out, owner(victim)+"\n") >= 5
	})
	victim.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	succeededBefore := w.succeeded()
	t.Logf("killed %s after %s with %d of %d releases Succeeded", owner(victim), killed.Sub(started).Round(100*time.Millisecond), succeededBefore, releases)
	if succeededBefore >= releases*9/10 {
		t.Fatalf("%d of %d releases were Succeeded before the kill: not mid-run", succeededBefore, releases)
	}

	waitFor(t, 5*time.Minute, "every release Succeeded", func() bool { return w.succeeded() == releases })
	converged := time.Since(started)
	deps, err := w.cs.AppsV1().Deployments(w.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	available := 0
	for _, d := range deps.Items {
		if d.Status.AvailableReplicas >= 1 {
			available++
		}
	}
	if available != releases {
		t.Errorf("%d of %d Deployments Available", available, releases)
	}

	// One owner at a time: per shard, each owner's commits form one run
	// in the branch's order (A A B B, never A B A), every commit names
	// the release's shard, and the victim's shards went on with another
	// owner after the kill.
	type commit struct {
		release, owner string
		shard          int
		at             time.Time
	}
	var log []commit
	for _, line := range strings.Split(gitserver.Git(t, w.repo.Bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Release,valueonly,separator=)|%(trailers:key=Sluice-Owner,valueonly,separator=)|%(trailers:key=Sluice-Shard,valueonly,separator=)|%ct", "sluice/status"), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 || f[0] == "" {
			continue
		}
		s, err := strconv.Atoi(f[2])
		if err != nil || f[1] == "" {
			t.Fatalf("a status commit without its shard and owner: %q", line)
		}
		if want := shard.Of(f[0], shards); s != want {
			t.Errorf("%s committed as shard %d, its shard is %d", f[0], s, want)
		}
		sec, _ := strconv.ParseInt(f[3], 10, 64)
		log = append(log, commit{release: f[0], owner: f[1], shard: s, at: time.Unix(sec, 0)})
	}
	runs := map[int][]string{}
	for _, c := range log {
		r := runs[c.shard]
		if len(r) == 0 || r[len(r)-1] != c.owner {
			for _, o := range r {
				if o == c.owner {
					t.Errorf("shard %d: %s's commits resumed after another owner's (owners in order: %v)", c.shard, c.owner, append(r, c.owner))
				}
			}
			runs[c.shard] = append(r, c.owner)
		}
	}
	var takeover time.Duration
	for s, r := range runs {
		for i, o := range r {
			if o == owner(victim) && i+1 < len(r) {
				for _, c := range log {
					if c.shard == s && c.owner == r[i+1] {
						if d := c.at.Sub(killed); takeover == 0 || d > takeover {
							takeover = d
						}
						break
					}
				}
			}
		}
	}
	if takeover == 0 {
		t.Errorf("no shard of the killed replica went on under another owner: %v", runs)
	}
	// Within the lease duration (15 s), a tick (2 s) and a pass, to the
	// second of the commit times.
	if takeover > 20*time.Second {
		t.Errorf("the killed replica's shards were taken over %s after the kill, want within the lease duration", takeover)
	}

	// Nothing lost: every head the status branch had is in its history.
	history := map[string]bool{}
	for _, h := range strings.Fields(gitserver.Git(t, w.repo.Bare, "rev-list", "sluice/status")) {
		history[h] = true
	}
	heads := strings.Fields(gitserver.Git(t, w.repo.Bare, "reflog", "show", "--format=%H", "refs/heads/sluice/status"))
	lost := 0
	for _, h := range heads {
		if !history[h] {
			lost++
		}
	}
	if lost > 0 || len(heads) < 10 {
		t.Errorf("%d of %d status heads lost from the branch's history", lost, len(heads))
	}
	t.Logf("shards: %d replicas, %d releases, one killed: all Succeeded in %s, takeover within %s, %d status commits in %d pushes, %d lost commits",
		len(agents), releases, converged.Round(100*time.Millisecond), takeover, len(log), len(heads), lost)
	for _, a := range agents {
		a.mu.Lock()
		for _, l := range a.lines {
			if strings.Contains(l, "shard") && !strings.Contains(l, "\"release\"") {
				t.Logf("%s: %s", owner(a), l)
			}
		}
		a.mu.Unlock()
	}
	for _, a := range agents[1:] {
		if !a.has("shard acquired") {
			t.Errorf("replica %s never acquired a shard", owner(a))
		}
	}
}

// succeeded counts the world's releases whose status says Succeeded.
func (w *world) succeeded() int {
	out, _ := gitserver.GitErr(w.repo.Bare, "grep", "-l", "^phase: Succeeded$", "sluice/status", "--", "releases/"+w.ns)
	return len(strings.Fields(out))
}

// shardApp is one small release: a Deployment and a Service, rolled out
// in place.
func shardApp(ns, app string) map[string]string {
	dir := "releases/" + ns + "/" + app + "/"
	return map[string]string{
		dir + "release.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  workload: {kind: Deployment, name: %[1]s}
  strategy:
    rolling: {maxSurge: 1, maxUnavailable: 0}
`, app, ns),
		dir + "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- app.yaml\n",
		dir + "app.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: app
        image: ghcr.io/sluice-dev/podinfo:6.7.0
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - {name: http, port: 80}
`, app),
	}
}
