// Command benchcanary is `make bench-canary`: the same canary with sluice
// and with Argo Rollouts v1.10.2, in turn, on one real control plane. A
// 10-replica workload goes through setWeight 10, pause 1s, setWeight 50,
// pause 1s, setWeight 100, timed from the version change (a push for sluice,
// a patch of the Rollout's image for Argo Rollouts) until the new version is
// the only one serving: every Ready pod behind the Services that get traffic
// (the HTTPRoute's backends with a weight above 0; for Argo Rollouts'
// replica-based canary, the one Service) runs the new image, and there are
// at least 10 of them. It prints a table and one summary line, and writes
// the table into docs/benchmarks.md.
//
// A second variant without the pauses (10 → 50 → 100) compares the
// machinery alone; Argo Rollouts' pause lengths are measured, since it
// keeps a pause's start to the second.
//
// Environment: RUNS (version changes per tool, default 3; the median is
// quoted), ARGO_BIN (directory of rollouts-controller and crds.yaml), DOC.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/benchkit"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

const replicas = 10

var (
	rollouts  = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	routesGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

var say = benchkit.Say

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-canary failed:", err)
		os.Exit(1)
	}
}

type result struct {
	tool  string
	times []float64
	rss   float64
	// pauses are the measured lengths of Argo Rollouts' pause steps (s).
	pauses []float64
}

func suffix(paused bool) string {
	if paused {
		return ""
	}
	return "-nopause"
}

// watchSteps records when the Rollout's status.currentStepIndex takes each
// value (polled every 10 ms) until the returned function is called.
func watchSteps(ctx context.Context, dyn dynamic.Interface, ns string) func() map[int64]time.Time {
	seen := map[int64]time.Time{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if ro, err := dyn.Resource(rollouts).Namespace(ns).Get(ctx, "app", metav1.GetOptions{}); err == nil {
				if i, ok, _ := unstructured.NestedInt64(ro.Object, "status", "currentStepIndex"); ok {
					if _, known := seen[i]; !known {
						seen[i] = time.Now()
					}
				}
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() map[int64]time.Time {
		close(stop)
		<-done
		return seen
	}
}

// pauseLengths are the lengths of the paused steps (indexes 1 and 3): from
// entering the pause to leaving it.
func pauseLengths(seen map[int64]time.Time) []float64 {
	var out []float64
	for _, i := range []int64{1, 3} {
		from, ok1 := seen[i]
		to, ok2 := seen[i+1]
		if ok1 && ok2 {
			out = append(out, to.Sub(from).Seconds())
		}
	}
	return out
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	runs, err := strconv.Atoi(envOr("RUNS", "3"))
	if err != nil || runs < 1 {
		return fmt.Errorf("RUNS=%q: want a positive number", os.Getenv("RUNS"))
	}
	argoBin := envOr("ARGO_BIN", filepath.Join(home, ".cache", "sluice", "testbin", "argo-rollouts-v1.10.2"))
	doc := envOr("DOC", filepath.Join(root, "docs", "benchmarks.md"))
	sluice := filepath.Join(root, "bin", "sluice")
	for _, f := range []string{sluice, filepath.Join(argoBin, "rollouts-controller"), filepath.Join(argoBin, "crds.yaml")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s missing: run `make build` and ./hack/testbin-argo.sh", f)
		}
	}
	work, err := os.MkdirTemp("", "sluice-bench-canary-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	cluster, cs, dyn, err := benchkit.StartCluster(ctx)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	var res [2][2]*result // [paused][sluice, argo]
	for _, paused := range []bool{true, false} {
		p := 0
		if paused {
			p = 1
		}
		if res[p][0], err = benchSluice(ctx, cluster, cs, dyn, sluice, work, runs, paused); err != nil {
			return fmt.Errorf("sluice%s: %w", suffix(paused), err)
		}
		if res[p][1], err = benchArgo(ctx, cluster, cs, dyn, argoBin, work, runs, paused); err != nil {
			return fmt.Errorf("argo-rollouts%s: %w", suffix(paused), err)
		}
	}
	s, a := res[1][0], res[1][1]
	ns, na := res[0][0], res[0][1]
	sm, am := benchkit.Median(s.times), benchkit.Median(a.times)
	nsm, nam := benchkit.Median(ns.times), benchkit.Median(na.times)
	argoPauses := 0.0
	for _, p := range a.pauses {
		argoPauses += p
	}
	// Per run: Argo's two pauses, as measured; sluice's are exact (2 s).
	if len(a.times) > 0 {
		argoPauses /= float64(len(a.times))
	}
	const sluicePauses = 2.0
	var b strings.Builder
	fmt.Fprintf(&b, "| canary, %d replicas | sluice | argo-rollouts | sluice / argo-rollouts |\n|---|---|---|---|\n", replicas)
	fmt.Fprintf(&b, "| 10%% → 50%% → 100%%, no pauses: version change → only the new version serving (s, median of %d) | %.2f | %.2f | %.2fx |\n", runs, nsm, nam, nsm/nam)
	fmt.Fprintf(&b, "| each run, no pauses (s) | %s | %s | |\n", list(ns.times), list(na.times))
	fmt.Fprintf(&b, "| 10%% → pause 1s → 50%% → pause 1s → 100%%: version change → only the new version serving (s, median of %d) | %.2f | %.2f | %.2fx |\n", runs, sm, am, sm/am)
	fmt.Fprintf(&b, "| each run, with pauses (s) | %s | %s | |\n", list(s.times), list(a.times))
	fmt.Fprintf(&b, "| the two `pause: 1s` as measured (s per run; Argo: each pause %s) | %.2f | %.2f | |\n", list(a.pauses), sluicePauses, argoPauses)
	fmt.Fprintf(&b, "| with pauses, less the pauses (s) | %.2f | %.2f | %.2fx |\n", sm-sluicePauses, am-argoPauses, (sm-sluicePauses)/(am-argoPauses))
	fmt.Fprintf(&b, "| peak RSS (MiB, with pauses) | %.0f | %.0f | %.2fx |\n", s.rss, a.rss, s.rss/a.rss)
	line := fmt.Sprintf("canary: sluice %.1fs, argo-rollouts %.1fs (%.2fx); less the pauses (sluice %.1fs, argo-rollouts %.1fs as measured): sluice %.2fs, argo-rollouts %.2fs (%.2fx); rss sluice %.0fMiB argo-rollouts %.0fMiB",
		sm, am, sm/am, sluicePauses, argoPauses, sm-sluicePauses, am-argoPauses, (sm-sluicePauses)/(am-argoPauses), s.rss, a.rss)
	line2 := fmt.Sprintf("canary (no pauses): sluice %.2fs, argo-rollouts %.2fs (%.2fx)", nsm, nam, nsm/nam)
	fmt.Println()
	fmt.Print(b.String())
	fmt.Println()
	section := fmt.Sprintf(`## Canary, sluice vs Argo Rollouts (%s)

%s, on %s. Command: `+"`make bench-canary`"+`.

One real control plane (kwok pods), %d replicas, in two variants: steps setWeight 10, setWeight 50, setWeight 100 (no pauses: the machinery alone), and setWeight 10, pause 1s, setWeight 50, pause 1s, setWeight 100. sluice: `+"`sluice agent --interval 1s`"+`, the version change is a `+"`git push`"+` of a new image tag (the Git server posts a push webhook to the agent's `+"`/hook`"+` after every push, the agent's own status pushes included, with no `+"`ref`"+` in it: the worst a host can do; the poll is the fallback), every transition a pushed status commit, `+"`scaleDownDelay: 5s`"+` and each run starting once the last one's canary track has drained (a canary pushed during the drain waits for it), traffic split by the HTTPRoute's weights (the canary runs as its own Deployment at full size). Argo Rollouts v1.10.2 (out of cluster, `+"`--leader-elect=false`"+`): the change is a patch of the Rollout's image, replica-based canary (no traffic router), no Git. Timed until every Ready pod behind the Services that get traffic runs the new image and there are at least %d of them. Argo's pause lengths are measured from its status.currentStepIndex (polled every 10 ms): it keeps a pause's start to the second, so a `+"`pause: 1s`"+` lasts 0–1 s; sluice's pauses last what they say.

%s
%s

%s
`, time.Now().UTC().Format("2006-01-02"), time.Now().UTC().Format(time.RFC3339), benchkit.Machine(), replicas, replicas, b.String(), "`"+line2+"`", "`"+line+"`")
	if err := benchkit.WriteSection(doc, "canary", section); err != nil {
		return err
	}
	fmt.Println(line2)
	fmt.Println(line)
	return nil
}

var envOr = benchkit.Env

func list(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

// serving watches a namespace's pods, Services and HTTPRoutes and tells
// which images the traffic reaches.
type serving struct {
	pods, svcs, routes cache.SharedIndexInformer
	stop               chan struct{}
}

func watchServing(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, ns string) (*serving, error) {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	s := &serving{pods: f.Core().V1().Pods().Informer(), svcs: f.Core().V1().Services().Informer(),
		routes: df.ForResource(routesGVR).Informer(), stop: make(chan struct{})}
	for _, inf := range []cache.SharedIndexInformer{s.pods, s.svcs, s.routes} {
		go inf.Run(s.stop)
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.pods.HasSynced, s.svcs.HasSynced, s.routes.HasSynced) {
		close(s.stop)
		return nil, ctx.Err()
	}
	return s, nil
}

func (s *serving) close() { close(s.stop) }

// images counts the Ready, not terminating pods behind the Services that
// get traffic, by image.
func (s *serving) images(service string) map[string]int {
	backends := map[string]bool{}
	for _, o := range s.routes.GetStore().List() {
		rules, _, _ := unstructured.NestedSlice(o.(*unstructured.Unstructured).Object, "spec", "rules")
		for _, r := range rules {
			refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
			for _, ref := range refs {
				m := ref.(map[string]any)
				w, found, _ := unstructured.NestedInt64(m, "weight")
				if !found || w > 0 {
					backends[m["name"].(string)] = true
				}
			}
		}
	}
	if len(backends) == 0 {
		backends[service] = true
	}
	out := map[string]int{}
	for _, o := range s.svcs.GetStore().List() {
		svc := o.(*corev1.Service)
		if !backends[svc.Name] || len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, p := range s.pods.GetStore().List() {
			pod := p.(*corev1.Pod)
			if pod.DeletionTimestamp != nil || !sel.Matches(labels.Set(pod.Labels)) || !podReady(pod) {
				continue
			}
			out[pod.Spec.Containers[0].Image]++
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// only waits until image is the only one serving, on at least replicas pods.
func (s *serving) only(ctx context.Context, service, image string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		imgs := s.images(service)
		if len(imgs) == 1 && imgs[image] >= replicas {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for only %s to serve: %w (serving: %v)", image, ctx.Err(), imgs)
		case <-tick.C:
		}
	}
}

func image(n int) string { return fmt.Sprintf("ghcr.io/sluice-dev/podinfo:6.8.%d", n) }

func manifests(ns string, paused bool) map[string]string {
	return map[string]string{
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {app: app}
spec:
  replicas: %d
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: %s
        ports:
        - {name: http, containerPort: 9898}
`, replicas, image(0)),
		"service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector: {app: app}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n",
		"route.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: app
spec:
  parentRefs:
  - {name: public, namespace: gateway-system}
  rules:
  - backendRefs:
    - {name: app, port: 80}
`,
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + ns + "\nresources:\n- deployment.yaml\n- service.yaml\n- route.yaml\n",
		"release.yaml": `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata:
  name: app
  namespace: ` + ns + `
spec:
  workload: {kind: Deployment, name: app}
  traffic: {route: app, service: app}
  strategy:
    scaleDownDelay: 5s
    canary:
      steps:
` + sluiceSteps(paused),
	}
}

// sluiceSteps are the canary's steps: 10 → pause 1s → 50 → pause 1s → 100,
// or without the pauses (the machinery alone).
func sluiceSteps(paused bool) string {
	var b strings.Builder
	for _, st := range steps(paused) {
		if st.pause {
			b.WriteString("      - pause: {duration: 1s}\n")
		} else {
			fmt.Fprintf(&b, "      - setWeight: %d\n", st.weight)
		}
	}
	return b.String()
}

type step struct {
	weight int64
	pause  bool
}

func steps(paused bool) []step {
	if paused {
		return []step{{weight: 10}, {pause: true}, {weight: 50}, {pause: true}, {weight: 100}}
	}
	return []step{{weight: 10}, {weight: 50}, {weight: 100}}
}

// argoSteps are the same steps in a Rollout.
func argoSteps(paused bool) []any {
	var out []any
	for _, st := range steps(paused) {
		if st.pause {
			out = append(out, map[string]any{"pause": map[string]any{"duration": "1s"}})
		} else {
			out = append(out, map[string]any{"setWeight": st.weight})
		}
	}
	return out
}

func benchSluice(ctx context.Context, cluster *testcluster.Cluster, cs kubernetes.Interface, dyn dynamic.Interface, bin, work string, runs int, paused bool) (*result, error) {
	ns := "canary-sluice" + suffix(paused)
	work = filepath.Join(work, ns)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if err := benchkit.EnsureNamespace(ctx, cs, ns); err != nil {
		return nil, err
	}
	gitRoot, clone := filepath.Join(work, "git"), filepath.Join(work, "clone")
	bare := filepath.Join(gitRoot, "canary.git")
	if _, err := gitserver.GitErr(work, "init", "-q", "--bare", "-b", "main", bare); err != nil {
		return nil, err
	}
	if _, err := gitserver.GitErr(work, "clone", "-q", bare, clone); err != nil {
		return nil, err
	}
	gitserver.GitErr(clone, "checkout", "-q", "-b", "main")
	files := map[string]string{}
	for name, content := range manifests(ns, paused) {
		files[filepath.Join("releases", ns, "app", name)] = content
	}
	if err := benchkit.WriteFiles(clone, files); err != nil {
		return nil, err
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "the app"}, {"push", "-q", "origin", "main"}} {
		if _, err := gitserver.GitErr(clone, args...); err != nil {
			return nil, err
		}
	}
	srv, err := benchkit.StartGit(gitRoot)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	// People push over HTTP, as to any Git host (and the host's push
	// webhook follows).
	if _, err := gitserver.GitErr(clone, "remote", "set-url", "origin", srv.URL+"/canary.git"); err != nil {
		return nil, err
	}
	watch, err := watchServing(ctx, cs, dyn, ns)
	if err != nil {
		return nil, err
	}
	defer watch.close()

	logf, err := os.Create(filepath.Join(os.TempDir(), "sluice-bench-canary-agent"+suffix(paused)+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	say("sluice: starting `sluice agent --interval 1s` (log: %s)", logf.Name())
	// The Git server sends a push webhook to the agent's /hook, as GitHub
	// or GitLab do; the 1 s poll stays as the fallback.
	ports, err := testcluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	hook := fmt.Sprintf("http://127.0.0.1:%d/hook", ports[0])
	srv.OnPush = func() {
		resp, err := http.Post(hook, "application/json", strings.NewReader("{}"))
		if err != nil {
			say("sluice: push webhook: %v", err)
			return
		}
		resp.Body.Close()
		if os.Getenv("LOG_LEVEL") != "" {
			say("sluice: push webhook: %s", resp.Status)
		}
	}
	cmd := exec.Command(bin, "agent", "--repo", srv.URL+"/canary.git", "--interval", "1s",
		"--kubeconfig", cluster.Kubeconfig, "--namespaces", ns, "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--cache-dir", filepath.Join(work, "agent-cache"), "--log-format", "console", "--log-level", envOr("LOG_LEVEL", "warn"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	procs := benchkit.Procs{cmd}
	defer procs.Stop()
	if _, err := watch.only(ctx, "app", image(0), 2*time.Minute); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if err := sluiceSettled(ctx, cs, clone, ns); err != nil {
		return nil, err
	}
	r := &result{tool: "sluice"}
	dep := filepath.Join(clone, "releases", ns, "app", "deployment.yaml")
	for i := 1; i <= runs; i++ {
		b, err := os.ReadFile(dep)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(dep, []byte(strings.Replace(string(b), image(i-1), image(i), 1)), 0o644); err != nil {
			return nil, err
		}
		for _, args := range [][]string{{"commit", "-q", "-am", "app " + image(i)}, {"push", "-q", "origin", "main"}} {
			if _, err := gitserver.GitErr(clone, args...); err != nil {
				return nil, err
			}
		}
		pushed := time.Now()
		at, err := watch.only(ctx, "app", image(i), 2*time.Minute)
		if err != nil {
			return nil, err
		}
		r.times = append(r.times, at.Sub(pushed).Seconds())
		say("sluice: push of %s → only it serving in %.2fs", image(i), at.Sub(pushed).Seconds())
		if err := sluiceSettled(ctx, cs, clone, ns); err != nil {
			return nil, err
		}
	}
	r.rss = procs.PeakRSS()
	return r, nil
}

// sluiceSettled waits until the release's last status commit says
// Succeeded and the canary track's drain has ended (its Deployment is
// pruned), so the next run starts as a single push would: a canary pushed
// during the drain waits for it (docs/decisions.md).
func sluiceSettled(ctx context.Context, cs kubernetes.Interface, clone, ns string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := gitserver.GitErr(clone, "fetch", "-q", "origin", "sluice/status"); err == nil {
			out, _ := gitserver.GitErr(clone, "log", "-1", "--format=%B", "FETCH_HEAD")
			if strings.Contains(out, "Sluice-Phase: Succeeded") && strings.Contains(out, "Sluice-Release: "+ns+"/app") {
				_, err := cs.AppsV1().Deployments(ns).Get(ctx, v1alpha1.CanaryName("app"), metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the release did not settle as Succeeded with its canary track drained")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func benchArgo(ctx context.Context, cluster *testcluster.Cluster, cs kubernetes.Interface, dyn dynamic.Interface, binDir, work string, runs int, paused bool) (*result, error) {
	ns := "canary-argo" + suffix(paused)
	work = filepath.Join(work, ns)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if err := benchkit.EnsureNamespace(ctx, cs, ns); err != nil {
		return nil, err
	}
	crds, err := os.ReadFile(filepath.Join(binDir, "crds.yaml"))
	if err != nil {
		return nil, err
	}
	if err := testcluster.ApplyYAML(ctx, cluster.Config, crds); err != nil {
		return nil, fmt.Errorf("Argo Rollouts CRDs: %w", err)
	}
	ports, err := testcluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(os.TempDir(), "sluice-bench-canary-argo"+suffix(paused)+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	say("argo-rollouts: starting rollouts-controller v1.10.2 (log: %s)", logf.Name())
	cmd := exec.Command(filepath.Join(binDir, "rollouts-controller"), "--kubeconfig", cluster.Kubeconfig,
		"--leader-elect=false", "--healthzPort", strconv.Itoa(ports[0]), "--metricsport", strconv.Itoa(ports[1]),
		"--loglevel", "error")
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	procs := benchkit.Procs{cmd}
	defer procs.Stop()

	watch, err := watchServing(ctx, cs, dyn, ns)
	if err != nil {
		return nil, err
	}
	defer watch.close()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "app"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	ro := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "app", "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(replicas),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "app"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "app"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image(0),
					"ports": []any{map[string]any{"name": "http", "containerPort": int64(9898)}}}}},
			},
			"strategy": map[string]any{"canary": map[string]any{"steps": argoSteps(paused)}},
		},
	}}
	if _, err := dyn.Resource(rollouts).Namespace(ns).Create(ctx, ro, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if _, err := watch.only(ctx, "app", image(0), 2*time.Minute); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if err := argoSettled(ctx, dyn, ns); err != nil {
		return nil, err
	}
	r := &result{tool: "argo-rollouts"}
	for i := 1; i <= runs; i++ {
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image(i))
		if _, err := dyn.Resource(rollouts).Namespace(ns).Patch(ctx, "app", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, err
		}
		patched := time.Now()
		stepsSeen := watchSteps(ctx, dyn, ns)
		at, err := watch.only(ctx, "app", image(i), 2*time.Minute)
		if err != nil {
			return nil, err
		}
		if paused {
			r.pauses = append(r.pauses, pauseLengths(stepsSeen())...)
		}
		r.times = append(r.times, at.Sub(patched).Seconds())
		say("argo-rollouts: patch to %s → only it serving in %.2fs", image(i), at.Sub(patched).Seconds())
		if err := argoSettled(ctx, dyn, ns); err != nil {
			return nil, err
		}
	}
	r.rss = procs.PeakRSS()
	return r, nil
}

// argoSettled waits until the Rollout is Healthy.
func argoSettled(ctx context.Context, dyn dynamic.Interface, ns string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ro, err := dyn.Resource(rollouts).Namespace(ns).Get(ctx, "app", metav1.GetOptions{})
		if err == nil {
			phase, _, _ := unstructured.NestedString(ro.Object, "status", "phase")
			if phase == "Healthy" {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the Rollout did not become Healthy")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
