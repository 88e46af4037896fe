package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

var (
	cluster   *testcluster.Cluster
	sluiceBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e")
	if err != nil {
		panic(err)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", sluiceBin, "../cmd/sluice").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n%s", err, out)
		os.Exit(2)
	}
	defer os.RemoveAll(dir)
	testcluster.Main(m, &cluster)
}

const password = "e2e-password"

// drained bounds the wait for a canary track to go after traffic left it:
// the default scaleDownDelay (30 s) and some slack for the next pass.
const drained = v1alpha1.DefaultScaleDownDelay + 20*time.Second

// world is one scenario: its namespace, its repository served over HTTP,
// the agents it runs, and clients to look at the cluster.
type world struct {
	t    *testing.T
	cl   *testcluster.Cluster
	ns   string
	repo *gitserver.Repo
	srv  *gitserver.HTTPServer
	pw   string
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	logs []*agentProc
}

// fixture reads the named example releases with the demo namespace
// renamed and the replacements applied to every file.
func fixture(t *testing.T, ns string, names []string, replace ...string) map[string]string {
	t.Helper()
	replace = append(replace, appMetrics...)
	files := map[string]string{}
	for _, name := range names {
		dir := filepath.Join("../examples/releases/demo", name)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			s := strings.ReplaceAll(string(b), "namespace: demo", "namespace: "+ns)
			for i := 0; i+1 < len(replace); i += 2 {
				s = strings.ReplaceAll(s, replace[i], replace[i+1])
			}
			files["releases/"+ns+"/"+name+"/"+e.Name()] = s
		}
	}
	return files
}

// appMetrics points the examples' checks, which read the data plane's
// per-Service counter (Traefik's), at the stand-in app's: these stories run
// no Gateway (the traffic stories in e2e/traffic run the examples' query
// on Traefik's real metrics).
var appMetrics = []string{
	`traefik_service_requests_total{service=~"{{.Namespace}}-{{.Canary.Service}}-http-.*"`,
	`http_requests_total{service="{{.Canary.Service}}"`,
}

func newWorld(t *testing.T, names []string, replace ...string) *world {
	t.Helper()
	return newWorldOn(t, cluster, names, replace...)
}

// newWorldOn is newWorld on a cluster of the scenario's own.
func newWorldOn(t *testing.T, cl *testcluster.Cluster, names []string, replace ...string) *world {
	t.Helper()
	ns := cl.Namespace(t)
	root := t.TempDir()
	w := &world{t: t, cl: cl, ns: ns, cs: cl.Clientset(t)}
	w.repo = gitserver.NewRepo(t, root, "deploy", fixture(t, ns, names, replace...))
	w.srv = gitserver.StartHTTP(t, root, "sluice", password)
	w.pw = filepath.Join(t.TempDir(), "pw")
	os.WriteFile(w.pw, []byte(password), 0o600)
	w.dyn, _ = dynamic.NewForConfig(cl.Config)
	t.Cleanup(func() {
		if t.Failed() {
			for i, a := range w.logs {
				f := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-e2e-%s-agent-%d.log", t.Name(), i))
				a.mu.Lock()
				os.WriteFile(f, []byte(strings.Join(a.lines, "\n")), 0o644)
				a.mu.Unlock()
				t.Logf("agent log (tail; all of it in %s):\n%s", f, a.tail(40))
			}
		}
	})
	return w
}

// agentArgs are the flags of an agent for this world.
func (w *world) agentArgs(extra ...string) []string {
	return append([]string{"agent", "--repo", w.srv.RepoURL(w.repo.Name), "--git-username", "sluice",
		"--git-password-file", w.pw, "--kubeconfig", agentKubeconfig(w.t, w.cl), "--interval", "500ms",
		"--namespaces", w.ns, "--cache-dir", filepath.Join(w.t.TempDir(), "cache"), "--listen", "",
		"--log-format", "console"}, extra...)
}

type agentProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
}

func (a *agentProc) tail(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (a *agentProc) has(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// start runs `sluice agent` as its own process until the scenario ends.
func (w *world) start(extra ...string) *agentProc {
	w.t.Helper()
	cmd := exec.Command(sluiceBin, w.agentArgs(extra...)...)
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	pw.Close()
	a := &agentProc{cmd: cmd}
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, s.Text())
			a.mu.Unlock()
		}
	}()
	w.logs = append(w.logs, a)
	w.t.Cleanup(func() {
		if w.t.Failed() {
			// A goroutine dump in the agent's log says where it was.
			cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(time.Second)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return a
}

// status reads a release's status.yaml at the head of the status branch.
func (w *world) status(name string) v1alpha1.ReleaseStatus {
	out, err := gitserver.GitErr(w.repo.Bare, "show", "sluice/status:releases/"+w.ns+"/"+name+"/status.yaml")
	var st v1alpha1.ReleaseStatus
	if err == nil {
		if err := yaml.Unmarshal([]byte(out), &st); err != nil {
			w.t.Fatal(err)
		}
	}
	return st
}

// waitStatus polls (bounded) until cond holds for the release's status.
func (w *world) waitStatus(name string, timeout time.Duration, what string, cond func(v1alpha1.ReleaseStatus) bool) v1alpha1.ReleaseStatus {
	w.t.Helper()
	start := time.Now()
	for {
		st := w.status(name)
		if cond(st) {
			w.t.Logf("%s/%s: %s after %s", w.ns, name, what, time.Since(start).Round(100*time.Millisecond))
			return st
		}
		if time.Since(start) > timeout {
			w.t.Fatalf("%s: timed out after %s waiting for %s; status: %s step %d weight %d: %s", name, timeout, what, st.Phase, st.Step, st.Weight, st.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func phaseIs(p v1alpha1.Phase) func(v1alpha1.ReleaseStatus) bool {
	return func(s v1alpha1.ReleaseStatus) bool { return s.Phase == p }
}

// commit changes files (paths relative to the release directory of name)
// and pushes, as a person's merged pull request.
func (w *world) commit(name, msg string, files map[string]string) string {
	w.t.Helper()
	full := map[string]string{}
	for k, v := range files {
		full["releases/"+w.ns+"/"+name+"/"+k] = v
	}
	rev := w.repo.Commit(w.t, msg, full)
	w.repo.Push(w.t)
	return rev
}

// file reads a release file at the head of main.
func (w *world) file(name, f string) string {
	return gitserver.Git(w.t, w.repo.Bare, "show", "main:releases/"+w.ns+"/"+name+"/"+f)
}

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// route returns the live HTTPRoute's rules.
func (w *world) route(name string) []map[string]any {
	w.t.Helper()
	u, err := w.dyn.Resource(httpRoutes).Namespace(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	var out []map[string]any
	for _, r := range rules {
		out = append(out, r.(map[string]any))
	}
	return out
}

// weights sums the live route's backend weights by name over the rules
// without header matches (the default split).
func (w *world) weights(route string) map[string]int64 {
	out := map[string]int64{}
	for _, r := range w.route(route) {
		if hasHeaderMatch(r) {
			continue
		}
		refs, _ := r["backendRefs"].([]any)
		for _, ref := range refs {
			m := ref.(map[string]any)
			wt, ok := m["weight"].(int64)
			if !ok {
				wt = 100
			}
			out[m["name"].(string)] += wt
		}
	}
	return out
}

func hasHeaderMatch(r map[string]any) bool {
	ms, _ := r["matches"].([]any)
	for _, m := range ms {
		if _, ok := m.(map[string]any)["headers"]; ok {
			return true
		}
	}
	return false
}

// exists reports whether a Deployment exists.
func (w *world) exists(name string) bool {
	_, err := w.cs.AppsV1().Deployments(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}

// trailers lists "Phase|Step|Weight" of the status branch's commits for a
// release, oldest first.
func (w *world) trailers(name string) []string {
	out := gitserver.Git(w.t, w.repo.Bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Release,valueonly,separator=)|%(trailers:key=Sluice-Phase,valueonly,separator=)|%(trailers:key=Sluice-Step,valueonly,separator=)|%(trailers:key=Sluice-Weight,valueonly,separator=)", "sluice/status")
	var res []string
	for _, l := range strings.Split(out, "\n") {
		if rel, rest, ok := strings.Cut(l, "|"); ok && rel == w.ns+"/"+name {
			res = append(res, rest)
		}
	}
	return res
}

// sluice runs a CLI verb in the work clone.
func (w *world) sluice(args ...string) string {
	w.t.Helper()
	cmd := exec.Command(sluiceBin, append(args, "-C", w.repo.Work)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func yamlUnmarshal(t *testing.T, s string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(s), v); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dynamicFor(t *testing.T, cl *testcluster.Cluster) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(cl.Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
