package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) { testcluster.Main(m, &cluster) }

const password = "agent-test-password"

// fixture seeds a repository from examples/ with the demo namespace
// renamed to ns (in the files and their paths: releases/<ns>/<name>/),
// and keeps only the named releases.
func fixture(t *testing.T, ns string, keep ...string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk("../examples/releases/demo", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../examples", p)
		name := strings.Split(filepath.ToSlash(rel), "/")[2]
		for _, k := range keep {
			if k == name {
				b, _ := os.ReadFile(p)
				// releases/<namespace>/<name>/: the release's directory
				// names its namespace.
				key := strings.Replace(filepath.ToSlash(rel), "releases/demo/", "releases/"+ns+"/", 1)
				files[key] = strings.ReplaceAll(string(b), "namespace: demo", "namespace: "+ns)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type env struct {
	t     *testing.T
	ns    string
	repo  *gitserver.Repo
	agent *Agent
	dyn   dynamic.Interface
	logs  *observer.ObservedLogs
	opts  Options
	srv   *gitserver.HTTPServer
}

func newEnv(t *testing.T, files map[string]string, mod func(*Options)) *env {
	t.Helper()
	ns := cluster.Namespace(t)
	root := t.TempDir()
	named := map[string]string{}
	for k, v := range files {
		files[k] = strings.ReplaceAll(v, "NAMESPACE", ns)
		named[strings.ReplaceAll(k, "NAMESPACE", ns)] = files[k]
	}
	repo := gitserver.NewRepo(t, root, "deploy", named)
	srv := gitserver.StartHTTP(t, root, "sluice", password)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte(password), 0o600)
	opts := Options{Repo: srv.RepoURL(repo.Name), Branch: "main", Path: "releases", StatusBranch: "sluice/status",
		Kubeconfig: cluster.Kubeconfig, Interval: time.Second, GitUsername: "sluice", GitPasswordFile: pw,
		Author: "sluice <sluice@test>", CacheDir: filepath.Join(t.TempDir(), "cache"), Concurrency: 4}
	if mod != nil {
		mod(&opts)
	}
	// Every line also goes to an observer, for tests that read the log.
	observed, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Core(), observed))
	a, err := New(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	dyn, _ := dynamic.NewForConfig(cluster.Config)
	return &env{t: t, ns: ns, repo: repo, agent: a, dyn: dyn, logs: logs, opts: opts, srv: srv}
}

// passUntilGone runs passes until get says NotFound: a track traffic has
// left drains for the scale-down delay (30 s by default) before it goes.
func (e *env) passUntilGone(what string, get func() error) {
	e.t.Helper()
	deadline := time.Now().Add(v1alpha1.DefaultScaleDownDelay + 30*time.Second)
	for {
		err := get()
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s outlived the drain: %v", what, err)
		}
		if _, err := e.agent.Pass(context.Background()); err != nil {
			e.t.Fatalf("pass: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) status(release string) v1alpha1.ReleaseStatus {
	out, err := gitserver.GitErr(e.repo.Bare, "show", "sluice/status:releases/"+release+"/status.yaml")
	var st v1alpha1.ReleaseStatus
	if err == nil {
		if err := yaml.Unmarshal([]byte(out), &st); err != nil {
			e.t.Fatal(err)
		}
	}
	return st
}

// passUntil runs passes until cond holds for the release's committed
// status, or fails after timeout. Each pass's status is handed to visit.
func (e *env) passUntil(release string, timeout time.Duration, cond func(v1alpha1.ReleaseStatus) bool, visit func(v1alpha1.ReleaseStatus)) v1alpha1.ReleaseStatus {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := e.agent.Pass(context.Background()); err != nil {
			e.t.Fatalf("pass: %v", err)
		}
		st := e.status(release)
		if visit != nil {
			visit(st)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: timed out; status: phase %s step %d weight %d: %s", release, st.Phase, st.Step, st.Weight, st.Message)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// weights returns the live route's backend weights by name, for the rule
// naming service.
func (e *env) weights(route, service string) map[string]int64 {
	u, err := e.dyn.Resource(httpRoutes).Namespace(e.ns).Get(context.Background(), route, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	out := map[string]int64{}
	for _, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
		named := false
		for _, ref := range refs {
			if ref.(map[string]any)["name"] == service {
				named = true
			}
		}
		_, hasMatches := r.(map[string]any)["matches"].([]any)
		if !named || (hasMatches && len(r.(map[string]any)["matches"].([]any)) > 0 && hasHeaders(r)) {
			continue
		}
		for _, ref := range refs {
			m := ref.(map[string]any)
			w, ok := m["weight"].(int64)
			if !ok {
				w = -1 // as written: no weight
			}
			out[m["name"].(string)] = w
		}
	}
	return out
}

func hasHeaders(r any) bool {
	for _, m := range r.(map[string]any)["matches"].([]any) {
		if _, ok := m.(map[string]any)["headers"]; ok {
			return true
		}
	}
	return false
}

const canaryRelease = `apiVersion: sluice.dev/v1alpha1
kind: Release
metadata: {name: canary, namespace: NAMESPACE}
spec:
  workload: {kind: Deployment, name: canary}
  traffic: {route: canary, service: canary}
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {gate: qa}
      - setWeight: 50
      - setWeight: 100
%s`

// TestCanaryHappyPath: install, then a new image walks the steps with one
// commit per transition, waits at the gate until a commit approves it, and
// is promoted; the spec branch gets no agent commit.
func TestCanaryHappyPath(t *testing.T) {
	files := fixture(t, "NAMESPACE", "canary")
	files["releases/NAMESPACE/canary/release.yaml"] = fmt.Sprintf(canaryRelease, "")
	e := newEnv(t, files, nil)
	ctx := context.Background()
	cs := cluster.Clientset(t)

	st := e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	installed := e.repo.Head(t, "main")
	if st.Stable == nil || st.Stable.Revision != installed || len(st.Inventory) != 4 {
		t.Fatalf("after install: %+v", st)
	}
	if w := e.weights("canary", "canary"); len(w) != 1 {
		t.Errorf("route after install = %v, want the stable service alone", w)
	}
	d, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if err != nil || d.Spec.Selector.MatchLabels["sluice.dev/track"] != "stable" {
		t.Fatalf("stable deployment: %v %v", err, d)
	}
	// A second pass writes nothing.
	before := e.repo.Head(t, "sluice/status")
	if res, err := e.agent.Pass(ctx); err != nil || res.Commits != 0 || e.repo.Head(t, "sluice/status") != before {
		t.Fatalf("an idle pass wrote: %+v %v", res, err)
	}

	// A new image.
	dep := files["releases/NAMESPACE/canary/deployment.yaml"]
	bump := e.repo.Commit(t, "bump image", map[string]string{"releases/" + e.ns + "/canary/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.1", 1)})
	e.repo.Push(t)
	seen := map[int64]bool{}
	st = e.passUntil(e.ns+"/canary", 60*time.Second, func(s v1alpha1.ReleaseStatus) bool {
		return s.Phase == v1alpha1.PhasePaused && strings.Contains(s.Message, "qa")
	}, func(s v1alpha1.ReleaseStatus) {
		if s.Canary != nil {
			seen[e.weights("canary", "canary")["canary-canary"]] = true
		}
	})
	if st.Canary == nil || st.Canary.Revision != bump || st.Weight != 20 {
		t.Fatalf("at the gate: %+v", st)
	}
	if w := e.weights("canary", "canary"); w["canary"] != 80 || w["canary-canary"] != 20 {
		t.Errorf("route at the gate = %v", w)
	}
	if _, err := cluster.WaitAvailable(ctx, cs, e.ns, "canary-canary", 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Approve the gate by commit, for this canary revision.
	approved := fmt.Sprintf(canaryRelease, "  gates:\n    approved:\n    - {gate: qa, revision: "+bump[:7]+"}\n")
	e.repo.Commit(t, "approve qa", map[string]string{"releases/" + e.ns + "/canary/release.yaml": strings.ReplaceAll(approved, "NAMESPACE", e.ns)})
	e.repo.Push(t)
	st = e.passUntil(e.ns+"/canary", 90*time.Second, func(s v1alpha1.ReleaseStatus) bool { return s.Phase == v1alpha1.PhaseSucceeded }, nil)
	if st.Stable.Digest == "" || st.Canary != nil {
		t.Fatalf("after promotion: %+v", st)
	}
	if w := e.weights("canary", "canary"); len(w) != 1 {
		t.Errorf("route after promotion = %v", w)
	}
	d, _ = cs.AppsV1().Deployments(e.ns).Get(ctx, "canary", metav1.GetOptions{})
	if d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/sluice-dev/podinfo:6.7.1" {
		t.Errorf("stable image = %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	// The canary track traffic has just left drains for the scale-down
	// delay, then goes.
	if _, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary-canary", metav1.GetOptions{}); err != nil || st.DrainUntil == nil {
		t.Errorf("the canary track is not draining after the promotion: %v, drainUntil %v", err, st.DrainUntil)
	}
	e.passUntilGone("the canary Deployment", func() error {
		_, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "canary-canary", metav1.GetOptions{})
		return err
	})

	// The audit trail: one commit per transition, steps in order, none on main.
	log := gitserver.Git(t, e.repo.Bare, "log", "--reverse", "--format=%(trailers:key=Sluice-Phase,valueonly,separator=)|%(trailers:key=Sluice-Step,valueonly,separator=)|%(trailers:key=Sluice-Weight,valueonly,separator=)", "sluice/status")
	want := []string{"Progressing|0|0", "Succeeded|0|0", "Progressing|0|0", "Progressing|1|20", "Paused|1|20", "Progressing|2|20", "Progressing|3|50", "Promoting|3|100", "Succeeded|0|0"}
	got := strings.Split(log, "\n")
	// The gate wait is a Paused commit only if it changed phase; allow the
	// exact sequence above.
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("status history:\n got %v\nwant %v", got, want)
	}
	if n := gitserver.Git(t, e.repo.Bare, "log", "--format=%an", "main"); strings.Contains(n, "sluice") {
		t.Errorf("the agent committed on main: %s", n)
	}
	// The live route followed the steps: the canary was seen at the gate's
	// weight while it waited.
	if !seen[20] {
		t.Errorf("the live route never had the canary at 20%%: saw %v", seen)
	}
}

// TestIdleAndWatchWake: under Run, an agent with nothing to do looks at no
// release between polls, and a Deployment deleted behind its back wakes
// only its release at once (the poll interval is a minute), which puts it
// back.
func TestIdleAndWatchWake(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling", "recreate"), func(o *Options) { o.Interval = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.agent.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deps := e.dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(e.ns)
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("both releases Succeeded", 90*time.Second, func() bool {
		return e.status(e.ns+"/rolling").Phase == v1alpha1.PhaseSucceeded && e.status(e.ns+"/recreate").Phase == v1alpha1.PhaseSucceeded
	})
	time.Sleep(2 * time.Second) // the last transitions' follow-up passes
	rolling, recreate := "releases/"+e.ns+"/rolling/release.yaml", "releases/"+e.ns+"/recreate/release.yaml"
	count := func(file string) int {
		e.agent.mu.Lock()
		defer e.agent.mu.Unlock()
		return e.agent.reconciled[file]
	}
	if count(rolling) == 0 || count(recreate) == 0 {
		t.Fatalf("reconciled counts %d, %d: the release files are not where the test looks", count(rolling), count(recreate))
	}
	before, beforeOther := count(rolling), count(recreate)
	time.Sleep(3 * time.Second)
	if n := count(rolling) + count(recreate) - before - beforeOther; n != 0 {
		t.Errorf("idle agent looked at releases %d times in 3 s, want 0", n)
	}
	old, err := deps.Get(ctx, "rolling", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, beforeOther = count(rolling), count(recreate)
	if err := deps.Delete(ctx, "rolling", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deleted Deployment back", 20*time.Second, func() bool {
		d, err := deps.Get(ctx, "rolling", metav1.GetOptions{})
		return err == nil && d.GetUID() != old.GetUID()
	})
	if count(rolling) == before {
		t.Errorf("%s/rolling was not looked at after its Deployment's deletion", e.ns)
	}
	if n := count(recreate) - beforeOther; n != 0 {
		t.Errorf("%s/recreate was looked at %d times after another release's Deployment was deleted, want 0", e.ns, n)
	}

	// A push webhook makes the agent poll at once: the new image is out
	// long before the minute's poll.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.agent.Serve(ctx, l)
	dep := fixture(t, e.ns, "rolling")["releases/"+e.ns+"/rolling/deployment.yaml"]
	e.repo.Commit(t, "rolling 6.7.9", map[string]string{"releases/" + e.ns + "/rolling/deployment.yaml": strings.Replace(dep, "podinfo:6.7.0", "podinfo:6.7.9", 1)})
	e.repo.Push(t)
	resp, err := http.Post("http://"+l.Addr().String()+"/hook", "application/json", strings.NewReader(`{"ref":"refs/heads/main"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /hook: %s", resp.Status)
	}
	waitFor("the pushed image applied after the hook", 15*time.Second, func() bool {
		d, err := deps.Get(ctx, "rolling", metav1.GetOptions{})
		if err != nil {
			return false
		}
		c, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		return len(c) > 0 && c[0].(map[string]any)["image"] == "ghcr.io/sluice-dev/podinfo:6.7.9"
	})
}

// TestGroupCommit: status writes of many releases arriving together and
// one after the other all land, each as its own commit with its trailers.
func TestGroupCommit(t *testing.T) {
	e := newEnv(t, fixture(t, "NAMESPACE", "rolling"), nil)
	head := plumbing.NewHash(e.repo.Head(t, "main"))
	const releases, each = 12, 4
	var wg sync.WaitGroup
	for i := range releases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("ns/r%02d", i)
			for step := range each {
				st := v1alpha1.ReleaseStatus{Phase: v1alpha1.PhaseProgressing, Step: int32(step), Message: id}
				if !e.agent.commitStatus(context.Background(), id, "releases/ns/"+id[3:]+"/status.yaml", st, fmt.Sprintf("step %d", step), nil, head) {
					t.Errorf("%s step %d: not written", id, step)
				}
			}
		}()
	}
	wg.Wait()
	out := gitserver.Git(t, e.repo.Bare, "log", "--format=%(trailers:key=Sluice-Release,valueonly,separator=)@%(trailers:key=Sluice-Step,valueonly,separator=)", "sluice/status")
	got := map[string]bool{}
	for _, l := range strings.Fields(out) {
		got[l] = true
	}
	for i := range releases {
		for step := range each {
			if key := fmt.Sprintf("ns/r%02d@%d", i, step); !got[key] {
				t.Errorf("%s: no commit on the status branch", key)
			}
		}
	}
	if c := gitserver.Git(t, e.repo.Bare, "rev-list", "--count", "sluice/status"); c != fmt.Sprint(releases*each) {
		t.Errorf("%s commits, want %d", c, releases*each)
	}
}
