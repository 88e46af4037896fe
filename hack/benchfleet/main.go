// Command benchfleet is `make bench-fleet`: sluice and Flux keeping a fleet
// of N apps applied, side by side on one real control plane and one
// smart-HTTP Git server. Each app is a Deployment, a Service and an
// HTTPRoute under apps/app-NNN; sluice reads releases/fleet-sluice/app-NNN
// (a rolling release whose kustomization points at apps/app-NNN), Flux gets
// a Kustomization per app on the same paths. Each tool runs in turn, in its
// own namespace: cold start, push→applied, an idle minute, peak RSS and the
// API server's request count. It prints a table and one summary line, and
// writes the table into docs/benchmarks.md.
//
// Environment: N (apps, default 100), TOOLS (default "sluice,flux"),
// PUSHES (push→applied samples per tool, default 3), IDLE (default 60s),
// FLUX_INTERVAL (GitRepository interval, default 10s), FLUX_BIN (directory of
// the Flux controllers and crds.yaml), DOC (default docs/benchmarks.md),
// FLOOR=0 (skip the control plane's floor), CONCURRENCY (sluice's
// --concurrency), AGENT_ARGS (more agent flags), LOG_LEVEL (the agent's), PROFILE=dir (the agent's CPU
// profiles of its cold start and idle minute, and heap, into dir), SHARDS
// (run that many sluice replicas with --shards; Flux is left out).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/benchkit"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

type config struct {
	n            int
	tools        []string
	pushes       int
	idle         time.Duration
	fluxInterval time.Duration
	fluxBin      string
	doc          string
	root         string
	// shards, when above 0, runs that many sluice replicas with --shards.
	shards int
}

// result is one tool's measurements.
type result struct {
	tool       string
	cold       time.Duration
	push       []time.Duration
	idleCPU    float64
	rss        float64
	reqCold    float64
	reqIdle    float64
	gitReqIdle int64
	// topCold lists the most frequent API requests (all clients) of the
	// cold start.
	topCold []string
	// rssEach is each replica's peak RSS (MiB) under SHARDS; lost counts
	// status branch heads missing from its final history.
	rssEach []float64
	lost    int
}

func (r *result) pushMedian() time.Duration {
	var v []float64
	for _, d := range r.push {
		v = append(v, d.Seconds())
	}
	return time.Duration(benchkit.Median(v) * float64(time.Second))
}

var say = benchkit.Say

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-fleet failed:", err)
		os.Exit(1)
	}
}

var env = benchkit.Env

func loadConfig() (config, error) {
	root, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	c := config{root: root, doc: env("DOC", filepath.Join(root, "docs", "benchmarks.md"))}
	var err error
	if c.n, err = strconv.Atoi(env("N", "100")); err != nil || c.n < 1 {
		return c, fmt.Errorf("N=%q: want a positive number", os.Getenv("N"))
	}
	if c.pushes, err = strconv.Atoi(env("PUSHES", "3")); err != nil || c.pushes < 1 {
		return c, fmt.Errorf("PUSHES=%q: want a positive number", os.Getenv("PUSHES"))
	}
	if c.idle, err = time.ParseDuration(env("IDLE", "60s")); err != nil {
		return c, fmt.Errorf("IDLE: %w", err)
	}
	if c.fluxInterval, err = time.ParseDuration(env("FLUX_INTERVAL", "10s")); err != nil {
		return c, fmt.Errorf("FLUX_INTERVAL: %w", err)
	}
	if c.shards, err = strconv.Atoi(env("SHARDS", "0")); err != nil || c.shards < 0 {
		return c, fmt.Errorf("SHARDS=%q: want a number", os.Getenv("SHARDS"))
	}
	c.fluxBin = env("FLUX_BIN", filepath.Join(home, ".cache", "sluice", "testbin", "flux-v1.9.6"))
	for _, t := range strings.Split(env("TOOLS", "sluice,flux"), ",") {
		if t = strings.TrimSpace(t); t != "sluice" && t != "flux" {
			return c, fmt.Errorf("TOOLS: unknown tool %q (want sluice, flux)", t)
		}
		if t == "flux" && c.shards > 0 {
			continue // SHARDS compares sluice's replicas, not the tools
		}
		c.tools = append(c.tools, strings.TrimSpace(t))
	}
	return c, nil
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "sluice-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	cluster, cs, dyn, err := benchkit.StartCluster(ctx)
	if err != nil {
		return err
	}
	defer cluster.Stop()

	say("generating a repository of %d apps", cfg.n)
	repo, err := newRepo(work, cfg.n)
	if err != nil {
		return err
	}
	defer repo.server.Close()

	// The control plane's own traffic (leases, node heartbeats) with no
	// tool running, to tell it apart from the tools'.
	time.Sleep(3 * time.Second)
	base0, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Second)
	base1, _ := benchkit.APIRequests(ctx, cs)
	baseRate := (base1 - base0) / 20 // requests per second
	say("control plane alone: %.0f API requests/min", baseRate*60)

	var floor time.Duration
	if env("FLOOR", "1") != "0" {
		if floor, err = benchFloor(ctx, cfg, cluster, cs, repo); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	var results []*result
	for _, tool := range cfg.tools {
		var r *result
		switch tool {
		case "sluice":
			r, err = benchSluice(ctx, cfg, cluster, cs, dyn, repo)
		case "flux":
			r, err = benchFlux(ctx, cfg, cluster, cs, dyn, repo)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tool, err)
		}
		results = append(results, r)
	}
	return report(cfg, results, baseRate, floor)
}

// benchFloor is the control plane's own pace: every app's objects applied
// one after the other from files already rendered (as one `kubectl apply
// --server-side` does), until every Deployment is Available.
func benchFloor(ctx context.Context, cfg config, cluster *testcluster.Cluster, cs kubernetes.Interface, repo *repo) (time.Duration, error) {
	const ns = "fleet-floor"
	if err := benchkit.EnsureNamespace(ctx, cs, ns); err != nil {
		return 0, err
	}
	var all []byte
	for i := range cfg.n {
		app := fmt.Sprintf("app-%03d", i)
		for _, f := range []string{"deployment.yaml", "service.yaml", "route.yaml"} {
			b, err := os.ReadFile(filepath.Join(repo.clone, "apps", app, f))
			if err != nil {
				return 0, err
			}
			all = append(append(all, "---\n"...), strings.Replace(string(b), "metadata:\n", "metadata:\n  namespace: "+ns+"\n", 1)...)
		}
	}
	deps, err := benchkit.WatchDeployments(ctx, cs, ns)
	if err != nil {
		return 0, err
	}
	defer deps.Close()
	started := time.Now()
	if err := testcluster.ApplyYAML(ctx, cluster.Config, all); err != nil {
		return 0, err
	}
	at, err := deps.Until(ctx, func(ds []*appsv1.Deployment) bool {
		n := 0
		for _, d := range ds {
			if benchkit.Available(d) {
				n++
			}
		}
		return n >= cfg.n
	})
	if err != nil {
		return 0, err
	}
	say("floor: %d apps applied by one server-side apply client, all Available in %.1fs", cfg.n, at.Sub(started).Seconds())
	// The floor's objects go before the tools start, so their clean-up
	// does not load the control plane during a tool's run.
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("namespace %s not gone after 10 minutes", ns)
		}
		time.Sleep(time.Second)
	}
	say("floor: namespace %s deleted", ns)
	return at.Sub(started), nil
}

// repo is the fleet's Git repository: a bare one served over HTTP and a
// clone people push from.
type repo struct {
	bare   string
	server *benchkit.GitServer
	url    string
	clone  string
	pushes int
}

func newRepo(work string, n int) (*repo, error) {
	root := filepath.Join(work, "git")
	bare, clone := filepath.Join(root, "fleet.git"), filepath.Join(work, "clone")
	if _, err := gitserver.GitErr(work, "init", "-q", "--bare", "-b", "main", bare); err != nil {
		return nil, err
	}
	if _, err := gitserver.GitErr(work, "clone", "-q", bare, clone); err != nil {
		return nil, err
	}
	gitserver.GitErr(clone, "checkout", "-q", "-b", "main")
	files := map[string]string{}
	for i := range n {
		app := fmt.Sprintf("app-%03d", i)
		for p, c := range appFiles(app) {
			files[p] = c
		}
	}
	if err := benchkit.WriteFiles(clone, files); err != nil {
		return nil, err
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", fmt.Sprintf("%d apps", n)}, {"push", "-q", "origin", "main"}} {
		if _, err := gitserver.GitErr(clone, args...); err != nil {
			return nil, err
		}
	}
	srv, err := benchkit.StartGit(root)
	if err != nil {
		return nil, err
	}
	// People push over HTTP, as to any Git host.
	if _, err := gitserver.GitErr(clone, "remote", "set-url", "origin", srv.URL+"/fleet.git"); err != nil {
		return nil, err
	}
	return &repo{bare: bare, server: srv, url: srv.URL + "/fleet.git", clone: clone}, nil
}

// appFiles lays out one app for both tools: the manifests under apps/, a
// sluice release pointing at them under releases/fleet-sluice/.
func appFiles(app string) map[string]string {
	return map[string]string{
		"apps/" + app + "/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- service.yaml\n- route.yaml\n",
		"apps/" + app + "/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
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
        ports:
        - {name: http, containerPort: 9898}
`, app),
		"apps/" + app + "/service.yaml": fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - {name: http, port: 80, targetPort: http}
`, app),
		"apps/" + app + "/route.yaml": fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %[1]s
spec:
  parentRefs:
  - {name: public, namespace: gateway-system}
  hostnames: [%[1]s.example.com]
  rules:
  - backendRefs:
    - {name: %[1]s, port: 80}
`, app),
		"releases/fleet-sluice/" + app + "/kustomization.yaml": fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: fleet-sluice\nresources:\n- ../../../apps/%s\n", app),
		"releases/fleet-sluice/" + app + "/release.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Release
metadata:
  name: %[1]s
  namespace: fleet-sluice
spec:
  workload: {kind: Deployment, name: %[1]s}
  strategy:
    rolling: {maxSurge: 1, maxUnavailable: 0}
`, app),
	}
}

// push changes one app's image tag and pushes; it returns the new image.
func (r *repo) push(app string) (string, error) {
	r.pushes++
	p := filepath.Join(r.clone, "apps", app, "deployment.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	lines := strings.Split(string(b), "\n")
	image := fmt.Sprintf("ghcr.io/sluice-dev/podinfo:6.7.%d", r.pushes)
	for i, l := range lines {
		if strings.Contains(l, "image:") {
			lines[i] = "        image: " + image
		}
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{{"commit", "-q", "-am", app + ": " + image}, {"push", "-q", "origin", "main"}} {
		if _, err := gitserver.GitErr(r.clone, args...); err != nil {
			return "", err
		}
	}
	return image, nil
}

// fleetReady waits until all n apps' Deployments are Available and their
// Services and HTTPRoutes exist.
func fleetReady(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, deps *benchkit.Deployments, ns string, n int) (time.Time, error) {
	at, err := deps.Until(ctx, func(ds []*appsv1.Deployment) bool {
		ready := 0
		for _, d := range ds {
			if benchkit.Available(d) {
				ready++
			}
		}
		return ready >= n
	})
	if err != nil {
		return at, err
	}
	// A tool applies an app's three objects together; checked once here.
	svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return at, err
	}
	routes, err := dyn.Resource(httpRoutes).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return at, err
	}
	if len(svcs.Items) < n || len(routes.Items) < n {
		return at, fmt.Errorf("%s: %d Deployments Available but %d Services and %d HTTPRoutes", ns, n, len(svcs.Items), len(routes.Items))
	}
	return at, nil
}

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// measure runs the parts every tool shares once its processes are up: cold
// start, pushes, the idle minute and RSS. started is when the tool's clock
// starts; settle waits until the tool is done with a push.
func measure(ctx context.Context, cfg config, cs kubernetes.Interface, dyn dynamic.Interface, repo *repo, r *result, procs benchkit.Procs,
	ns string, started time.Time, req0 float64, pushes int, coldLimit time.Duration, settle func(context.Context) error, onIdle func()) error {
	by0, _ := benchkit.APIRequestsBy(ctx, cs)
	deps, err := benchkit.WatchDeployments(ctx, cs, ns)
	if err != nil {
		return err
	}
	defer deps.Close()
	cctx, cancel := context.WithTimeout(ctx, coldLimit)
	at, err := fleetReady(cctx, cs, dyn, deps, ns, cfg.n)
	cancel()
	if err != nil {
		ready := 0
		deps.Until(ctx, func(ds []*appsv1.Deployment) bool {
			for _, d := range ds {
				if benchkit.Available(d) {
					ready++
				}
			}
			return true
		})
		return fmt.Errorf("cold start, %s after the start, %d of %d Deployments Available: %w", time.Since(started).Round(time.Second), ready, cfg.n, err)
	}
	r.cold = at.Sub(started)
	req1, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return err
	}
	r.reqCold = req1 - req0
	if by1, err := benchkit.APIRequestsBy(ctx, cs); err == nil {
		r.topCold = benchkit.TopDelta(by0, by1, 8)
	}
	say("%s cold: %d apps Available in %.1fs, %.0f API requests (most: %s)", r.tool, cfg.n, r.cold.Seconds(), r.reqCold, strings.Join(r.topCold, ", "))
	if r.tool == "sluice" && coldHeap != nil {
		coldHeap()
	}
	if err := settle(ctx); err != nil {
		return err
	}

	for i := range pushes {
		app := fmt.Sprintf("app-%03d", (cfg.n/2+i*7)%cfg.n)
		image, err := repo.push(app)
		if err != nil {
			return err
		}
		pushed := time.Now()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		at, err := deps.Until(pctx, func([]*appsv1.Deployment) bool { return benchkit.Image(deps.Get(app)) == image })
		cancel()
		if err != nil {
			return fmt.Errorf("push %s: %w", image, err)
		}
		r.push = append(r.push, at.Sub(pushed))
		say("%s push->applied: %s %s in %.2fs", r.tool, app, image, at.Sub(pushed).Seconds())
		if err := settle(ctx); err != nil {
			return err
		}
	}

	say("%s idle: measuring %s with nothing changing", r.tool, cfg.idle)
	cpu0, git0 := procs.CPU(), repo.server.Requests.Load()
	idle0, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return err
	}
	if onIdle != nil {
		go onIdle()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.idle):
	}
	idle1, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return err
	}
	scale := 60 / cfg.idle.Seconds()
	r.idleCPU = (procs.CPU() - cpu0) * scale
	r.reqIdle = (idle1 - idle0) * scale
	r.gitReqIdle = int64(float64(repo.server.Requests.Load()-git0) * scale)
	r.rss = procs.PeakRSS()
	say("%s idle: %.2f CPU s/60s, %.0f API requests/min, %d Git requests/min; peak RSS %.0f MiB", r.tool, r.idleCPU, r.reqIdle, r.gitReqIdle, r.rss)
	return nil
}

func benchSluice(ctx context.Context, cfg config, cluster *testcluster.Cluster, cs kubernetes.Interface, dyn dynamic.Interface, repo *repo) (*result, error) {
	const ns = "fleet-sluice"
	bin := filepath.Join(cfg.root, "bin", "sluice")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s missing: run `make build`", bin)
	}
	if err := benchkit.EnsureNamespace(ctx, cs, ns); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-fleet-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf, err := os.Create(filepath.Join(os.TempDir(), "sluice-bench-fleet-agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r := &result{tool: "sluice"}
	req0, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return nil, err
	}
	say("sluice: starting `sluice agent --interval 1s` (log: %s)", logf.Name())
	args := []string{"agent", "--repo", repo.url, "--interval", "1s",
		"--kubeconfig", cluster.Kubeconfig, "--namespaces", ns, "--listen", "",
		"--cache-dir", filepath.Join(dir, "repo"), "--log-format", "console", "--log-level", env("LOG_LEVEL", "warn")}
	if c := os.Getenv("CONCURRENCY"); c != "" {
		args = append(args, "--concurrency", c)
	}
	// AGENT_ARGS: more flags for the agent (experiments).
	args = append(args, strings.Fields(os.Getenv("AGENT_ARGS"))...)
	// PROFILE=dir: profile the agent's idle minute (CPU and heap) into dir.
	var onIdle func()
	if profDir := os.Getenv("PROFILE"); profDir != "" {
		ports, err := testcluster.FreePorts(1)
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		args = append(args, "--pprof", "--pprof-listen", addr)
		onIdle = func() {
			os.MkdirAll(profDir, 0o755)
			for _, p := range []struct{ file, path string }{
				{"cpu.pprof", fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(cfg.idle.Seconds())-2)},
				{"heap.pprof", "/debug/pprof/heap"},
			} {
				resp, err := http.Get("http://" + addr + p.path)
				if err != nil {
					say("profile: %v", err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				os.WriteFile(filepath.Join(profDir, p.file), b, 0o644)
			}
			say("profiles of the idle agent in %s (go tool pprof -top bin/sluice %s/cpu.pprof)", profDir, profDir)
		}
	}
	replicas := max(cfg.shards, 1)
	if cfg.shards > 0 {
		// Every value the status branch takes is logged, to find any
		// lost push at the end.
		if _, err := gitserver.GitErr(repo.bare, "config", "core.logAllRefUpdates", "always"); err != nil {
			return nil, err
		}
		if err := benchkit.EnsureNamespace(ctx, cs, "sluice-system"); err != nil {
			return nil, err
		}
	}
	var procs benchkit.Procs
	for i := range replicas {
		a := args
		if cfg.shards > 0 {
			a = append(append([]string(nil), args...), "--shards", strconv.Itoa(cfg.shards), "--leader-elect-namespace", "sluice-system",
				"--cache-dir", filepath.Join(dir, fmt.Sprintf("repo-%d", i)))
		}
		cmd := exec.Command(bin, a...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if i == 0 && onIdle != nil {
			startColdProfile(args[len(args)-1]) // --pprof-listen's
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	started := time.Now()
	defer procs.Stop()
	// Settled: the agent has committed its last transition (a rolling
	// release is Succeeded once its Deployment is Available) and the
	// status branch has not moved for 3 s.
	settle := func(ctx context.Context) error { return statusQuiet(ctx, repo, 3*time.Second) }
	if err := measure(ctx, cfg, cs, dyn, repo, r, procs, ns, started, req0, cfg.pushes, 10*time.Minute, settle, onIdle); err != nil {
		return nil, err
	}
	if cfg.shards > 0 {
		for _, p := range procs {
			v, _ := benchkit.PeakRSS(p.Process.Pid)
			r.rssEach = append(r.rssEach, float64(v)/(1<<20))
		}
		history := map[string]bool{}
		out, err := gitserver.GitErr(repo.bare, "rev-list", "sluice/status")
		if err != nil {
			return nil, err
		}
		for _, h := range strings.Fields(out) {
			history[h] = true
		}
		heads, err := gitserver.GitErr(repo.bare, "reflog", "show", "--format=%H", "refs/heads/sluice/status")
		if err != nil {
			return nil, err
		}
		for _, h := range strings.Fields(heads) {
			if !history[h] {
				r.lost++
			}
		}
		say("sluice shards=%d: %d status heads, %d lost from the final history", cfg.shards, len(strings.Fields(heads)), r.lost)
	}
	return r, nil
}

// coldHeap, under PROFILE, saves the agent's heap as the cold start ends.
var coldHeap func()

// startColdProfile saves the agent's CPU profile of its first 15 s (the
// cold start) into $PROFILE, from its --pprof-listen address, and has
// coldHeap save its heap at the end of the cold start.
func startColdProfile(addr string) {
	coldHeap = func() {
		resp, err := http.Get("http://" + addr + "/debug/pprof/heap")
		if err != nil {
			say("profile: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.WriteFile(filepath.Join(os.Getenv("PROFILE"), "cold-heap.pprof"), b, 0o644)
	}
	go func() {
		for i := 0; i < 100; i++ {
			resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=15")
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.MkdirAll(os.Getenv("PROFILE"), 0o755)
			os.WriteFile(filepath.Join(os.Getenv("PROFILE"), "cold-cpu.pprof"), b, 0o644)
			return
		}
	}()
}

// statusQuiet waits until the status branch has not moved for quiet.
func statusQuiet(ctx context.Context, repo *repo, quiet time.Duration) error {
	last, since := "", time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		head, _ := gitserver.GitErr(repo.clone, "ls-remote", "origin", "refs/heads/sluice/status")
		if head != last {
			last, since = head, time.Now()
		} else if head != "" && time.Since(since) >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the status branch kept moving for 5 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

var (
	gitRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	kustomizations  = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
)

func benchFlux(ctx context.Context, cfg config, cluster *testcluster.Cluster, cs kubernetes.Interface, dyn dynamic.Interface, repo *repo) (*result, error) {
	const ns, fluxNS = "fleet-flux", "flux-system"
	for _, f := range []string{"source-controller", "kustomize-controller", "crds.yaml"} {
		if _, err := os.Stat(filepath.Join(cfg.fluxBin, f)); err != nil {
			return nil, fmt.Errorf("%s missing: run ./hack/testbin-flux.sh", filepath.Join(cfg.fluxBin, f))
		}
	}
	for _, n := range []string{ns, fluxNS} {
		if err := benchkit.EnsureNamespace(ctx, cs, n); err != nil {
			return nil, err
		}
	}
	crds, err := os.ReadFile(filepath.Join(cfg.fluxBin, "crds.yaml"))
	if err != nil {
		return nil, err
	}
	if err := testcluster.ApplyYAML(ctx, cluster.Config, crds); err != nil {
		return nil, fmt.Errorf("flux CRDs: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-fleet-flux-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ports, err := testcluster.FreePorts(5)
	if err != nil {
		return nil, err
	}
	storage := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(os.TempDir(), "sluice-bench-fleet-flux.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	start := func(name string, args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(filepath.Join(cfg.fluxBin, name), args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "RUNTIME_NAMESPACE="+fluxNS)
		cmd.Stdout, cmd.Stderr = logf, logf
		return cmd, cmd.Start()
	}
	say("flux: starting source-controller and kustomize-controller v1.9.6 (log: %s)", logf.Name())
	src, err := start("source-controller", "--storage-path", filepath.Join(dir, "storage"),
		"--storage-addr", storage, "--storage-adv-addr", storage,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--health-addr", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--enable-leader-election=false", "--log-level", "error")
	if err != nil {
		return nil, err
	}
	procs := benchkit.Procs{src}
	defer func() { procs.Stop() }()
	kus, err := start("kustomize-controller",
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[3]), "--health-addr", fmt.Sprintf("127.0.0.1:%d", ports[4]),
		"--enable-leader-election=false", "--log-level", "error")
	if err != nil {
		return nil, err
	}
	procs = append(procs, kus)
	for _, p := range []int{ports[2], ports[4]} {
		if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", p), time.Minute); err != nil {
			return nil, err
		}
	}

	r := &result{tool: "flux"}
	req0, err := benchkit.APIRequests(ctx, cs)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	gr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": "fleet", "namespace": fluxNS},
		"spec": map[string]any{"interval": cfg.fluxInterval.String(), "url": repo.url,
			"ref": map[string]any{"branch": "main"}},
	}}
	if _, err := dyn.Resource(gitRepositories).Namespace(fluxNS).Create(ctx, gr, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	for i := range cfg.n {
		app := fmt.Sprintf("app-%03d", i)
		k := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
			"metadata": map[string]any{"name": app, "namespace": fluxNS},
			"spec": map[string]any{"interval": "10m", "path": "./apps/" + app, "prune": true,
				"targetNamespace": ns,
				"sourceRef":       map[string]any{"kind": "GitRepository", "name": "fleet"}},
		}}
		if _, err := dyn.Resource(kustomizations).Namespace(fluxNS).Create(ctx, k, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	say("flux: GitRepository (interval %s) and %d Kustomizations created", cfg.fluxInterval, cfg.n)
	// Settled: every Kustomization has applied the repository's head.
	settle := func(ctx context.Context) error {
		head, err := gitserver.GitErr(repo.clone, "rev-parse", "HEAD")
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		for {
			list, err := dyn.Resource(kustomizations).Namespace(fluxNS).List(sctx, metav1.ListOptions{})
			if err == nil {
				done := 0
				for _, k := range list.Items {
					rev, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision")
					if strings.HasSuffix(rev, head) {
						done++
					}
				}
				if done >= cfg.n {
					return nil
				}
			}
			select {
			case <-sctx.Done():
				return fmt.Errorf("flux did not settle on %s: %w", head, sctx.Err())
			case <-time.After(2 * time.Second):
			}
		}
	}
	if err := measure(ctx, cfg, cs, dyn, repo, r, procs, ns, started, req0, 1, 30*time.Minute, settle, nil); err != nil {
		return nil, err
	}
	return r, nil
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := httpGet(ctx, url)
		if err == nil && resp == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v (status %d)", url, timeout, err, resp)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func report(cfg config, results []*result, baseRate float64, floor time.Duration) error {
	get := func(tool string) *result {
		for _, r := range results {
			if r.tool == tool {
				return r
			}
		}
		return nil
	}
	s, f := get("sluice"), get("flux")
	var b strings.Builder
	tw := &b
	cols := []*result{}
	header := "| metric (N=" + strconv.Itoa(cfg.n) + ")"
	for _, r := range []*result{s, f} {
		if r != nil {
			cols = append(cols, r)
			header += " | " + r.tool
		}
	}
	if s != nil && f != nil {
		header += " | flux / sluice"
	}
	fmt.Fprintln(tw, header+" |")
	fmt.Fprintln(tw, strings.Repeat("|---", len(strings.Split(header, " | ")))+"|")
	row := func(name string, val func(*result) float64, format string, ratio bool) {
		line := "| " + name
		for _, r := range cols {
			line += " | " + fmt.Sprintf(format, val(r))
		}
		if s != nil && f != nil {
			if ratio && val(s) > 0 {
				line += fmt.Sprintf(" | %.1fx", val(f)/val(s))
			} else {
				line += " | "
			}
		}
		fmt.Fprintln(tw, line+" |")
	}
	row("cold: start → all Deployments Available (s)", func(r *result) float64 { return r.cold.Seconds() }, "%.1f", true)
	if floor > 0 {
		line := fmt.Sprintf("| floor: the rendered objects applied by one server-side apply client → all Available (s) | %.1f", floor.Seconds())
		for range len(cols) - 1 {
			line += " | "
		}
		if s != nil && f != nil {
			line += " | "
		}
		fmt.Fprintln(tw, line+" |")
	}
	row(fmt.Sprintf("push → applied (s, median of %d for sluice, 1 for flux)", cfg.pushes), func(r *result) float64 { return r.pushMedian().Seconds() }, "%.2f", true)
	row("idle CPU (s per 60 s)", func(r *result) float64 { return r.idleCPU }, "%.2f", true)
	row("peak RSS (MiB, all the tool's processes)", func(r *result) float64 { return r.rss }, "%.0f", true)
	row("API requests during cold start (all clients)", func(r *result) float64 { return r.reqCold }, "%.0f", true)
	row("  of which above the control plane's own", func(r *result) float64 { return r.reqCold - baseRate*r.cold.Seconds() }, "%.0f", true)
	row("API requests in the idle minute (all clients)", func(r *result) float64 { return r.reqIdle }, "%.0f", false)
	row("  of which above the control plane's own", func(r *result) float64 { return r.reqIdle - baseRate*60 }, "%.0f", false)
	row("Git HTTP requests in the idle minute", func(r *result) float64 { return float64(r.gitReqIdle) }, "%.0f", false)
	table := b.String()

	floorPart := ""
	if floor > 0 && s != nil {
		floorPart = fmt.Sprintf(", floor %.1fs (%.2fx floor)", floor.Seconds(), s.cold.Seconds()/floor.Seconds())
	}
	var line string
	switch {
	case cfg.shards > 0 && s != nil:
		rss := make([]string, len(s.rssEach))
		for i, v := range s.rssEach {
			rss[i] = fmt.Sprintf("%.0f", v)
		}
		line = fmt.Sprintf("fleet shards=%d: cold %.1fs%s, rss per replica %s MiB, lost commits %d (N=%d)", cfg.shards, s.cold.Seconds(), floorPart, strings.Join(rss, "/"), s.lost, cfg.n)
	case s != nil && f != nil:
		line = fmt.Sprintf("fleet N=%d: sluice cold %.1fs%s, flux cold %.1fs (%.1fx); push->applied sluice %.1fs, flux %.1fs (%.1fx); idle cpu sluice %.1fs/60s; rss sluice %.0fMiB flux %.0fMiB",
			cfg.n, s.cold.Seconds(), floorPart, f.cold.Seconds(), f.cold.Seconds()/s.cold.Seconds(),
			s.pushMedian().Seconds(), f.pushMedian().Seconds(), f.pushMedian().Seconds()/s.pushMedian().Seconds(),
			s.idleCPU, s.rss, f.rss)
	case s != nil:
		line = fmt.Sprintf("fleet N=%d: sluice cold %.1fs%s; push->applied sluice %.1fs; idle cpu sluice %.1fs/60s; rss sluice %.0fMiB", cfg.n, s.cold.Seconds(), floorPart, s.pushMedian().Seconds(), s.idleCPU, s.rss)
	default:
		line = fmt.Sprintf("fleet N=%d: flux cold %.1fs; push->applied flux %.1fs; rss flux %.0fMiB", cfg.n, f.cold.Seconds(), f.pushMedian().Seconds(), f.rss)
	}
	fmt.Println()
	fmt.Print(table)
	fmt.Println()

	doc := fmt.Sprintf(`## Fleet, N=%d (%s)

%s, on %s. Command: `+"`make bench-fleet N=%d TOOLS=%s`"+`.

One real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok; hack/testbin.sh), one smart-HTTP Git server (git http-backend) on loopback, %d apps of a Deployment (1 replica), a Service and an HTTPRoute. sluice: `+"`sluice agent --interval 1s`"+`, default concurrency, rolling releases. Flux v1.9.6 source-controller + kustomize-controller run out of cluster with their defaults, GitRepository interval %s (its minimum practical interval: each poll is a clone-or-ls-remote per interval, and every Kustomization on the source re-reconciles on a new revision, so a shorter interval does not shorten the rebuild of the whole fleet), Kustomization interval 10m, prune on, no health checks. The control plane alone made %.0f API requests/min in this run.

%s
%s
`, cfg.n, time.Now().UTC().Format("2006-01-02"), time.Now().UTC().Format(time.RFC3339), benchkit.Machine(), cfg.n, strings.Join(cfg.tools, ","),
		cfg.n, cfg.fluxInterval, baseRate*60, table, "`"+line+"`")
	section := fmt.Sprintf("fleet-N%d-%s", cfg.n, strings.Join(cfg.tools, "-"))
	if cfg.shards > 0 {
		section = fmt.Sprintf("fleet-shards%d-N%d", cfg.shards, cfg.n)
		doc = strings.Replace(doc, "## Fleet, N=", fmt.Sprintf("## Fleet in %d shards (%d replicas), N=", cfg.shards, cfg.shards), 1)
		doc = strings.Replace(doc, "sluice: `sluice agent --interval 1s`", fmt.Sprintf("sluice: %d replicas of `sluice agent --interval 1s --shards %d`", cfg.shards, cfg.shards), 1)
	}
	if err := benchkit.WriteSection(cfg.doc, section, doc); err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}
