// Command demo is `make demo`: sluice's main job on an embedded local setup.
// In a private network namespace (nothing of the host's network changes)
// it starts a real control plane (kube-apiserver, etcd, controller-manager,
// scheduler, kwok) whose pods answer HTTP, Traefik serving the Gateway
// API, a Git repository seeded from examples/ served over smart HTTP on
// loopback, `sluice agent`, and a load generator sending 50 requests/s
// through the Gateway; then walks a canary through its steps, approves
// its gate with `sluice approve`, sees it promoted, and rolls back a
// second version that fails a third of its requests, stopped by a check
// on the errors its users really got. It prints a line per transition, the
// live split of the traffic, and ends with `sluice history` and
// `git log --oneline`.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/loadgen"
	"github.com/sluice-dev/sluice/internal/netns"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

const release = `# The demo's release: a canary walked through weighted steps, a smoke check
# served by the demo itself (the canary's error rate in the requests its
# load generator sent through the Gateway), and a manual "qa" gate approved
# by commit.
apiVersion: sluice.dev/v1alpha1
kind: Release
metadata:
  name: canary
  namespace: demo
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    # The track traffic has just left stays up this long: the data plane
    # applies route changes with a lag (Traefik: up to 2 s).
    scaleDownDelay: 10s
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 6s}
      - check: [smoke]
      - setWeight: 50
      - pause: {gate: qa}
      - setWeight: 100
  checks:
  - name: smoke
    webhook: {url: "SMOKE_URL", timeout: 5s}
    count: 2
    interval: 1s
`

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// host is the demo's users' Host header.
const host = "shop.example.com"

// badErrorRate is the share of requests the demo's bad version fails.
const badErrorRate = "0.3"

func main() {
	if !netns.Inside() {
		code, err := netns.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo failed:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, _ := os.Getwd()
	sluice := filepath.Join(root, "bin", "sluice")
	if _, err := os.Stat(sluice); err != nil {
		return fmt.Errorf("%s missing: run `make build`", sluice)
	}
	work, err := os.MkdirTemp("", "sluice-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	say("$ sluice validate examples/")
	out, err := exec.Command(sluice, "validate", filepath.Join(root, "examples")).CombinedOutput()
	fmt.Print(indent(string(out)))
	if err != nil {
		return fmt.Errorf("sluice validate examples/: %v", err)
	}
	say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and Traefik as its Gateway, in a private network namespace")
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	cluster, err := testcluster.StartTraffic(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer cluster.Stop()
	say("control plane and Gateway up in %s; pods answer on their IPs", cluster.StartupTime.Round(time.Millisecond))

	// Users: 50 requests/s through the Gateway, from the first install on.
	users := loadgen.New(loadgen.Config{URL: cluster.Gateway.URL + "/", Host: host, Rate: 50})
	tr := &traffic{users: users}

	// The smoke check: the canary's error rate in what users got over the
	// last 6 s; it fails above 5%, or when the canary answered too few
	// requests to tell.
	smoke, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(smoke, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, failed := tr.canaryErrors(6 * time.Second)
		if n < 10 || float64(failed) > 0.05*float64(n) {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprintf(w, "canary %s: %d of %d requests failed\n", tr.version(), failed, n)
	}))

	// The Git repository: a bare "remote" served over smart HTTP, and a clone.
	bare, clone := filepath.Join(work, "deploy.git"), filepath.Join(work, "deploy")
	if _, err := git(work, "init", "-q", "--bare", "-b", "main", bare); err != nil {
		return err
	}
	git(bare, "config", "http.receivepack", "true")
	if _, err := git(work, "clone", "-q", bare, clone); err != nil {
		return err
	}
	src := filepath.Join(root, "examples", "releases", "demo", "canary")
	dst := filepath.Join(clone, "releases", "demo", "canary")
	os.MkdirAll(dst, 0o755)
	for _, f := range []string{"kustomization.yaml", "deployment.yaml", "service.yaml", "route.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		os.WriteFile(filepath.Join(dst, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dst, "release.yaml"), []byte(strings.Replace(release, "SMOKE_URL", "http://"+smoke.Addr().String()+"/smoke", 1)), 0o644)
	git(clone, "add", "-A")
	git(clone, "commit", "-q", "-m", "add the canary release")
	if _, err := git(clone, "push", "-q", "origin", "main"); err != nil {
		return err
	}
	backend, err := gitserver.Backend(work)
	if err != nil {
		return err
	}
	gitL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(gitL, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "demo" || p != "demo-token" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	repoURL := "http://" + gitL.Addr().String() + "/deploy.git"
	pw := filepath.Join(work, "token")
	os.WriteFile(pw, []byte("demo-token"), 0o600)
	say("git repository served at %s (basic auth)", repoURL)

	// The agent, as a separate process, the way people run it; its
	// --listen serves the dashboard under /ui/.
	uiL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	listen := uiL.Addr().String()
	uiL.Close()
	agentLog, _ := os.Create(filepath.Join(work, "agent.log"))
	agent := exec.Command(sluice, "agent", "--repo", repoURL, "--git-username", "demo", "--git-password-file", pw,
		"--kubeconfig", cluster.Kubeconfig, "--interval", "1s", "--listen", listen,
		"--cache-dir", filepath.Join(work, "cache"), "--log-format", "json")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() {
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
	}()
	say("sluice agent started (pid %d)", agent.Process.Pid)
	say("dashboard: http://%s/ui/ (read-only, from Git; up while the demo runs)", listen)

	// Print the agent's transitions as they land on the status branch, and
	// what users get.
	w := &watcher{bare: bare}
	go w.follow(ctx)
	go tr.report(ctx, w)

	phase := func(want ...string) error { return w.waitPhase(ctx, 90*time.Second, want...) }
	if err := phase("Succeeded"); err != nil {
		return dump(err, agentLog.Name())
	}
	if err := served(ctx, cluster.Gateway.URL); err != nil {
		return err
	}
	go users.Run(ctx)
	say("first version installed and served; users send 50 requests/s through the Gateway; now a pull request bumps the image")
	// What a person watching sees, and what a CI pipeline waiting gets:
	// each from a clone of its own, as on separate machines.
	watch, err := cli(ctx, work, bare, "watch", sluice, "status", "demo/canary", "--watch", "--interval", "500ms")
	if err != nil {
		return err
	}
	bump := func(tag, msg, env string) (string, error) {
		b, _ := os.ReadFile(filepath.Join(dst, "deployment.yaml"))
		s := string(b)
		for _, old := range []string{"6.7.0", "6.7.1", "6.7.2"} {
			s = strings.ReplaceAll(s, "podinfo:"+old, "podinfo:"+tag)
		}
		if env != "" {
			s = strings.Replace(s, "        envFrom:", "        env: "+env+"\n        envFrom:", 1)
		}
		tr.rollingOut(tag)
		os.WriteFile(filepath.Join(dst, "deployment.yaml"), []byte(s), 0o644)
		git(clone, "commit", "-q", "-am", msg)
		if _, err := git(clone, "push", "-q", "origin", "main"); err != nil {
			return "", err
		}
		return git(clone, "rev-parse", "HEAD")
	}
	rev, err := bump("6.7.1", "bump podinfo to 6.7.1", "")
	if err != nil {
		return err
	}
	waitGood, err := cli(ctx, work, bare, "wait-good", sluice, "wait", "demo/canary", "--for=Succeeded", "--revision", rev, "--timeout", "3m")
	if err != nil {
		return err
	}
	if err := w.waitMessage(ctx, 90*time.Second, `gate "qa"`); err != nil {
		return dump(err, agentLog.Name())
	}
	say("$ sluice status demo/canary")
	out, _ = exec.Command(sluice, "status", "demo/canary", "-C", clone).CombinedOutput()
	fmt.Print(indent(string(out)))
	say("$ sluice approve demo/canary qa --push")
	out, err = exec.Command(sluice, "approve", "demo/canary", "qa", "--push", "-C", clone).CombinedOutput()
	fmt.Print(indent(string(out)))
	if err != nil {
		return fmt.Errorf("sluice approve: %v", err)
	}
	if err := phase("Succeeded"); err != nil {
		return dump(err, agentLog.Name())
	}
	say("$ sluice wait demo/canary --for=Succeeded --revision %s --timeout 3m   (started at the push)", rev[:7])
	fmt.Print(indent(waitGood.result()))
	say("$ sluice status demo/canary --watch   (from the first push to here)")
	fmt.Print(indent(watch.interrupt()))
	say("6.7.1 promoted; now 6.7.2, which fails %s of its requests (its canary starts once the canary track has drained)", badErrorRate)
	git(clone, "pull", "-q", "--rebase", "origin", "main")
	rev, err = bump("6.7.2", "bump podinfo to 6.7.2", `[{name: ERROR_RATE, value: "`+badErrorRate+`"}]`)
	if err != nil {
		return err
	}
	waitBad, err := cli(ctx, work, bare, "wait-bad", sluice, "wait", "demo/canary", "--for=Succeeded", "--revision", rev, "--timeout", "3m")
	if err != nil {
		return err
	}
	if err := phase("Aborted"); err != nil {
		return dump(err, agentLog.Name())
	}
	say("$ sluice wait demo/canary --for=Succeeded --revision %s --timeout 3m   (started at the push)", rev[:7])
	fmt.Print(indent(waitBad.result()))
	time.Sleep(4 * time.Second) // the data plane applies the abort's route
	n, failed := tr.versionErrors("6.7.2")
	say("6.7.2 aborted: traffic back on 6.7.1, the canary drained; 6.7.2 answered %d requests and failed %d of them (%.0f%%, its real error rate)",
		n, failed, 100*float64(failed)/float64(max(n, 1)))
	tr.summary()

	fmt.Println()
	say("$ sluice history demo/canary")
	out, _ = exec.Command(sluice, "history", "demo/canary", "-C", clone).CombinedOutput()
	fmt.Print(indent(string(out)))
	say("$ git log --oneline sluice/status")
	out, _ = exec.Command("git", "-C", bare, "log", "--oneline", "sluice/status").CombinedOutput()
	fmt.Print(indent(string(out)))
	say("$ git log --oneline main")
	out, _ = exec.Command("git", "-C", bare, "log", "--oneline", "main").CombinedOutput()
	fmt.Print(indent(string(out)))
	say("demo done in %s", time.Since(start).Round(time.Second))
	return nil
}

// background is a sluice command running beside the demo.
type background struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// cli starts sluice with args in a fresh clone of bare named name.
func cli(ctx context.Context, work, bare, name, sluice string, args ...string) (*background, error) {
	dir := filepath.Join(work, name)
	if _, err := git(work, "clone", "-q", bare, dir); err != nil {
		return nil, err
	}
	b := &background{cmd: exec.CommandContext(ctx, sluice, append(args, "-C", dir)...), done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	return b, nil
}

// result is what the command printed and its exit status, once it ended.
func (b *background) result() string {
	<-b.done
	return fmt.Sprintf("%s(exit status %d)", b.out.String(), b.cmd.ProcessState.ExitCode())
}

// interrupt stops a command that runs until interrupted (a --watch) and
// returns what it printed.
func (b *background) interrupt() string {
	b.cmd.Process.Signal(os.Interrupt)
	<-b.done
	return b.out.String()
}

// served waits until the Gateway answers 200 for the demo's host.
func served(ctx context.Context, gateway string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gateway+"/", nil)
		req.Host = host
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("the Gateway does not answer 200 for %s", host)
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("        " + l + "\n")
	}
	return b.String()
}

func dump(err error, logFile string) error {
	b, _ := os.ReadFile(logFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return fmt.Errorf("%w\nagent log (tail):\n%s", err, strings.Join(lines, "\n"))
}

// watcher follows the status branch of the bare repository.
type watcher struct {
	bare string
	mu   sync.Mutex
	last struct{ phase, message, weight string }
	seen int
}

func (w *watcher) follow(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := git(w.bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Release,valueonly,separator=)|%(trailers:key=Sluice-Phase,valueonly,separator=)|%(trailers:key=Sluice-Step,valueonly,separator=)|%(trailers:key=Sluice-Weight,valueonly,separator=)|%s", "sluice/status")
		if err == nil && out != "" {
			lines := strings.Split(out, "\n")
			w.mu.Lock()
			for _, l := range lines[w.seen:] {
				f := strings.SplitN(l, "|", 5)
				if len(f) == 5 {
					say("%-12s %-11s step %-2s weight %-3s  %s", f[0], f[1], f[2], f[3], strings.TrimPrefix(f[4], "sluice: "+f[0]+" "))
					w.last.phase, w.last.message, w.last.weight = f[1], f[4], f[3]
				}
			}
			w.seen = len(lines)
			w.mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *watcher) waitFor(ctx context.Context, timeout time.Duration, what string, ok func(phase, msg string) bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.mu.Lock()
		p, m := w.last.phase, w.last.message
		w.mu.Unlock()
		if ok(p, m) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
}

func (w *watcher) waitPhase(ctx context.Context, timeout time.Duration, want ...string) error {
	w.mu.Lock()
	w.last.phase = ""
	w.mu.Unlock()
	return w.waitFor(ctx, timeout, "phase "+strings.Join(want, "/"), func(p, _ string) bool {
		for _, x := range want {
			if p == x {
				return true
			}
		}
		return false
	})
}

func (w *watcher) waitMessage(ctx context.Context, timeout time.Duration, sub string) error {
	return w.waitFor(ctx, timeout, sub, func(_, m string) bool { return strings.Contains(m, sub) })
}
