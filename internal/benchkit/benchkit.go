// Package benchkit holds what the side-by-side benchmarks (hack/benchfleet,
// hack/benchcanary) share: a smart-HTTP Git server for programs that are not
// tests, process accounting from /proc, the API server's request counter,
// a watch-fed view of Deployments and the docs/benchmarks.md writer.
package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/sluice-dev/sluice/internal/gitserver"
	"github.com/sluice-dev/sluice/internal/testcluster"
)

// GitServer serves the bare repositories under Root over smart HTTP (git
// http-backend behind net/http/cgi), pushes allowed, no authentication.
type GitServer struct {
	Root string
	URL  string
	// Requests counts the HTTP requests served.
	Requests atomic.Int64
	// OnPush, when set, is called after every push (receive-pack), as a
	// Git host sends its push webhook.
	OnPush func()
	srv    *http.Server
}

// StartGit serves root on a loopback port.
func StartGit(root string) (*GitServer, error) {
	backend, err := gitserver.Backend(root, "REMOTE_USER=bench")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &GitServer{Root: root, URL: "http://" + ln.Addr().String()}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Requests.Add(1)
		backend.ServeHTTP(w, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") && g.OnPush != nil {
			go g.OnPush()
		}
	})}
	go g.srv.Serve(ln)
	return g, nil
}

// Close stops the server.
func (g *GitServer) Close() { g.srv.Close() }

// WriteFiles writes files (path relative to dir → content), making
// directories as needed.
func WriteFiles(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// CPUSeconds is the user+system CPU time the process has used.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after ')' are fixed.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks, nil
}

// PeakRSS is the process's peak resident set size (VmHWM) in bytes.
func PeakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// Procs is a set of processes measured together (one tool's controllers).
type Procs []*exec.Cmd

// CPU sums CPUSeconds over the processes.
func (p Procs) CPU() float64 {
	var sum float64
	for _, c := range p {
		if v, err := CPUSeconds(c.Process.Pid); err == nil {
			sum += v
		}
	}
	return sum
}

// PeakRSS sums PeakRSS over the processes, in MiB.
func (p Procs) PeakRSS() float64 {
	var sum int64
	for _, c := range p {
		if v, err := PeakRSS(c.Process.Pid); err == nil {
			sum += v
		}
	}
	return float64(sum) / (1 << 20)
}

// Stop sends SIGTERM to every process and waits up to 10 s, then kills.
func (p Procs) Stop() {
	for _, c := range p {
		c.Process.Signal(os.Interrupt)
	}
	for _, c := range p {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// APIRequests sums the API server's apiserver_request_total over all its
// series: every request any client made.
func APIRequests(ctx context.Context, cs kubernetes.Interface) (float64, error) {
	by, err := APIRequestsBy(ctx, cs)
	var sum float64
	for _, v := range by {
		sum += v
	}
	return sum, err
}

// APIRequestsBy is apiserver_request_total by "VERB resource".
func APIRequestsBy(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	b, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("API server /metrics: %w", err)
	}
	out := map[string]float64{}
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, []byte("apiserver_request_total{")) {
			continue
		}
		f := strings.Fields(string(line))
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("API server /metrics: %q: %w", line, err)
		}
		out[label(f[0], "verb")+" "+label(f[0], "resource")] += v
	}
	return out, nil
}

func label(series, name string) string {
	i := strings.Index(series, name+"=\"")
	if i < 0 {
		return ""
	}
	rest := series[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TopDelta lists the keys whose count grew most from a to b, as "key n".
func TopDelta(a, b map[string]float64, n int) []string {
	type kv struct {
		k string
		v float64
	}
	var d []kv
	for k, v := range b {
		if v-a[k] > 0 {
			d = append(d, kv{k, v - a[k]})
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i].v > d[j].v })
	var out []string
	for i := 0; i < len(d) && i < n; i++ {
		out = append(out, fmt.Sprintf("%s %.0f", d[i].k, d[i].v))
	}
	return out
}

// Deployments is a watch-fed view of a namespace's Deployments: waiting on
// it costs the API server one list and one watch, not a poll.
type Deployments struct {
	informer cache.SharedIndexInformer
	stop     chan struct{}
}

// WatchDeployments starts watching ns.
func WatchDeployments(ctx context.Context, cs kubernetes.Interface, ns string) (*Deployments, error) {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	d := &Deployments{informer: f.Apps().V1().Deployments().Informer(), stop: make(chan struct{})}
	go d.informer.Run(d.stop)
	if !cache.WaitForCacheSync(ctx.Done(), d.informer.HasSynced) {
		close(d.stop)
		return nil, fmt.Errorf("watching deployments in %s: %w", ns, ctx.Err())
	}
	return d, nil
}

// Close stops the watch.
func (d *Deployments) Close() { close(d.stop) }

// Get returns the Deployment named name, or nil.
func (d *Deployments) Get(name string) *appsv1.Deployment {
	for _, o := range d.informer.GetStore().List() {
		if dep := o.(*appsv1.Deployment); dep.Name == name {
			return dep
		}
	}
	return nil
}

// Until waits until cond holds for the namespace's Deployments (checked
// every 20 ms against the watched copy) and returns when it first held.
func (d *Deployments) Until(ctx context.Context, cond func([]*appsv1.Deployment) bool) (time.Time, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var deps []*appsv1.Deployment
		for _, o := range d.informer.GetStore().List() {
			deps = append(deps, o.(*appsv1.Deployment))
		}
		if cond(deps) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// Available reports whether the Deployment's Available condition is True
// for its current generation.
func Available(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Image is the first container's image of the Deployment's pod template.
func Image(d *appsv1.Deployment) string {
	if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// Median of the values (0 when empty).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Machine describes where a benchmark ran, for the record.
func Machine() string {
	host, _ := os.Hostname()
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s: %d cores (%s)%s, %s/%s, %s", host, runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

var docMu sync.Mutex

// WriteSection puts body between the markers named key in the Markdown file
// at path (replacing an earlier run's section, else appending), so each
// benchmark keeps its own table.
func WriteSection(path, key, body string) error {
	docMu.Lock()
	defer docMu.Unlock()
	begin, end := "<!-- begin "+key+" -->", "<!-- end "+key+" -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n\nWritten by `make bench-fleet` and `make bench-canary` (see docs/benchmarks.md's sections below and hack/benchfleet, hack/benchcanary). Each section is replaced by the next run of the same benchmark.\n"
	}
	section := begin + "\n" + strings.TrimSpace(body) + "\n" + end
	if i := strings.Index(doc, begin); i >= 0 {
		if j := strings.Index(doc[i:], end); j >= 0 {
			doc = doc[:i] + section + doc[i+j+len(end):]
			return os.WriteFile(path, []byte(doc), 0o644)
		}
	}
	doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	return os.WriteFile(path, []byte(doc), 0o644)
}

var start = time.Now()

// Say prints a line with the seconds since the program started.
func Say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// Env is the environment variable key, or def when it is empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// EnsureNamespace creates the namespace ns unless it exists.
func EnsureNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// StartCluster starts the test control plane with clients for it.
func StartCluster(ctx context.Context) (*testcluster.Cluster, kubernetes.Interface, dynamic.Interface, error) {
	Say("starting the control plane")
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := testcluster.Start(cctx)
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		cluster.Stop()
		return nil, nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		cluster.Stop()
		return nil, nil, nil, err
	}
	return cluster, cs, dyn, nil
}
